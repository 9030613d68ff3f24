"""Run ends its operation whatever happens to the network at the end, and refuses a bad metric where it is
logged."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from trainops import InvalidInputError, OperationStatus, TrainOps
from trainops.client.local import LocalTrainOps
from trainops.client.run import Run
from trainops.client.unsent import sync_file
from trainops.core import EpochRecord, WriteAck
from trainops.core.operation import Operation, new_operation_id
from trainops.errors import ConflictError, NotFoundError, ServiceUnavailableError
from trainops.schemas.operations import CreateOperationRequest
from trainops.service.bootstrap import open_service
from trainops.settings import Settings


@pytest.fixture
def local_ops(settings: Settings) -> Iterator[LocalTrainOps]:
    client = LocalTrainOps(open_service(settings))
    yield client
    client.close()


def test_an_end_the_server_cannot_hear_is_kept_with_its_epochs_and_synced_later(
    local_ops: LocalTrainOps, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def unreachable(operation_id: str, records: list[EpochRecord]) -> WriteAck:
        raise ServiceUnavailableError("connection refused")

    operation = local_ops.create_operation(total_epochs=2)
    monkeypatch.setattr(local_ops, "add_epochs", unreachable)
    run = Run(local_ops, operation, flush_interval=0.01, flush_timeout=0.3, unsent_directory=tmp_path)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="trainops.client"), run:
        run.log(0, val_loss=1.0)
        run.log(1, val_loss=0.5)
        run.result.update(note="kept", score=math.nan)
    waited = time.monotonic() - started

    assert 0.3 <= waited < 3  # the end waits flush_timeout, not more
    unsent = run.unsent
    assert unsent is not None and unsent.path is not None and unsent.epochs == 2 and unsent.end
    assert unsent.path.parent == tmp_path / run.operation_id
    assert str(unsent.path) in caplog.text and f"trainops sync {run.operation_id}" in caplog.text
    assert run.operation.status is OperationStatus.COMPLETED  # as the run ended it
    # the server must hear the end after the epochs (an ended operation takes none): it is left running
    assert local_ops.get_operation(run.operation_id).status is OperationStatus.RUNNING

    monkeypatch.undo()  # the server is back
    synced = sync_file(local_ops, unsent.path)
    assert (synced.epochs, synced.status) == (2, OperationStatus.COMPLETED)
    ended = local_ops.get_operation(run.operation_id)
    assert ended.status is OperationStatus.COMPLETED and ended.result == {"note": "kept", "score": "NaN"}
    assert [epoch.val_loss for epoch in local_ops.get_metrics(run.operation_id).metrics.epochs] == [1.0, 0.5]
    assert not unsent.path.exists()


def test_a_final_error_still_ends_the_operation_and_is_raised(
    local_ops: LocalTrainOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    def gone(operation_id: str, records: list[EpochRecord]) -> WriteAck:
        raise NotFoundError("no operation")

    operation = local_ops.create_operation(total_epochs=2)
    monkeypatch.setattr(local_ops, "add_epochs", gone)
    run = Run(local_ops, operation, flush_interval=0.01, flush_timeout=5)
    with pytest.raises(NotFoundError, match="no operation"), run:
        run.log(0, val_loss=1.0)
    ended = local_ops.get_operation(run.operation_id)
    assert ended.status is OperationStatus.COMPLETED
    assert ended.result is not None and ended.result["unsent_epochs_error"] == "no operation"


def test_an_end_the_server_already_recorded_as_the_run_meant_is_taken(local_ops: LocalTrainOps) -> None:
    operation = local_ops.create_operation(total_epochs=5)
    with Run(local_ops, operation, stop_check_interval=0) as run:
        run.log(0, val_loss=1.0)
        local_ops.cancel_operation(run.operation_id, "enough")
        assert run.should_stop() is not None
        local_ops.finish_operation(run.operation_id, OperationStatus.CANCELLED)  # enforced after a grace period
    assert run.operation.status is OperationStatus.CANCELLED

    other = Run(local_ops, local_ops.create_operation(total_epochs=5))
    with pytest.raises(ConflictError, match="already failed"), other:
        local_ops.finish_operation(other.operation_id, OperationStatus.FAILED, error="reaped")


FIX = "log numbers only, or put text in run.result"


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"val_loss": "high"}, f"metric 'val_loss' must be a number (int or float), got str 'high'; {FIX}"),
        ({"f1": [0.1, 0.2]}, f"metric 'f1' must be a number (int or float), got list [0.1, 0.2]; {FIX}"),
        ({"train_loss": True}, f"metric 'train_loss' must be a number (int or float), got bool True; {FIX}"),
        ({"grad_norm": {"a": 1}}, f"metric 'grad_norm' must be a number (int or float), got dict {{'a': 1}}; {FIX}"),
        ({"val_loss": 10**400}, "metric 'val_loss': a metric must fit in a 64-bit float; this number is too large"),
        ({"bad name": 1.0}, "metrics: metric name 'bad name' is not allowed"),
    ],
    ids=["text", "list", "bool", "dict", "huge", "name"],
)
def test_a_bad_metric_is_refused_by_log_itself(ops: TrainOps, bad: dict[str, Any], says: str) -> None:
    # over HTTP the run sends epochs from a background thread: the error must still come from log(), here
    with ops.run(total_epochs=3) as run:
        run.log(0, val_loss=1.0)
        with pytest.raises(InvalidInputError) as raised:
            run.log(1, **bad)
        run.log(2, val_loss=0.5, f1=math.nan)  # the run goes on; NaN is a number
    assert raised.value.message.startswith(says), raised.value.message
    assert "pydantic" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    ended = ops.get_operation(run.operation_id)
    assert ended.status is OperationStatus.COMPLETED
    assert [record.epoch for record in ops.get_metrics(run.operation_id).metrics.epochs] == [0, 2]


def test_a_bad_epoch_number_is_named(ops: TrainOps) -> None:
    with (
        ops.run() as run,
        pytest.raises(InvalidInputError, match=r"^epoch: Input should be greater than or equal to 0$"),
    ):
        run.log(-1, val_loss=1.0)


def offline_run(ops: TrainOps, request: CreateOperationRequest) -> Run:
    """A run that began while the server was away (as ``open_run`` makes one), reporting into ``ops``."""
    assert request.operation_id is not None
    now = datetime.now(UTC)
    operation = Operation(
        operation_id=request.operation_id,
        operation_type=request.operation_type,
        status=OperationStatus.PENDING,
        created_at=now,
        updated_at=now,
    )
    down = ServiceUnavailableError("connection refused")
    return Run(ops, operation, flush_interval=0.01, register=request, unreachable=down)


def test_a_run_begun_offline_takes_metadata_into_its_registration_until_it_is_sent(ops: TrainOps) -> None:
    request = CreateOperationRequest(operation_id=new_operation_id("training"), metadata={"symbol": "EURUSD"})
    run = offline_run(ops, request)
    assert run.amend_registration({"mlflow_run_id": "abc"})
    with run:
        run.log(0, val_loss=1.0)
        run.flush()
        assert run.registered and not run.amend_registration({"late": 1})  # sent: update_metadata's job now
    stored = ops.get_operation(run.operation_id).metadata.model_dump()
    assert (stored["symbol"], stored["mlflow_run_id"]) == ("EURUSD", "abc") and "late" not in stored
    assert ops.get_operation(run.operation_id).status is OperationStatus.COMPLETED


def test_a_registration_the_server_refuses_ends_the_run_with_the_servers_reason(ops: TrainOps) -> None:
    wrong_type = "op_evaluation_20261207_013000_0123abcd"  # a training's id must read op_training_...
    run = offline_run(ops, CreateOperationRequest(operation_id=wrong_type))
    with pytest.raises(InvalidInputError, match=f"operation id '{wrong_type}' is invalid"), run:
        run.log(0, val_loss=1.0)
    assert ops.list_operations().total == 0


def test_only_a_batched_run_registers_later_under_its_own_id(ops: TrainOps) -> None:
    request = CreateOperationRequest(operation_id=new_operation_id("training"))
    operation = ops.create_operation()
    with pytest.raises(ValueError, match="only a buffered run"):
        Run(ops, operation, flush_interval=None, register=request)
    with pytest.raises(ValueError, match="under the operation's own id"):
        Run(ops, operation, flush_interval=0.1, register=request)


def test_a_run_whose_operation_was_ended_on_the_server_is_told_to_stop(ops: TrainOps) -> None:
    """A worker whose run the reaper had failed (or a cancel past its grace had ended) trained on for minutes, its
    epochs refused, on a machine the cluster counted as free."""
    run = ops.run(total_epochs=100, flush_interval=0.01)
    requests: list[Any] = []

    def train() -> None:
        with run:
            run.log(0, val_loss=1.0)
            run.flush()
            ops.finish_operation(run.operation_id, OperationStatus.FAILED, error="its Ray job is gone")
            deadline = time.monotonic() + 10
            epoch = 1
            while (request := run.should_stop()) is None and time.monotonic() < deadline:
                run.log(epoch, val_loss=1.0)
                epoch += 1
                time.sleep(0.01)
            requests.append(request)

    with pytest.raises(ConflictError, match="already failed"):  # the end says why its records were not stored
        train()
    (request,) = requests
    assert request is not None and request.requested_by == "trainops"
    assert request.reason.startswith("the server takes no more records for this run: ")
    assert "already failed" in request.reason
    stored = ops.get_operation(run.operation_id)
    assert (stored.status, stored.error) == (OperationStatus.FAILED, "its Ray job is gone")  # as it was ended
