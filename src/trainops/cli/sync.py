"""``trainops sync``: send what runs kept on disk because the server was unreachable when they ended."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainops.cli.common import (
    JsonOption,
    TokenOption,
    UrlOption,
    console,
    err_console,
    error_line,
    open_client,
    print_json,
)
from trainops.client import TrainOps
from trainops.client.unsent import SyncResult, read_leftovers, spill_files, sync_file, unsent_dir, writer_running
from trainops.errors import TrainOpsError


def sync(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="Operation ids, spill files or directories; every file under $TRAINOPS_HOME/unsent when none.",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what waits and for which server; send nothing.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Send the epochs, steps and run ends that runs kept in $TRAINOPS_HOME/unsent while the server was away.

    Each file goes, in order, to --url (or TRAINOPS_URL), else to the server the run reported to, and is deleted
    once delivered; records the server refuses are dropped with a warning. A file whose run is still writing it
    (a live process on this machine) is left to that run. A run that never reached the server
    is registered there first, under its own id. Sending twice is harmless: epochs and steps replace those of the
    same number.

    Example: trainops sync --dry-run, then trainops sync (or trainops sync op_training_20250610_123456_ab12cd34)
    """
    directory = unsent_dir()
    files = spill_files(targets or [], directory)
    if not files:
        if json:
            print_json([])
        else:
            console.print(f"Nothing to sync: no unsent records in {directory}.")
        return
    if dry_run:
        waiting = []
        for path in files:
            try:
                waiting.append(read_leftovers(path))
            except TrainOpsError as error:
                err_console.print(error_line(error.message), highlight=False, soft_wrap=True)
        if json:
            print_json(
                [
                    {
                        "path": str(item.path),
                        "operation_id": item.operation_id,
                        "url": item.url,
                        "epochs": len(item.epochs),
                        "steps": len(item.steps),
                        "end": item.end.status.value if item.end else None,
                        "registers": item.register is not None,
                    }
                    for item in waiting
                ]
            )
        else:
            for item in waiting:
                console.print(item.describe(), highlight=False, soft_wrap=True)
            console.print(f"{len(waiting)} file(s) would be sent; run `trainops sync` without --dry-run to send them.")
        return
    clients: dict[str | None, TrainOps] = {}
    done: list[SyncResult] = []
    failed = 0
    try:
        blocked: set[str] = set()  # operations whose older file failed: their newer records must wait too
        for path in files:
            if path.parent.name in blocked:
                failed += 1
                err_console.print(f"Skipped {path}: an older file of that operation was not sent.")
                continue
            writer = writer_running(path) if path.resolve().is_relative_to(directory.resolve()) else None
            if writer is not None:
                blocked.add(path.parent.name)  # its newer files wait with it
                err_console.print(
                    f"Skipped {path}: its run (process {writer}) is still writing it, and sends it itself once the "
                    "server answers; run `trainops sync` again after that run has ended.",
                    highlight=False,
                    soft_wrap=True,
                )
                continue
            try:
                target = url or read_leftovers(path).url
                if target not in clients:
                    clients[target] = open_client(target, token)
                result = sync_file(clients[target], path)
            except TrainOpsError as error:
                failed += 1
                blocked.add(path.parent.name)
                err_console.print(error_line(error.message), highlight=False, soft_wrap=True)
                continue
            done.append(result)
            if not json:
                console.print(_synced(result), highlight=False, soft_wrap=True)
    finally:
        for client in clients.values():
            client.close()
    if json:
        print_json([_as_json(result) for result in done])
    if failed:
        err_console.print(
            f"{failed} of {len(files)} file(s) could not be sent; they are kept. Fix the above, then run "
            "`trainops sync` again.",
            soft_wrap=True,
        )
        raise typer.Exit(code=1)


def _synced(result: SyncResult) -> str:
    parts = [f"{result.epochs} epoch(s)"] + ([f"{result.steps} step(s)"] if result.steps else [])
    ended = f"; the operation is {result.status.value}" if result.status is not None else ""
    dropped = f"; {len(result.dropped)} refused and dropped" if result.dropped else ""
    registered = " (registered now)" if result.registered else ""
    return (
        f"Synced {result.operation_id}{registered}: {', '.join(parts)}{dropped}{ended} (from {Path(result.path).name})."
    )


def _as_json(result: SyncResult) -> dict[str, object]:
    return {
        "path": str(result.path),
        "operation_id": result.operation_id,
        "epochs": result.epochs,
        "steps": result.steps,
        "dropped": result.dropped,
        "status": result.status.value if result.status is not None else None,
        "registered": result.registered,
    }
