"""OperationsService behaviour that the facade contract does not show: recovery, throttling, caching."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from trainops.core import EpochRecord, OperationStatus, ProgressState
from trainops.errors import ConflictError, NotFoundError
from trainops.service.operations import ORPHAN_REASON, OperationsService
from trainops.service.workers import this_worker


def dead_worker() -> str:
    """``host:pid`` of a process of this host that has ended."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return f"{socket.gethostname()}:{int(finished.stdout)}"


def test_recover_orphans_fails_local_runs_whose_process_is_gone(service: OperationsService) -> None:
    orphan = service.create(metadata={"executor": "local"})
    service.start(orphan.operation_id, worker=dead_worker())
    mine = service.create(metadata={"executor": "local"})
    service.start(mine.operation_id, worker=this_worker())  # e.g. `trainops train` still running
    elsewhere = service.create(metadata={"executor": "local"})
    service.start(elsewhere.operation_id, worker="another-host:1")
    external = service.create()
    service.start(external.operation_id)

    assert service.recover_orphans("local") == [orphan.operation_id]

    failed = service.get(orphan.operation_id)
    assert failed.status is OperationStatus.FAILED
    assert failed.error == ORPHAN_REASON
    for alive in (mine, elsewhere, external):
        assert service.get(alive.operation_id).status is OperationStatus.RUNNING


def test_progress_is_throttled_but_milestones_get_through(service: OperationsService) -> None:
    operation = service.create(total_epochs=3)
    service._throttle.interval = 3600  # nothing passes on time alone
    first = ProgressState.training(1, 3, batch=1, total_batches=100)
    service.report_progress(operation.operation_id, first)
    skipped = service.report_progress(operation.operation_id, ProgressState.training(1, 3, batch=2, total_batches=100))
    assert skipped.accepted == 0
    assert service.get(operation.operation_id).progress.batch == 1

    next_epoch = ProgressState.training(2, 3, batch=1, total_batches=100)
    assert service.report_progress(operation.operation_id, next_epoch).accepted == 1
    evaluation = ProgressState(percentage=96, phase="evaluation", message="Evaluating")
    assert service.report_progress(operation.operation_id, evaluation).accepted == 1
    stored = service.get(operation.operation_id).progress
    assert stored.phase == "evaluation" and stored.updated_at is not None


@pytest.mark.parametrize("status", [OperationStatus.CANCELLED, OperationStatus.FAILED])
def test_a_run_ending_stores_where_it_last_said_it_was(service: OperationsService, status: OperationStatus) -> None:
    """An update the throttle held back is the run's last word: a run cancelled or failed keeps it, not the
    older one stored before it."""
    operation = service.create(total_epochs=3)
    service._throttle.interval = 3600
    service.report_progress(operation.operation_id, ProgressState.training(1, 3, batch=1, total_batches=100))
    held = service.report_progress(operation.operation_id, ProgressState.training(1, 3, batch=87, total_batches=100))
    assert held.accepted == 0

    ended = service.finish(operation.operation_id, status, error="out of memory" if status == "failed" else None)

    assert ended.progress.batch == 87
    assert ended.progress.updated_at == ended.completed_at
    assert service._throttle._last == {}


def test_metrics_reflect_each_new_epoch_despite_caching(service: OperationsService) -> None:
    operation = service.create()
    service.add_epoch(operation.operation_id, EpochRecord(epoch=0, val_loss=1.0))
    assert service.metrics(operation.operation_id).metrics.best_epoch == 0
    assert service.metrics(operation.operation_id).metrics.best_epoch == 0  # served from the cache
    service.add_epoch(operation.operation_id, EpochRecord(epoch=1, val_loss=0.5))
    block = service.metrics(operation.operation_id).metrics
    assert block.best_epoch == 1
    assert [record.epoch for record in block.epochs] == [0, 1]


def test_cancel_records_who_asked_and_trims_the_reason(service: OperationsService) -> None:
    operation = service.create()
    service.start(operation.operation_id)
    cancelled = service.cancel(operation.operation_id, "  diverging  ", requested_by="agent")
    assert cancelled.cancel_request is not None
    assert (cancelled.cancel_request.reason, cancelled.cancel_request.requested_by) == ("diverging", "agent")


def test_progress_for_unknown_or_ended_operations_leaves_no_throttle_state(service: OperationsService) -> None:
    for missing in range(50):
        with pytest.raises(NotFoundError):
            service.report_progress(f"op_training_20250101_000000_{missing:08x}", ProgressState(percentage=1))
    ended = service.create()
    service.complete(ended.operation_id)
    with pytest.raises(ConflictError):
        service.report_progress(ended.operation_id, ProgressState(percentage=1))
    assert service._throttle._last == {}
