"""``trainops sync`` on the local database: listing, sending in order, what it refuses and why.

The end-to-end case against a server that was killed and came back is in ``tests/client/test_outages.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainops.cli.main import app
from trainops.client import LocalTrainOps
from trainops.client.unsent import RunEnd, UnsentFile
from trainops.core import EpochRecord, OperationStatus
from trainops.service.bootstrap import open_service
from trainops.settings import Settings

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "300"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def local(settings: Settings) -> Iterator[LocalTrainOps]:
    client = LocalTrainOps(open_service(settings))
    yield client
    client.close()


def spill(settings: Settings, operation_id: str, epochs: range, end: OperationStatus | None = None) -> Path:
    file = UnsentFile(settings.home / "unsent", operation_id, None)
    file.append_epochs([EpochRecord(epoch=epoch, val_loss=1.0 / (epoch + 1)) for epoch in epochs])
    if end is not None:
        file.append_end(RunEnd(end, {"best_epoch": epochs[-1]}))
    file.close()
    return file.path


def test_nothing_to_sync_says_where_it_looked(settings: Settings) -> None:
    code, out, _ = invoke("sync")
    assert code == 0 and out.startswith("Nothing to sync: no unsent records in ")
    assert str(settings.home / "unsent") in out.replace("\n", "")


def test_dry_run_lists_and_sync_sends_in_order_then_deletes(local: LocalTrainOps, settings: Settings) -> None:
    operation = local.create_operation(total_epochs=6)
    local.start_operation(operation.operation_id)
    first = spill(settings, operation.operation_id, range(3))
    second = spill(settings, operation.operation_id, range(3, 6), end=OperationStatus.COMPLETED)

    code, out, _ = invoke("sync", "--dry-run", "--json")
    assert code == 0
    assert [(item["path"], item["epochs"], item["end"]) for item in json.loads(out)] == [
        (str(first), 3, None),
        (str(second), 3, "completed"),
    ]
    code, out, error = invoke("sync", operation.operation_id)
    assert code == 0, error
    assert f"Synced {operation.operation_id}: 3 epoch(s) (from {first.name})." in out
    assert f"Synced {operation.operation_id}: 3 epoch(s); the operation is completed (from {second.name})." in out
    ended = local.get_operation(operation.operation_id)
    assert ended.status is OperationStatus.COMPLETED and ended.result == {"best_epoch": 5}
    assert ended.epochs_completed == 6
    assert not first.parent.exists()


def test_a_file_that_fails_holds_back_the_newer_files_of_its_operation(
    local: LocalTrainOps, settings: Settings
) -> None:
    operation = local.create_operation(total_epochs=6)
    damaged = spill(settings, operation.operation_id, range(3))
    damaged.write_text(damaged.read_text() + '{"bogus": 1}\n')
    newer = spill(settings, operation.operation_id, range(3, 6), end=OperationStatus.COMPLETED)

    code, _, error = invoke("sync")

    assert code == 1
    assert f"{damaged} line 5 is not a trainops spill record" in error
    assert f"Skipped {newer}: an older file of that operation was not sent." in error
    assert "2 of 2 file(s) could not be sent; they are kept." in error
    assert damaged.exists() and newer.exists()
    assert local.get_operation(operation.operation_id).epochs_completed == 0


def test_an_unknown_target_and_an_unknown_operation_are_explained(settings: Settings) -> None:
    code, _, error = invoke("sync", "op_nothing_here")
    assert code == 1 and "'op_nothing_here' is neither a spill file, a directory, nor an operation" in error

    path = spill(settings, "op_training_20250101_000000_deadbeef", range(2))
    code, _, error = invoke("sync", str(path))
    assert code == 1
    assert "no operation op_training_20250101_000000_deadbeef there; the run reported in-process" in error
    assert path.exists()


def test_an_unreachable_server_ends_each_sentence_once(settings: Settings) -> None:
    """The HTTP client's reason ends with a question; a period after it read ``is TRAINOPS_URL right?.``."""
    path = spill(settings, "op_training_20250101_000000_deadbeef", range(2))

    code, _, error = invoke("sync", str(path), "--url", "http://127.0.0.1:9")

    assert code == 1 and path.exists()
    assert f"is TRAINOPS_URL right? {path} is kept; run `trainops sync` again later" in error
    assert "?." not in error


def test_a_file_that_cannot_be_read_is_reported_and_the_others_are_sent(
    local: LocalTrainOps, settings: Settings
) -> None:
    operation = local.create_operation(total_epochs=3)
    good = spill(settings, operation.operation_id, range(3), end=OperationStatus.COMPLETED)
    not_text = settings.home / "unsent" / "op_damaged" / "a.jsonl"
    not_text.parent.mkdir(parents=True)
    not_text.write_bytes(b"\xff\xfe\x00")
    folder = settings.home / "unsent" / "op_folder" / "b.jsonl"
    folder.mkdir(parents=True)

    listed = invoke("sync", "--dry-run")
    code, out, error = invoke("sync")

    assert f"{not_text} cannot be read as a trainops spill file: not UTF-8 text" in listed[2]
    assert f"{folder} cannot be read as a trainops spill file: Is a directory" in listed[2]
    assert code == 1 and "Traceback" not in error
    assert f"Synced {operation.operation_id}: 3 epoch(s); the operation is completed (from {good.name})." in out
    assert local.get_operation(operation.operation_id).status is OperationStatus.COMPLETED
    assert not_text.exists() and folder.exists()


def test_a_file_its_run_is_still_writing_is_left_to_that_run(local: LocalTrainOps, settings: Settings) -> None:
    """A live run appends to its spill file and reads it back once the server answers: sent and deleted under it,
    the epochs it spills afterwards would be lost."""
    operation = local.create_operation(total_epochs=6)
    local.start_operation(operation.operation_id)
    written = spill(settings, operation.operation_id, range(3))
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        live = written.rename(written.with_name(f"{written.stem.rpartition('-')[0]}-{writer.pid}.jsonl"))

        code, out, error = invoke("sync")

        assert code == 0, error
        assert f"Skipped {live}: its run (process {writer.pid}) is still writing it" in error
        assert live.exists() and local.get_operation(operation.operation_id).epochs_completed == 0
    finally:
        writer.kill()
        writer.wait(10)

    code, out, error = invoke("sync")  # that run has ended

    assert code == 0, error
    assert f"Synced {operation.operation_id}: 3 epoch(s) (from {live.name})." in out
    assert not live.exists() and local.get_operation(operation.operation_id).epochs_completed == 3
