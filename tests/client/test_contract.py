"""The TrainOps contract: the same behaviour in-process and over HTTP, on SQLite and PostgreSQL.

Every test here runs four times (local/http x sqlite/postgresql) through the ``ops`` fixture.
"""

from __future__ import annotations

import math
import re
import time

import pytest

from tests.policies import patience
from trainops import (
    Action,
    ConflictError,
    EpochRecord,
    InvalidInputError,
    MonitorPolicy,
    NotFoundError,
    OperationCancelledError,
    OperationStatus,
    ProgressState,
    Replay,
    TrainOps,
)
from trainops.core.operation import looks_like_operation_id
from trainops.store.migrate import SCHEMA_REVISION


def overfitting_history(epochs: int = 50, best: int = 30) -> list[EpochRecord]:
    records = []
    for epoch in range(epochs):
        train = 1.0 - 0.015 * epoch
        val = 1.0 - 0.02 * epoch if epoch <= best else 1.0 - 0.02 * best + 0.004 * (epoch - best)
        records.append(EpochRecord(epoch=epoch, train_loss=train, val_loss=val, learning_rate=1e-3))
    return records


def test_create_registers_a_pending_operation(ops: TrainOps) -> None:
    created = ops.create_operation("training", metadata={"symbol": "EURUSD", "note": "kept"}, total_epochs=50)

    assert looks_like_operation_id(created.operation_id)
    assert created.operation_id.startswith("op_training_")
    assert created.status is OperationStatus.PENDING
    assert created.total_epochs == 50
    fetched = ops.get_operation(created.operation_id)
    assert fetched.metadata.symbol == "EURUSD"
    assert fetched.metadata.model_extra == {"note": "kept"}
    assert fetched.cancel_requested is False


def test_epochs_are_upserted_and_history_is_ordered(ops: TrainOps) -> None:
    operation = ops.create_operation(total_epochs=3)
    ops.add_epoch(operation.operation_id, EpochRecord(epoch=1, train_loss=0.9, val_loss=1.0))
    ops.add_epochs(
        operation.operation_id,
        [EpochRecord(epoch=0, train_loss=1.2, val_loss=1.3), EpochRecord(epoch=2, val_loss=0.8, metrics={"f1": 0.5})],
    )
    ack = ops.add_epoch(operation.operation_id, EpochRecord(epoch=1, train_loss=0.7, val_loss=0.75))

    assert ack.status is OperationStatus.RUNNING  # writing to a pending operation starts it
    block = ops.get_metrics(operation.operation_id).metrics
    assert [record.epoch for record in block.epochs] == [0, 1, 2]
    assert block.epochs[1].val_loss == 0.75  # replaced, not duplicated
    assert block.epochs[2].metrics == {"f1": 0.5}
    assert block.total_epochs_completed == 3
    assert block.total_epochs_planned == 3
    assert ops.get_operation(operation.operation_id).last_epoch == 2


def test_a_range_of_epochs_is_read_whole_with_the_diagnosis_over_the_run(ops: TrainOps) -> None:
    operation = ops.create_operation(total_epochs=60)
    ops.add_epochs(operation.operation_id, overfitting_history())
    whole = ops.get_metrics(operation.operation_id)

    ranged = ops.get_metrics(operation.operation_id, from_epoch=20, to_epoch=29)
    assert [record.epoch for record in ranged.metrics.epochs] == list(range(20, 30))
    assert ranged.metrics.best_epoch == whole.metrics.best_epoch == 30  # judged on every epoch, not the range
    thinned = ops.get_metrics(operation.operation_id, from_epoch=5, points=10)
    assert thinned.metrics.epochs[0].epoch == 5 and len(thinned.metrics.epochs) <= 10
    assert [r.epoch for r in ops.get_metrics(operation.operation_id, to_epoch=2).metrics.epochs] == [0, 1, 2]
    with pytest.raises(InvalidInputError, match="from_epoch"):
        ops.get_metrics(operation.operation_id, from_epoch=30, to_epoch=20)
    with pytest.raises(InvalidInputError, match="from_epoch"):
        ops.get_metrics(operation.operation_id, from_epoch=-1)


