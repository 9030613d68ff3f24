"""OperationsService's per-step series: writes, the configured cap, queries by step and metric, refusals."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from trainops.core import OperationStatus
from trainops.core.steps import StepRecord
from trainops.errors import ConfigurationError, ConflictError, InvalidInputError
from trainops.schemas.steps import MAX_STEPS_PER_WRITE
from trainops.service.bootstrap import open_service
from trainops.service.operations import OperationsService
from trainops.settings import Settings, get_settings


@pytest.fixture
def capped(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[OperationsService]:
    """A service opened from settings whose TRAINOPS_MAX_STEP_POINTS is 20."""
    monkeypatch.setenv("TRAINOPS_MAX_STEP_POINTS", "20")
    get_settings.cache_clear()
    service = open_service(get_settings())
    yield service
    service.store.engine.dispose()
    get_settings.cache_clear()


def test_the_cap_comes_from_the_settings_and_the_series_says_when_it_thinned(capped: OperationsService) -> None:
    operation = capped.create()
    capped.add_steps(operation.operation_id, [StepRecord(step=step, metrics={"loss": 1.0}) for step in range(20)])
    assert capped.steps(operation.operation_id).thinned is False

    ack = capped.add_steps(operation.operation_id, [StepRecord(step=20, metrics={"loss": 0.5})])
    series = capped.steps(operation.operation_id)

    assert ack.accepted == 1 and ack.status is OperationStatus.RUNNING
    assert series.max_points == 20 and series.thinned is True
    assert len(series.points) <= 20
    assert series.points[0].step == 0 and series.points[-1].step == 20
    assert series.points[-1].metrics == {"loss": 0.5}


def test_steps_filter_by_step_and_metric(service: OperationsService) -> None:
    operation = service.create()
    service.add_steps(
        operation.operation_id,
        [
            StepRecord(step=0, epoch=0, metrics={"loss": 1.0, "lr": 0.1}),
            StepRecord(step=1, epoch=0, metrics={"loss": math.nan}),
            StepRecord(step=2, epoch=1, metrics={"lr": 0.05, "grad_norm": 3.0}),
        ],
    )

    assert [point.step for point in service.steps(operation.operation_id, since_step=0).points] == [1, 2]
    lr = service.steps(operation.operation_id, metric="lr")
    assert [(point.step, point.metrics) for point in lr.points] == [(0, {"lr": 0.1}), (2, {"lr": 0.05})]
    loss = service.steps(operation.operation_id, metric="loss", since_step=0).points
    assert [point.step for point in loss] == [1] and math.isnan(loss[0].metrics["loss"])
    assert [point.epoch for point in service.steps(operation.operation_id).points] == [0, 0, 1]


def test_a_metric_the_steps_never_reported_is_refused_with_those_they_did(service: OperationsService) -> None:
    operation = service.create()
    assert service.steps(operation.operation_id, metric="loss").points == []  # nothing reported yet: no judgement
    service.add_steps(operation.operation_id, [StepRecord(step=0, metrics={"loss": 1.0, "lr": 0.1})])

    with pytest.raises(InvalidInputError, match="never reported 'los'; they report loss, lr"):
        service.steps(operation.operation_id, metric="los")


def test_writes_are_refused_past_the_per_write_limit_and_after_the_end(service: OperationsService) -> None:
    operation = service.create()
    too_many = [
        StepRecord.model_construct(step=step, epoch=None, metrics={}) for step in range(MAX_STEPS_PER_WRITE + 1)
    ]
    with pytest.raises(InvalidInputError, match="send at most 100,000 per request"):
        service.add_steps(operation.operation_id, too_many)

    service.add_steps(operation.operation_id, [StepRecord(step=0, metrics={"loss": 1.0})])
    service.cancel(operation.operation_id, "enough")
    service.finish(operation.operation_id, OperationStatus.CANCELLED)
    with pytest.raises(ConflictError, match="accepts no more steps"):
        service.add_steps(operation.operation_id, [StepRecord(step=1, metrics={"loss": 1.0})])
    assert [point.step for point in service.steps(operation.operation_id).points] == [0]


def test_a_cancel_reaches_the_writer_of_steps(service: OperationsService) -> None:
    operation = service.create()
    service.add_steps(operation.operation_id, [StepRecord(step=0)])
    service.cancel(operation.operation_id, "loss exploded at step 0", requested_by="agent")

    ack = service.add_steps(operation.operation_id, [StepRecord(step=1)])
    assert ack.cancel_requested is True and ack.cancel_reason == "loss exploded at step 0"


def test_a_cap_below_two_is_refused(service: OperationsService, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInputError, match="at least 2"):
        OperationsService(service.store, max_step_points=1)
    monkeypatch.setenv("TRAINOPS_MAX_STEP_POINTS", "1")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="TRAINOPS_MAX_STEP_POINTS"):
            get_settings()
    finally:
        get_settings.cache_clear()
