"""``trainops train``: train a strategy, in this process or on a server, and watch every phase."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from trainops.cli.common import (
    JsonOption,
    TokenOption,
    UrlOption,
    console,
    err_console,
    open_client,
    print_json,
    speaking_options,
)
from trainops.cli.ops import follow, follow_json
from trainops.cli.render import performance_panel
from trainops.client import TrainOps
from trainops.core.cancellation import INTERRUPTED
from trainops.core.operation import Operation, OperationStatus
from trainops.errors import ServiceUnavailableError, sentence
from trainops.schemas.training import ConfigOverrides, Resources, TrainingRequest, strategy_result
from trainops.service.workers import this_worker

if TYPE_CHECKING:
    from trainops.client.local import LocalTrainOps

# What the user typed for each field of the training request, so that errors name it (see speaking_options)
TRAIN_OPTIONS = {
    "strategy": "STRATEGY",
    "symbol": "--symbol",
    "timeframe": "--timeframe",
    "config.epochs": "--epochs",
    "epochs": "--epochs",
    "start_date": "--start",
    "end_date": "--end",
    "device": "--device",
    "resources.cpus": "--cpus",
    "resources.gpus": "--gpus",
    "cpus": "--cpus",
    "gpus": "--gpus",
    "name": "--name",
    "tags": "--tag",
    "notes": "--notes",
}


def train(
    strategy: Annotated[str, typer.Argument(help="A strategy YAML file, or the name of one in the strategies dir.")],
    symbol: Annotated[str | None, typer.Option(help="Train on this symbol only.", show_default=False)] = None,
    timeframe: Annotated[str | None, typer.Option(help="Train on this timeframe only.", show_default=False)] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Override the strategy's epochs.", show_default=False)
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="First date of the training data (YYYY-MM-DD).", show_default=False),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last date of the training data (YYYY-MM-DD).", show_default=False),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cuda, cpu, ...; CUDA when available.", show_default=False)] = None,
    cpus: Annotated[
        float | None,
        typer.Option(
            help="CPUs the job needs (on a Ray server, where it waits for them; 1 by default there).",
            show_default=False,
        ),
    ] = None,
    gpus: Annotated[
        float | None,
        typer.Option(
            help="GPUs the job needs (a Ray server runs it on a GPU node; 0.5 shares one).", show_default=False
        ),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Start it and return; it runs in a worker process (or on the server).")
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="A short title to find the run by later.", show_default=False)
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="A label to find the run by (repeatable): --tag baseline --tag lr=3e-4."),
    ] = None,
    notes: Annotated[str | None, typer.Option("--notes", help="Free text about the run.", show_default=False)] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Train a strategy on market data as a tracked operation: progress through every phase, an epoch table,
    the diagnosis, and the performance on the test split.

    In this process on the local database by default; on a server with --url (or TRAINOPS_URL). Ctrl-C asks the
    run to stop, here or on the server; it keeps its history and its best weights, and the command exits 130.
    SIGTERM and SIGHUP (a closed terminal, a dropped ssh session, `timeout`, a scheduler) do the same, with the
    signal as the reason, and exit 128 + its number; a second stop leaves at once. A signal ignored when the
    command starts (nohup) stays ignored; for a run that outlives the terminal, use --detach.

    --cpus and --gpus say what the job needs: a server with TRAINOPS_EXECUTOR=ray runs it as a Ray job on a node
    that has them; here, more than this machine has is refused.

    Example: trainops train strategies/mean_reversion.yaml --epochs 20 --name "baseline 20" --tag baseline

    Example: trainops train mean_reversion --url http://trainops:8000 --gpus 1 --detach
    """
    with speaking_options(TRAIN_OPTIONS):
        request = TrainingRequest(
            strategy=_strategy_reference(strategy),
            symbol=symbol,
            timeframe=timeframe,
            config=ConfigOverrides(epochs=epochs) if epochs is not None else None,
            start_date=_date(start),
            end_date=_date(end),
            device=device,
            resources=Resources(cpus=cpus, gpus=gpus) if cpus is not None or gpus is not None else None,
            name=name,
            tags=tag or None,
            notes=notes,
        )
    from trainops.client.local import LocalTrainOps  # the store and the services, loaded when the command runs

    with open_client(url, token) as ops:
        if detach or not isinstance(ops, LocalTrainOps):
            with speaking_options(TRAIN_OPTIONS):
                started = ops.start_training(request)
            if json and detach:
                print_json(started)
                return
            err_console.print(started.message, highlight=False, soft_wrap=True)
            if detach:
                return
            task_id = started.task_id
            final, stopped_by = _until_interrupted(ops, task_id, lambda: _follow(ops, task_id, json))
        else:
            task_id, final, stopped_by = _train_here(ops, request, json)
        if stopped_by is None:
            _finish(ops, task_id, final, json)
            return
        # a stop signal here, not a cancel asked elsewhere (that run ends cancelled and the command succeeds); the
        # terminal a SIGHUP closed takes no panel, and the exit code must still say what ended the command
        with contextlib.suppress(OSError):
            _finish(ops, task_id, final, json)
        raise typer.Exit(code=exit_code(stopped_by))


STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""What stops ``trainops train`` as Ctrl-C does: Ctrl-C itself, and what a closed terminal or a dropped ssh session
(SIGHUP), ``timeout`` or a scheduler (SIGTERM) send. Windows has no SIGHUP."""


def exit_code(signum: int) -> int:
    """What a shell reports for a command a signal ended: 128 + its number (130 for Ctrl-C)."""
    return 128 + signum


def stop_reason(signum: int) -> str:
    """The cancel reason a stop signal records: Ctrl-C's is the one every interrupted run has (``INTERRUPTED``)."""
    return INTERRUPTED if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"


def _said(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def _train_here(
    ops: LocalTrainOps, request: TrainingRequest, json: bool
) -> tuple[str, OperationStatus, signal.Signals | None]:
    """Run the job on a thread of this process while the main thread shows it (and catches the stop signals)."""
    training = ops.training  # a clear error when the train extra is missing, before anything is recorded
    from trainops.executors.jobs import run_training  # the strategy pipeline: torch, TA-Lib, pandas

    threads: list[threading.Thread] = []

    def launch(operation: Operation) -> None:
        def job() -> None:
            # an error is recorded on the operation by the run, and the watcher shows it
            with contextlib.suppress(BaseException):
                run_training(
                    ops, operation, data_dir=training.data_dir, models_dir=training.models_dir, worker=this_worker()
                )

        thread = threading.Thread(target=job, name="trainops-training", daemon=True)
        threads.append(thread)
        thread.start()

    with speaking_options(TRAIN_OPTIONS):
        started = training.start(request, launch, allow_paths=True, worker=this_worker())
    if not json:
        err_console.print(
            f"Training {started.config.get('name', 'strategy')} as {started.task_id} on {started.symbol} "
            f"[{started.timeframe}]",
            highlight=False,
        )
    final, stopped_by = _until_interrupted(
        ops, started.task_id, lambda: _follow(ops, started.task_id, json, threads[0]), threads[0]
    )
    threads[0].join()
    return started.task_id, final, stopped_by


def _until_interrupted(
    ops: TrainOps, task_id: str, watch: Callable[[], OperationStatus], thread: threading.Thread | None = None
) -> tuple[OperationStatus, signal.Signals | None]:
    """``watch()`` the training to its end and answer how it ended and which stop signal ended the command (None: it
    ended by itself, or by a cancel asked elsewhere). On the first Ctrl-C, SIGTERM or SIGHUP, ask the run to stop
    (on the server too: it is this command's training) and wait for it to end; a second one leaves at once. Either
    way the cancellation is recorded, so nothing is left ``running``."""
    with _catching_stops() as stops:
        try:
            return watch(), None
        except BaseException:
            if not stops.signals:
                raise
        first = stops.signals[0]
        try:
            ops.cancel_operation(task_id, stop_reason(first), requested_by="user")
            if first == signal.SIGINT:
                _tell("Stopping at the next batch; the best weights are kept (Ctrl-C again to leave now) ...")
            else:
                _tell(
                    f"{_said(first)}: stopping at the next batch; the best weights are kept (Ctrl-C or another "
                    f"{_said(first)} to leave now) ..."
                )
            if thread is not None:
                thread.join()
            else:
                while not ops.get_operation(task_id).status.is_terminal:
                    time.sleep(0.2)
        except BaseException:
            if len(stops.signals) < 2:
                raise
            if thread is None:  # the server's run stops by itself at its next batch
                raise typer.Exit(code=exit_code(stops.signals[-1])) from None
            _leave_now(ops, task_id, stops.signals[-1])
        return ops.get_operation(task_id).status, first


class _Stops:
    """A handler of the stop signals that records them in order and raises ``KeyboardInterrupt`` as Python's own
    SIGINT handler does. A signal that lands inside a database driver can come out as the driver's error instead
    (psycopg interrupted in a ping: "can't change 'autocommit' now"), so what catches it asks ``signals``, not the
    exception's type."""

    def __init__(self) -> None:
        self.signals: list[signal.Signals] = []

    def __call__(self, signum: int, frame: object) -> None:
        self.signals.append(signal.Signals(signum))
        raise KeyboardInterrupt


@contextlib.contextmanager
def _catching_stops() -> Iterator[_Stops]:
    """Handle :data:`STOP_SIGNALS` with a :class:`_Stops` inside the block, and put the previous handlers back after
    it. Python sets handlers only in the main thread: elsewhere (an embedding application) nothing is caught. A
    signal ignored when the command started (``nohup``, a background job) stays ignored, as its user asked."""
    stops = _Stops()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            handler = signal.getsignal(signum)
            if handler is signal.SIG_IGN:
                continue
            previous[signum] = handler
            signal.signal(signum, stops)
    try:
        yield stops
    finally:
        for signum, handler in previous.items():
            # None: a handler not set from Python, which Python cannot put back; the default is the nearest
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def _tell(message: str) -> None:
    """Say it on stderr, which a closed terminal (SIGHUP) no longer takes: the stop goes on all the same."""
    with contextlib.suppress(OSError):
        err_console.print(message, highlight=False)


def left_early(signum: int) -> str:
    """The error of a run whose command a second stop signal ended while its training ran in that process."""
    return f"left with a second {_said(signum)} before the training stopped: no evaluation, no model version"


def _leave_now(ops: TrainOps, task_id: str, signum: int) -> NoReturn:
    """A second stop signal while the training runs on a thread of this process: end the run now (nothing else
    would, this process being its worker) and leave without waiting for the thread. It may be deep inside torch,
    whose threads abort the interpreter's normal exit (``terminate called without an active exception``)."""
    with contextlib.suppress(Exception):
        ops.finish_operation(task_id, OperationStatus.CANCELLED, error=left_early(signum))
    _tell(f"Left at once: {task_id} is recorded cancelled ({left_early(signum)}).")
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):
            stream.flush()
    os._exit(exit_code(signum))