def test_non_finite_values_are_kept_and_flag_divergence(ops: TrainOps) -> None:
    operation = ops.create_operation()
    ops.add_epochs(
        operation.operation_id,
        [
            EpochRecord(epoch=0, train_loss=1.0, val_loss=1.0),
            EpochRecord(epoch=1, train_loss=math.nan, val_loss=math.inf, metrics={"grad_norm": -math.inf}),
        ],
    )

    block = ops.get_metrics(operation.operation_id).metrics
    diverged = block.epochs[1]
    assert diverged.train_loss is not None and math.isnan(diverged.train_loss)
    assert diverged.val_loss == math.inf
    assert diverged.metrics["grad_norm"] == -math.inf
    assert block.is_diverging
    signal = next(signal for signal in block.signals if signal.rule == "non_finite")
    assert signal.evidence["first_epoch"] == 1
    assert block.recommendation.action is Action.STOP_AND_RESTORE_BEST
    assert block.recommendation.restore_epoch == 0


def test_overfitting_run_is_diagnosed_with_evidence(ops: TrainOps) -> None:
    operation = ops.create_operation(total_epochs=50)
    ops.add_epochs(operation.operation_id, overfitting_history())

    block = ops.get_metrics(operation.operation_id).metrics

    assert block.best_epoch == 30
    assert block.best_val_loss == pytest.approx(0.4)
    assert block.epochs_since_improvement == 19
    assert block.is_overfitting and block.overfitting_since_epoch == 31
    assert block.recommendation.action is Action.STOP_AND_RESTORE_BEST
    assert block.recommendation.restore_epoch == 30
    # all 50 planned epochs are done: nothing is left to gain, and the overfitting is named as the evidence
    assert block.recommendation.reason.startswith("Stop and use epoch 30: the run has reached its planned length")
    assert "; val_loss rose 19.0% over epochs 31-49 while train_loss fell" in block.recommendation.reason
    assert block.projection is not None and block.projection.evidence["epochs_left"] == 0


def test_since_epoch_returns_newer_epochs_but_diagnoses_all(ops: TrainOps) -> None:
    operation = ops.create_operation()
    ops.add_epochs(operation.operation_id, overfitting_history())

    block = ops.get_metrics(operation.operation_id, since_epoch=45).metrics

    assert [record.epoch for record in block.epochs] == [46, 47, 48, 49]
    assert block.best_epoch == 30
    assert block.total_epochs_completed == 50


def test_policy_changes_the_diagnosis(ops: TrainOps) -> None:
    operation = ops.create_operation()
    flat = [EpochRecord(epoch=e, train_loss=1.0 / (e + 1), val_loss=0.5 if e else 1.0) for e in range(8)]
    ops.add_epochs(operation.operation_id, flat)

    patient = ops.get_metrics(operation.operation_id, policy=MonitorPolicy(**patience(10))).metrics
    impatient = ops.get_metrics(operation.operation_id, policy=MonitorPolicy(**patience(3))).metrics
    projected = ops.get_metrics(operation.operation_id, policy=MonitorPolicy(patience=3)).metrics
    assert patient.projection is None
    assert projected.projection is not None  # the default rule: a flat run, judged over the next 3 epochs
    assert projected.recommendation.action is Action.STOP_AND_RESTORE_BEST

    assert patient.recommendation.action is Action.CONTINUE
    assert impatient.is_plateaued
    assert impatient.recommendation.action is Action.STOP_AND_RESTORE_BEST
    assert impatient.recommendation.restore_epoch == 1


def plateau_history() -> list[EpochRecord]:
    """Best at epoch 1, then flat: patience 3 would have stopped at epoch 4, patience 20 never."""
    return [EpochRecord(epoch=e, val_loss=0.5 if e else 1.0) for e in range(15)]


