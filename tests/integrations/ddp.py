"""What the multi-process tests (Lightning's ``test_lightning_ddp.py``, Hugging Face's ``test_transformers_ddp.py``)
share: waiting for a training under way, and what a stop asked through the API must leave behind.

Each test runs its training as a program of its own whose ranks write what their loops did to ``rank<N>.json``,
and its output to ``fit.log``, in the test's ``tmp_path``.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from trainops.client import TrainOps
from trainops.core.operation import OperationStatus


def log_tail(tmp_path: Path) -> str:
    return (tmp_path / "fit.log").read_text()[-5000:]


def database_contents(ops: TrainOps) -> str:
    """What the database holds of every run, for a failure message: status, epochs stored, last heartbeat, progress."""
    lines = []
    for operation in ops.list_operations().items:
        epochs = [record.epoch for record in ops.get_metrics(operation.operation_id).metrics.epochs]
        lines.append(
            f"{operation.operation_id}: {operation.status.value}, epochs stored {epochs}, "
            f"last heard {operation.last_heard_at}, progress {operation.progress.message!r}, "
            f"cancel {operation.cancel_request}, error {operation.error!r}"
        )
    return "\n".join(lines) or "no run"


def under_way(ops: TrainOps, process: subprocess.Popen[bytes], tmp_path: Path, epochs: int, within: float) -> str:
    """The id of the one operation the training opened, once rank 0 has stored ``epochs`` epochs. A training that
    ends or takes too long fails the test with what the last polls saw (runs listed, epochs read, seconds each)
    and what the database holds."""
    deadline = time.monotonic() + within
    polls: list[tuple[int, int, float]] = []
    while True:
        started = time.monotonic()
        operations = ops.list_operations().items
        stored = len(ops.get_metrics(operations[0].operation_id).metrics.epochs) if operations else 0
        polls.append((len(operations), stored, round(time.monotonic() - started, 2)))
        if stored >= epochs:
            return operations[0].operation_id
        if process.poll() is not None or time.monotonic() >= deadline:
            ended = (
                "ended before the stop"
                if process.poll() is not None
                else f"stored no {epochs} epoch(s) in {within:.0f} s"
            )
            raise AssertionError(
                f"the training {ended}; (runs, epochs, seconds) of the last polls: {polls[-10:]}\n"
                f"the database holds:\n{database_contents(ops)}\nfit.log:\n{log_tail(tmp_path)}"
            )
        time.sleep(0.1)


def assert_stopped_together(
    ops: TrainOps, operation_id: str, reason: str, ranks: tuple[dict[str, Any], dict[str, Any]], planned: int
) -> int:
    """Both ranks' loops ended at the end of the same epoch (the one in which rank 0 learnt of the stop, before
    the planned end), and the operation was cancelled for the reason the agent gave, with each epoch stored once
    and from rank 0 only. Returns the last epoch trained."""
    rank0, rank1 = ranks
    assert rank0["epochs"] == rank1["epochs"]
    last: int = rank0["epochs"][-1]
    assert rank0["epochs"] == list(range(last + 1)) and last < planned - 1
    assert rank0["stopped_at"] == rank1["stopped_at"] == last

    operation = ops.get_operation(operation_id)
    assert operation.status is OperationStatus.CANCELLED
    assert operation.cancel_request is not None
    assert (operation.cancel_request.reason, operation.cancel_request.requested_by) == (reason, "agent")
    metrics = ops.get_metrics(operation_id).metrics
    assert [record.epoch for record in metrics.epochs] == list(range(last + 1))  # each epoch the loops ran, once
    assert metrics.best_epoch is not None and rank0["best_epoch"] == metrics.best_epoch
    assert rank1["operation_id"] is None and ops.list_operations().total == 1
    return last
