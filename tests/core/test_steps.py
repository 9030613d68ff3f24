"""StepRecord and thin_steps: what a step point may carry, and which points a long run's series keeps."""

from __future__ import annotations

import doctest
import itertools
import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from trainops.core import steps as steps_module
from trainops.core.epoch import MAX_STEP, EpochRecord
from trainops.core.steps import StepRecord, thin_steps


@pytest.mark.parametrize(
    ("steps", "max_points", "options", "kept", "stride"),
    [
        pytest.param(range(5), 5, {}, [0, 1, 2, 3, 4], 1, id="at-the-cap-unchanged"),
        pytest.param(range(10), 8, {}, [0, 4, 8, 9], 4, id="dense-to-half-the-cap"),
        pytest.param(range(10), 2, {}, [0, 9], 16, id="cap-2-first-and-latest"),
        pytest.param(
            [0, 16, 32, 48, 64, *range(65, 101)],
            40,
            {},
            [0, 16, 32, 48, 64, 68, 72, 76, 80, 84, 88, 92, 96, 100],
            4,
            id="without-the-previous-stride-newer-points-end-denser",
        ),
        pytest.param(
            [0, 16, 32, 48, 64, *range(65, 101)],
            40,
            {"stride": 16},
            [0, 16, 32, 48, 64, 80, 96, 100],
            16,
            id="the-previous-stride-keeps-the-spacing-even",
        ),
        pytest.param(
            [49 + 50 * i for i in range(10)], 8, {}, [49, 249, 449, 499], 8, id="odd-offsets-on-a-grid-from-the-origin"
        ),
        pytest.param([5, *range(10, 30)], 10, {"origin": 10}, [5, 10, 18, 26, 29], 8, id="a-late-lower-step"),
    ],
)
def test_thin_steps(steps: Any, max_points: int, options: dict[str, int], kept: list[int], stride: int) -> None:
    thinning = thin_steps(list(steps), max_points, **options)
    assert thinning.kept == kept
    assert thinning.stride == stride


def test_docstring_examples() -> None:
    result = doctest.testmod(steps_module)
    assert result.attempted > 0 and result.failed == 0


def test_appending_a_long_run_keeps_the_cap_the_span_and_an_even_spacing() -> None:
    # what the store does: append, and thin with the remembered stride whenever the cap is passed
    stored: list[int] = []
    stride = 1
    for step in range(100_000):
        stored.append(step)
        if len(stored) > 1000:
            thinning = thin_steps(stored, 1000, origin=0, stride=stride)
            stored, stride = thinning.kept, thinning.stride
        assert len(stored) <= 1000

    gaps = [later - earlier for earlier, later in itertools.pairwise(stored)]
    assert stored[0] == 0 and stored[-1] == 99_999
    assert len(stored) > 500  # the cap is used, not wasted
    thinned = [gap for gap in gaps if gap > 1]
    assert set(thinned[:-1]) == {stride}  # evenly spaced over the run; only the last thinned gap may be shorter
    assert gaps[-10:] == [1] * 10  # the newest points are dense


@pytest.mark.parametrize(
    ("max_points", "stride", "message"),
    [(1, 1, "at least 2 points"), (10, 3, "power of two"), (10, 0, "power of two")],
)
def test_thin_steps_refuses_impossible_settings(max_points: int, stride: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        thin_steps(range(20), max_points, stride=stride)


def test_a_step_point_collects_top_level_metrics_and_keeps_non_finite_values() -> None:
    point = StepRecord.model_validate({"step": 12, "epoch": 0, "loss": "NaN", "metrics": {"lr": 0.1}})

    assert point.metrics.keys() == {"loss", "lr"}
    assert math.isnan(point.metrics["loss"])
    wire = json.loads(point.model_dump_json())
    assert wire["metrics"] == {"lr": 0.1, "loss": "NaN"}
    back = StepRecord.model_validate_json(point.model_dump_json())
    assert math.isnan(back.metrics["loss"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"step": -1}, "greater than or equal to 0", id="negative-step"),
        pytest.param({"step": 1.5}, "valid integer", id="fractional-step"),
        pytest.param({"step": MAX_STEP + 1}, "less than or equal to", id="step-beyond-json-integers"),
        pytest.param({"step": 1, "epoch": -2}, "greater than or equal to 0", id="negative-epoch"),
        pytest.param({"step": 1, "loss": "high"}, "must be a number", id="text-metric"),
        pytest.param({"step": 1, "metrics": {"step": 3}}, "'step' is a standard field", id="shadowing-name"),
        pytest.param({"step": 1, "bad name": 3}, "is not allowed", id="bad-name"),
        pytest.param(
            {"step": 1, "metrics": {f"m{i}": 0.0 for i in range(StepRecord.MAX_METRICS + 1)}},
            "at most 256",
            id="too-many-metrics",
        ),
    ],
)
def test_a_step_point_refuses_bad_input(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StepRecord.model_validate(data)


def test_an_epoch_records_the_global_step_which_no_custom_metric_may_shadow() -> None:
    record = EpochRecord.model_validate({"epoch": 3, "step": 1200, "f1": 0.5})
    assert record.step == 1200
    assert record.metrics == {"f1": 0.5}
    assert EpochRecord(epoch=0).step is None

    with pytest.raises(ValidationError, match="'step' is a standard field"):
        EpochRecord(epoch=0, metrics={"step": 5})
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        EpochRecord(epoch=0, step=-1)
