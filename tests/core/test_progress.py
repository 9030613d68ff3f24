"""Progress: the shared phase bands and the training progress every producer reports."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from pydantic import ValidationError

from trainops.core import Phase, ProgressState, band_percentage
from trainops.core.progress import PHASE_BANDS


@pytest.mark.parametrize(
    ("phase", "fraction", "expected"),
    [
        pytest.param(Phase.PREPROCESSING, 0.0, 0.0, id="preprocessing-start"),
        pytest.param(Phase.PREPROCESSING, 0.5, 2.5, id="preprocessing-half"),
        pytest.param(Phase.PREPROCESSING, 1.0, 5.0, id="preprocessing-end"),
        pytest.param(Phase.PREPARATION, 0.7, 5.0, id="preparation-is-a-point"),
        pytest.param(Phase.TRAINING, 0.0, 5.0, id="training-start"),
        pytest.param(Phase.TRAINING, 0.5, 50.0, id="training-half"),
        pytest.param(Phase.TRAINING, 1 / 7, 17.857, id="training-rounded-to-3-places"),
        pytest.param(Phase.TRAINING, 1.0, 95.0, id="training-end"),
        pytest.param(Phase.TRAINING, -0.5, 5.0, id="clamped-below"),
        pytest.param(Phase.TRAINING, 1.5, 95.0, id="clamped-above"),
        pytest.param(Phase.TRAINING, math.inf, 95.0, id="clamped-inf"),
        pytest.param(Phase.TRAINING, -math.inf, 5.0, id="clamped-minus-inf"),
        pytest.param(Phase.EVALUATION, 0.5, 97.5, id="evaluation-half"),
        pytest.param(Phase.FINISHED, 0.0, 100.0, id="finished"),
    ],
)
def test_band_percentage(phase: Phase, fraction: float, expected: float) -> None:
    assert band_percentage(phase, fraction) == expected


def test_band_percentage_keeps_nan_inside_the_band() -> None:
    assert 5.0 <= band_percentage(Phase.TRAINING, math.nan) <= 95.0


def test_phase_bands_cover_0_to_100_without_gaps_in_phase_order() -> None:
    bands = [PHASE_BANDS[phase] for phase in Phase]

    assert bands[0][0] == 0.0
    assert bands[-1][1] == 100.0
    for (_, high), (next_low, _) in itertools.pairwise(bands):
        assert high == next_low
    assert all(low <= high for low, high in bands)


@pytest.mark.parametrize(
    ("epoch", "total_epochs", "batch", "total_batches", "percentage", "message"),
    [
        pytest.param(5, 100, 120, 500, 8.816, "Epoch 5/100 · Batch 120/500", id="mid-epoch"),
        pytest.param(5, 100, None, None, 9.5, "Epoch 5/100", id="epoch-only-counts-the-epoch-done"),
        pytest.param(1, 10, 0, 50, 5.0, "Epoch 1/10 · Batch 0/50", id="first-batch"),
        pytest.param(1, 10, None, None, 14.0, "Epoch 1/10", id="first-epoch"),
        pytest.param(10, 10, None, None, 95.0, "Epoch 10/10", id="last-epoch-fills-the-band"),
        pytest.param(10, 10, 25, 50, 90.5, "Epoch 10/10 · Batch 25/50", id="last-epoch-half"),
        pytest.param(3, 10, 5, None, 32.0, "Epoch 3/10", id="batch-without-total-is-ignored"),
        pytest.param(3, 10, 5, 0, 32.0, "Epoch 3/10", id="zero-total-batches-is-ignored"),
        pytest.param(12, 10, None, None, 95.0, "Epoch 12/10", id="overrun-clamped"),
        pytest.param(1, 0, None, None, 5.0, "Epoch 1/0", id="zero-total-epochs"),
    ],
)
def test_training_progress(
    epoch: int,
    total_epochs: int,
    batch: int | None,
    total_batches: int | None,
    percentage: float,
    message: str,
) -> None:
    state = ProgressState.training(epoch, total_epochs, batch=batch, total_batches=total_batches)

    assert state.percentage == percentage
    assert state.message == message


def test_training_progress_fields() -> None:
    state = ProgressState.training(5, 100, batch=120, total_batches=500)

    assert state.phase == Phase.TRAINING == "training"
    assert state.current_step == "epoch 5"
    assert (state.epoch, state.total_epochs) == (5, 100)
    assert (state.batch, state.total_batches) == (120, 500)
    assert (state.items_done, state.items_total) == (5, 100)
    assert state.context == {}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"percentage": 100.5}, "less than or equal to 100", id="over-100"),
        pytest.param({"percentage": -0.1}, "greater than or equal to 0", id="negative"),
        pytest.param({"percentage": math.nan}, "finite number", id="nan"),
        pytest.param({"epoch": -1}, "greater than or equal to 0", id="negative-epoch"),
        pytest.param({"phase": "x" * 65}, "at most 64 characters", id="long-phase"),
        pytest.param({"eta": 3}, "Extra inputs are not permitted", id="unknown-field"),
    ],
)
def test_progress_state_validation(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ProgressState(**fields)