def test_diagnose_replays_a_policy_and_changes_nothing(ops: TrainOps) -> None:
    operation = ops.create_operation(total_epochs=30)
    ops.add_epochs(operation.operation_id, plateau_history())
    before = ops.get_operation(operation.operation_id)
    metrics_before = ops.get_metrics(operation.operation_id)

    impatient = ops.diagnose(operation.operation_id, MonitorPolicy(**patience(3)))
    patient = ops.diagnose(operation.operation_id, patience(20))

    assert isinstance(impatient, Replay)
    assert (impatient.stop_epoch, impatient.restore_epoch, impatient.epochs_saved) == (4, 1, 25)
    assert impatient.stop_reason
    assert impatient.policy == MonitorPolicy(**patience(3))
    assert impatient.total_epochs_planned == 30
    assert [step.epoch for step in impatient.steps] == list(range(15))
    assert impatient.steps[4].action is Action.STOP_AND_RESTORE_BEST and "plateau" in impatient.steps[4].rules
    assert (patient.stop_epoch, patient.restore_epoch, patient.epochs_saved) == (None, None, None)
    assert {step.action for step in patient.steps} == {Action.CONTINUE}
    # a dry run: the operation and its history are as they were
    assert ops.get_operation(operation.operation_id) == before
    assert ops.get_metrics(operation.operation_id) == metrics_before


def test_diagnose_takes_a_policy_as_a_model_or_a_mapping_and_a_plan(ops: TrainOps) -> None:
    operation = ops.create_operation(total_epochs=30)
    ops.add_epochs(operation.operation_id, plateau_history())

    as_model = ops.diagnose(operation.operation_id, MonitorPolicy(**patience(3, min_delta=0.01)))
    as_mapping = ops.diagnose(operation.operation_id, patience(3, min_delta=0.01))
    default = ops.diagnose(operation.operation_id)
    planned = ops.diagnose(operation.operation_id, patience(3), total_epochs_planned=100)

    assert as_model == as_mapping
    assert (as_model.stop_epoch, as_model.restore_epoch) == (4, 1)
    assert default.policy == MonitorPolicy()
    assert default == ops.diagnose(operation.operation_id, MonitorPolicy())
    assert (planned.total_epochs_planned, planned.epochs_saved) == (100, 95)


def test_diagnose_a_pending_operation_leaves_it_pending(ops: TrainOps) -> None:
    operation = ops.create_operation()

    replayed = ops.diagnose(operation.operation_id, {"patience": 1})

    assert (replayed.epochs_replayed, replayed.steps, replayed.stop_epoch) == (0, [], None)
    assert ops.get_operation(operation.operation_id) == operation


