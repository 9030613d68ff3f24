"""The per-step series through the facade: the same behaviour in-process and over HTTP, on SQLite and PostgreSQL.

Every test runs four times (local/http x sqlite/postgresql) through the ``ops`` fixture.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from trainops import ConflictError, EpochRecord, InvalidInputError, NotFoundError, OperationStatus, TrainOps
from trainops.client.buffer import EpochBuffer
from trainops.core.operation import WriteAck
from trainops.core.steps import StepRecord
from trainops.errors import ServiceUnavailableError


def test_a_run_logging_5000_steps_keeps_the_cap_an_even_spacing_and_the_latest(ops: TrainOps) -> None:
    with ops.run(total_epochs=5) as run:
        for step in range(5000):
            run.step(step, {"loss": 1.0 / (step + 1)}, epoch=step // 1000)
        run.log(4, step=4999, val_loss=0.5)
        operation_id = run.operation_id

    series = ops.get_steps(operation_id)
    kept = [point.step for point in series.points]
    assert series.max_points == 1000 and series.thinned is True
    assert len(kept) <= 1000
    assert kept[0] == 0 and kept[-1] == 4999  # the whole run is spanned, the latest step kept
    gaps = [later - earlier for earlier, later in itertools.pairwise(kept)]
    spacing = max(gaps)
    older = list(itertools.takewhile(lambda gap: gap == spacing, gaps))
    assert spacing > 1 and len(older) >= 250  # the older steps are thinned to one even spacing
    assert set(gaps[len(older) :]) <= set(range(1, spacing))  # and the newer ones stay denser
    assert series.points[-1].metrics == {"loss": 1.0 / 5000} and series.points[-1].epoch == 4
    assert ops.get_metrics(operation_id).metrics.epochs[0].step == 4999
    assert ops.get_operation(operation_id).status is OperationStatus.COMPLETED


def test_steps_are_upserted_filtered_and_keep_non_finite_values(ops: TrainOps) -> None:
    operation = ops.create_operation()
    ack = ops.add_steps(
        operation.operation_id,
        [StepRecord(step=0, metrics={"loss": 1.0, "lr": 0.1}), StepRecord(step=5, metrics={"loss": math.inf})],
    )
    ops.add_steps(operation.operation_id, [StepRecord(step=0, metrics={"loss": math.nan})])

    assert ack.accepted == 2 and ack.status is OperationStatus.RUNNING
    points = ops.get_steps(operation.operation_id).points
    assert [point.step for point in points] == [0, 5]
    assert math.isnan(points[0].metrics["loss"]) and "lr" not in points[0].metrics  # replaced
    assert points[1].metrics["loss"] == math.inf
    assert [point.step for point in ops.get_steps(operation.operation_id, since_step=0).points] == [5]
    with pytest.raises(InvalidInputError, match="never reported 'acc'"):
        ops.get_steps(operation.operation_id, metric="acc")


def test_steps_of_ended_and_unknown_operations_are_refused(ops: TrainOps) -> None:
    operation = ops.create_operation()
    ops.add_steps(operation.operation_id, [StepRecord(step=0)])
    ops.finish_operation(operation.operation_id)

    with pytest.raises(ConflictError, match="accepts no more steps"):
        ops.add_steps(operation.operation_id, [StepRecord(step=1)])
    with pytest.raises(NotFoundError):
        ops.get_steps("op_training_20260101_000000_deadbeef")


@pytest.mark.parametrize("flush_interval", [None, 0.05], ids=["immediate", "buffered"])
def test_a_stop_requested_meanwhile_reaches_a_loop_that_only_reports_steps(
    ops: TrainOps, flush_interval: float | None
) -> None:
    with ops.run(flush_interval=flush_interval) as run:
        run.step(0, {"loss": 1.0})
        run.flush()
        ops.cancel_operation(run.operation_id, "loss is flat", requested_by="agent")
        for step in range(1, 200):
            run.step(step, {"loss": 1.0})
            run.flush()  # the answer to the write carries the request
            if run.should_stop() is not None:
                break
        assert step == 1
    assert ops.get_operation(run.operation_id).status is OperationStatus.CANCELLED


def test_run_step_takes_the_numbers_training_loops_hold(ops: TrainOps) -> None:
    with ops.run() as run:
        run.step(0, {"loss": 1, "lr": 0.5})  # names seen for the first time: validated in full
        run.step(1, {"loss": math.nan, "lr": 2})  # known names, plain numbers: the quick path
        run.step(2, {"loss": torch.tensor(0.25), "lr": np.float32(0.125)}, epoch=0)  # tensors and numpy scalars
        run.step(3, {"loss": 2**60})  # beyond a float's exact integers: validated in full
        run.flush()
        points = ops.get_steps(run.operation_id).points

    assert points[0].metrics == {"loss": 1.0, "lr": 0.5}
    assert math.isnan(points[1].metrics["loss"]) and points[1].metrics["lr"] == 2.0
    assert points[2].metrics == {"loss": 0.25, "lr": 0.125} and points[2].epoch == 0
    assert points[3].metrics == {"loss": float(2**60)}
    assert all(point.timestamp is not None for point in points)


def test_run_step_refuses_bad_input_before_sending(ops: TrainOps) -> None:
    with ops.run() as run:
        with pytest.raises(InvalidInputError, match="metric 'loss' must be a number"):
            run.step(0, {"loss": "low"})
        with pytest.raises(InvalidInputError, match="step: Input should be greater than or equal to 0"):
            run.step(-1, {"loss": 1.0})
        with pytest.raises(InvalidInputError, match="step: Input should be a valid integer"):
            run.log(0, step=2.5, val_loss=1.0)  # type: ignore[arg-type]
        run.flush()
        assert ops.get_steps(run.operation_id).points == []


# -- the background sender, with a fake server --------------------------------------------------------------


class FakeServer:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: list[tuple[str, list[int]]] = []

    def ack(self) -> WriteAck:
        return WriteAck(operation_id="op", status=OperationStatus.RUNNING, cancel_requested=False)

    def epochs(self, records: list[EpochRecord]) -> WriteAck:
        self.sent.append(("epochs", [record.epoch for record in records]))
        return self.ack()

    def steps(self, points: list[StepRecord]) -> WriteAck:
        if self.failures:
            self.failures -= 1
            raise ServiceUnavailableError("connection refused")
        self.sent.append(("steps", [point.step for point in points]))
        return self.ack()


def test_the_buffer_sends_steps_after_the_epochs_in_order_and_in_bounded_batches() -> None:
    server = FakeServer(failures=2)
    buffer = EpochBuffer(server.epochs, lambda _: None, interval=0.01, send_steps=server.steps, max_step_batch=4)
    for step in range(10):
        buffer.add_step(StepRecord(step=step))
    buffer.add(EpochRecord(epoch=0))
    buffer.close(timeout=10)

    assert [step for kind, batch in server.sent if kind == "steps" for step in batch] == list(range(10))
    assert max(len(batch) for _, batch in server.sent) <= 4
    assert server.sent[0] == ("epochs", [0])


def test_while_the_server_is_down_waiting_steps_are_bounded_and_flush_counts_them() -> None:
    server = FakeServer(failures=1_000_000)
    buffer = EpochBuffer(server.epochs, lambda _: None, interval=0.01, send_steps=server.steps, max_pending_steps=100)
    for step in range(1000):
        buffer.add_step(StepRecord(step=step))

    with pytest.raises(ServiceUnavailableError, match=r"0 epoch\(s\) and \d+ step\(s\) could not be sent") as refused:
        buffer.flush(timeout=0.3)
    unsent = int(refused.value.message.split(" and ")[1].split(" ")[0])
    assert unsent <= 100
    waiting = [point.step for point in buffer._steps]
    assert waiting[-1] == 999 and waiting == sorted(waiting)  # the newest kept, the order too