def _follow(ops: TrainOps, task_id: str, json: bool, thread: threading.Thread | None = None) -> OperationStatus:
    """Show the training to its end. The database (or the server) going away for a while loses sight of it, not
    the training (which keeps its records and sends them once it is back): say so, and watch again once it
    answers. Leaving here would end the process under a training still running on ``thread``."""
    pause = 1.0
    while True:
        try:
            return follow_json(ops, task_id, 0.5, None) if json else follow(ops, task_id, 0.5, None)
        except ServiceUnavailableError as error:
            err_console.print(
                f"Lost sight of {task_id}: {sentence(error.message)} The training goes on"
                f"{'' if thread is None or thread.is_alive() else ' (it has ended)'}; watching again in "
                f"{pause:g} s (the table starts over) ...",
                highlight=False,
                soft_wrap=True,
            )
            time.sleep(pause)
            pause = min(2 * pause, FOLLOW_PAUSE_MAX)


FOLLOW_PAUSE_MAX = 10.0
"""Seconds at most between attempts to watch a training again while its database or server is away."""


def _finish(ops: TrainOps, task_id: str, final: OperationStatus, json: bool) -> None:
    operation = ops.get_operation(task_id)
    result = operation.result or {}
    if json:
        print_json({"event": "performance", "task_id": task_id, "status": final.value, **result}, line=True)
    elif (typed := strategy_result(result)) is not None:
        console.print(performance_panel(typed, task_id))
        if final is OperationStatus.COMPLETED:  # a run that failed after its evaluation has no model to keep
            console.print(
                f"Next: keep the model with `trainops models save {task_id} NAME`; the full history and diagnosis "
                f"with `trainops ops metrics {task_id}`",
                highlight=False,
                soft_wrap=True,
            )
    if final is OperationStatus.FAILED:
        raise typer.Exit(code=1)


def _strategy_reference(strategy: str) -> str:
    # a file here wins over a name in the strategies directory; absolute so a worker process finds it too
    path = Path(strategy).expanduser()
    return str(path.resolve()) if path.is_file() else strategy


def _date(moment: datetime | None) -> date | None:
    return moment.date() if moment is not None else None