def test_diagnose_refuses_unknown_ids_bad_policies_and_overlong_histories(
    ops: TrainOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    operation = ops.create_operation()
    ops.add_epochs(operation.operation_id, plateau_history())

    with pytest.raises(NotFoundError, match="op_training_20250101_000000_deadbeef"):
        ops.diagnose("op_training_20250101_000000_deadbeef")
    with pytest.raises(InvalidInputError, match=r"policy\.patience: Input should be greater than or equal to 1"):
        ops.diagnose(operation.operation_id, {"patience": 0})
    with pytest.raises(InvalidInputError, match=r"policy\.patiense: Extra inputs are not permitted"):
        ops.diagnose(operation.operation_id, {"patiense": 3})
    with pytest.raises(InvalidInputError, match="total_epochs_planned"):
        ops.diagnose(operation.operation_id, total_epochs_planned=0)
    # the server of the http transport runs in this process, so the limit it reads is patched too
    monkeypatch.setattr("trainops.service.operations.MAX_REPLAY_EPOCHS", 10)
    with pytest.raises(InvalidInputError, match=r"has 15 epochs; a replay .* takes at most 10\b"):
        ops.diagnose(operation.operation_id)


def test_cancel_reaches_the_trainer_and_the_run_ends_cancelled(ops: TrainOps) -> None:
    operation = ops.create_operation(total_epochs=10)
    ops.add_epoch(operation.operation_id, EpochRecord(epoch=0, val_loss=1.0))

    cancelled = ops.cancel_operation(operation.operation_id, "val_loss diverging", requested_by="agent")
    assert cancelled.status is OperationStatus.RUNNING  # the trainer decides when it has stopped
    assert cancelled.cancel_request is not None and cancelled.cancel_request.requested_by == "agent"

    ack = ops.add_epoch(operation.operation_id, EpochRecord(epoch=1, val_loss=0.9))
    assert ack.cancel_requested and ack.cancel_reason == "val_loss diverging"
    progress_ack = ops.report_progress(operation.operation_id, ProgressState(percentage=50, phase="training"))
    assert progress_ack.cancel_requested

    # A second request does not overwrite the reason that stopped the run.
    ops.cancel_operation(operation.operation_id, "another reason")
    ended = ops.finish_operation(operation.operation_id, OperationStatus.CANCELLED)
    assert ended.status is OperationStatus.CANCELLED
    assert ended.cancel_reason == "val_loss diverging"
    assert ops.get_metrics(operation.operation_id).metrics.total_epochs_completed == 2


def test_cancelling_a_pending_operation_cancels_it_at_once(ops: TrainOps) -> None:
    operation = ops.create_operation()
    cancelled = ops.cancel_operation(operation.operation_id, "not needed")
    assert cancelled.status is OperationStatus.CANCELLED
    assert cancelled.completed_at is not None


def test_finished_operations_refuse_writes_and_keep_their_data(ops: TrainOps) -> None:
    operation = ops.create_operation()
    ops.add_epoch(operation.operation_id, EpochRecord(epoch=0, val_loss=1.0))
    ops.finish_operation(operation.operation_id, result={"accuracy": 0.9})

    with pytest.raises(ConflictError, match="already completed"):
        ops.add_epoch(operation.operation_id, EpochRecord(epoch=1, val_loss=0.5))
    with pytest.raises(ConflictError, match="already completed"):
        ops.cancel_operation(operation.operation_id, "too late")
    with pytest.raises(ConflictError, match="already completed"):
        ops.finish_operation(operation.operation_id, OperationStatus.FAILED, error="no")
    with pytest.raises(ConflictError):
        ops.report_progress(operation.operation_id, ProgressState(percentage=100))

    assert ops.get_metrics(operation.operation_id).metrics.total_epochs_completed == 1
    assert ops.get_operation(operation.operation_id).result == {"accuracy": 0.9}


def test_unknown_ids_raise_not_found(ops: TrainOps) -> None:
    missing = "op_training_20250101_000000_deadbeef"
    with pytest.raises(NotFoundError, match="trainops ops list"):
        ops.get_operation(missing)
    with pytest.raises(NotFoundError):
        ops.get_metrics(missing)
    with pytest.raises(NotFoundError):
        ops.add_epoch(missing, EpochRecord(epoch=0))
    with pytest.raises(NotFoundError):
        ops.cancel_operation(missing, "why not")
    with pytest.raises(NotFoundError):
        ops.get_results(missing)
    with pytest.raises(NotFoundError, match="trainops ops list"):
        ops.get_job(missing)


def test_an_id_of_megabytes_is_not_found_in_a_message_of_a_line(ops: TrainOps) -> None:
    with pytest.raises(NotFoundError) as raised:
        ops.get_operation("y" * 100_000)
    assert len(raised.value.message) < 300 and f"no operation '{'y' * 100}...'" in raised.value.message


@pytest.mark.parametrize("hostile", ["op?x=1", "op#frag", "../../health", "op/metrics", "op x%2F"])
def test_an_id_with_url_characters_is_that_id_everywhere(ops: TrainOps, hostile: str) -> None:
    """Over HTTP too, an id is one path segment: not a query, a fragment or a way up the URL."""
    with pytest.raises(NotFoundError, match=re.escape(repr(hostile))):
        ops.get_operation(hostile)
    with pytest.raises(NotFoundError, match=re.escape(repr(hostile))):
        ops.cancel_operation(hostile, "why not")


def test_an_operation_a_script_reports_into_has_no_executor_job(ops: TrainOps) -> None:
    operation = ops.create_operation(total_epochs=2)
    assert ops.get_job(operation.operation_id) is None  # the script runs it, no executor (Ray's: test_ray_executor)
    ops.start_operation(operation.operation_id, worker="elsewhere:1")
    assert ops.get_job(operation.operation_id) is None


def test_bad_arguments_raise_invalid_input(ops: TrainOps) -> None:
    operation = ops.create_operation()
    with pytest.raises(InvalidInputError, match="reason"):
        ops.cancel_operation(operation.operation_id, "   ")
    with pytest.raises(InvalidInputError, match="limit"):
        ops.list_operations(limit=5000)
    with pytest.raises(InvalidInputError, match="error"):
        ops.finish_operation(operation.operation_id, OperationStatus.FAILED)
    with pytest.raises(InvalidInputError):
        ops.create_operation("Not A Type")
    with pytest.raises(InvalidInputError):
        ops.create_operation(total_epochs=0)
    assert ops.get_operation(operation.operation_id).status is OperationStatus.PENDING


def test_results_wait_for_the_end(ops: TrainOps) -> None:
    operation = ops.create_operation(total_epochs=50)
    ops.add_epochs(operation.operation_id, overfitting_history())
    with pytest.raises(ConflictError, match="still running at epoch 49"):
        ops.get_results(operation.operation_id)

    ops.finish_operation(operation.operation_id, result={"test_accuracy": 0.61})
    results = ops.get_results(operation.operation_id)

    assert results.status is OperationStatus.COMPLETED
    assert results.result == {"test_accuracy": 0.61}
    assert results.best_epoch == 30
    assert results.final_epoch is not None and results.final_epoch.epoch == 49
    assert results.epochs_completed == 50
    assert results.duration_seconds is not None and results.duration_seconds >= 0


def test_list_filters_pages_and_counts(ops: TrainOps) -> None:
    first = ops.create_operation("training")
    second = ops.create_operation("evaluation")
    third = ops.create_operation("training")
    ops.add_epoch(third.operation_id, EpochRecord(epoch=0))
    ops.finish_operation(first.operation_id)

    everything = ops.list_operations()
    assert [op.operation_id for op in everything.items] == [
        third.operation_id,
        second.operation_id,
        first.operation_id,
    ]
    assert (everything.total, everything.active) == (3, 2)
    assert [op.operation_id for op in ops.list_operations(operation_type="evaluation").items] == [second.operation_id]
    active = ops.list_operations(active_only=True)
    assert {op.operation_id for op in active.items} == {second.operation_id, third.operation_id}
    running = ops.list_operations(status=OperationStatus.RUNNING)
    assert [op.operation_id for op in running.items] == [third.operation_id]
    page = ops.list_operations(limit=1, offset=1)
    assert [op.operation_id for op in page.items] == [second.operation_id]
    assert page.total == 3


def test_progress_is_stored(ops: TrainOps) -> None:
    operation = ops.create_operation(total_epochs=4)
    ops.report_progress(operation.operation_id, ProgressState.training(2, 4, batch=10, total_batches=20))

    stored = ops.get_operation(operation.operation_id)
    assert stored.status is OperationStatus.RUNNING
    assert stored.progress.message == "Epoch 2/4 · Batch 10/20"
    assert stored.progress.percentage == pytest.approx(5 + 90 * 1.5 / 4)
    assert stored.last_heartbeat is not None


def test_run_completes_fails_or_cancels(ops: TrainOps) -> None:
    with ops.run(total_epochs=2, metadata={"strategy": "demo"}) as run:
        run.log(0, train_loss=1.0, val_loss=1.1)
        run.log(1, train_loss=0.5, val_loss=0.6)
        run.result = {"val_loss": 0.6}
    done = ops.get_operation(run.operation_id)
    assert done.status is OperationStatus.COMPLETED and done.result == {"val_loss": 0.6}

    with pytest.raises(RuntimeError), ops.run() as failing:
        raise RuntimeError("CUDA out of memory")
    failed = ops.get_operation(failing.operation_id)
    assert failed.status is OperationStatus.FAILED
    assert failed.error == "RuntimeError: CUDA out of memory"

    with ops.run(total_epochs=100, flush_interval=None) as stopped:
        for epoch in range(100):
            stopped.log(epoch, val_loss=1.0 / (epoch + 1))
            if epoch == 2:
                ops.cancel_operation(stopped.operation_id, "enough", requested_by="agent")
            if stopped.should_stop():
                break
        request = stopped.should_stop()
    assert request is not None and request.reason == "enough" and request.requested_by == "agent"
    assert epoch == 3  # the write after the request carried it back
    cancelled = ops.get_operation(stopped.operation_id)
    assert cancelled.status is OperationStatus.CANCELLED
    assert cancelled.epochs_completed == 4

    with ops.run(flush_interval=None) as raising:
        ops.cancel_operation(raising.operation_id, "stop now")
        raising.log(0, val_loss=1.0)
        with pytest.raises(OperationCancelledError, match="stop now"):
            raising.raise_if_stopped()
    assert ops.get_operation(raising.operation_id).status is OperationStatus.CANCELLED


def test_buffered_run_stores_every_epoch_and_hears_a_stop(ops: TrainOps) -> None:
    with ops.run(total_epochs=1000, flush_interval=0.05) as run:
        for epoch in range(1000):
            run.log(epoch, train_loss=1.0 / (epoch + 1), val_loss=1.0 / (epoch + 1))
            if epoch == 10:
                run.flush()
                assert ops.get_operation(run.operation_id).epochs_completed == 11
                ops.cancel_operation(run.operation_id, "enough for now", requested_by="agent")
            if run.should_stop():
                break
            time.sleep(0.002)
        assert epoch < 999, "the stop request never reached the buffered run"
    cancelled = ops.get_operation(run.operation_id)
    assert cancelled.status is OperationStatus.CANCELLED
    assert cancelled.cancel_reason == "enough for now"
    assert cancelled.epochs_completed == epoch + 1  # the last epochs were sent before the run ended
    metrics = ops.get_metrics(run.operation_id).metrics
    assert [record.epoch for record in metrics.epochs] == list(range(epoch + 1))


def test_buffered_run_reports_epochs_it_could_not_store(ops: TrainOps) -> None:
    run = ops.run(flush_interval=0.05)

    def train() -> None:
        with run:
            run.log(0, val_loss=1.0)
            run.flush()
            ops.cancel_operation(run.operation_id, "stop")
            ops.finish_operation(run.operation_id, OperationStatus.CANCELLED)  # ended elsewhere
            run.log(1, val_loss=0.9)

    with pytest.raises(ConflictError, match="already cancelled"):
        train()
    assert ops.get_metrics(run.operation_id).metrics.total_epochs_completed == 1


def test_health(ops: TrainOps) -> None:
    health = ops.health()
    assert health.status == "ok"
    assert health.database in ("sqlite", "postgresql")
    assert health.schema_revision == SCHEMA_REVISION


def test_completion_fills_the_progress_bar_but_failure_keeps_where_it_stopped(ops: TrainOps) -> None:
    done = ops.create_operation(total_epochs=4)
    ops.report_progress(done.operation_id, ProgressState.training(3, 4))
    completed = ops.finish_operation(done.operation_id)
    assert completed.progress.percentage == 100.0
    assert (completed.progress.phase, completed.progress.message) == ("finished", "Completed")

    broken = ops.create_operation(total_epochs=4)
    ops.report_progress(broken.operation_id, ProgressState.training(3, 4))
    failed = ops.finish_operation(broken.operation_id, OperationStatus.FAILED, error="out of memory")
    assert failed.progress.message == "Epoch 3/4"
    assert failed.progress.percentage < 100.0


def test_a_loop_that_never_asked_to_stop_ends_completed(ops: TrainOps) -> None:
    with ops.run(total_epochs=3, flush_interval=None) as run:
        run.log(0, val_loss=1.0)
        ops.cancel_operation(run.operation_id, "stop please", requested_by="agent")
        run.log(1, val_loss=0.9)  # the answer carries the request, but the loop never looks
        run.log(2, val_loss=0.8)
    ended = ops.get_operation(run.operation_id)
    assert ended.status is OperationStatus.COMPLETED
    assert ended.cancel_reason == "stop please"  # the request stays on record
    assert ended.epochs_completed == 3
