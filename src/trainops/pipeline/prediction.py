"""Predictions from a saved model: the same features as in training, from bars up to the date asked about.

The features of bar t are computed exactly as the training job computed them (``symbol_features`` on the same
files, so indicators warm up from the same first bar) but from the bars up to t only: the base bars opening at
or before t, and the higher-timeframe bars that had closed by t's close. So a prediction never sees the future,
and for a bar that was in the training data it reproduces what the model computed then.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel

from trainops.errors import ArtifactError, InvalidInputError
from trainops.pipeline.artifacts import ModelVersion
from trainops.pipeline.data import align_to_base, timeframe_delta
from trainops.pipeline.indicators import compute_indicator
from trainops.pipeline.labels import LABEL_NAMES
from trainops.pipeline.training import symbol_features
from trainops.schemas.models import Prediction, Signal

MAX_RANGE_BARS = 100_000
OHLCV = ("open", "high", "low", "close", "volume")
_SIGNALS: tuple[Signal, ...] = ("buy", "hold", "sell")  # in LABEL_NAMES order


class BarPrediction(BaseModel):
    """A prediction with the bar and the indicator values behind it."""

    prediction: Prediction
    input_features: dict[str, float]
    bar: dict[str, float]


def frames_until(frames: Mapping[str, pd.DataFrame], end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Every timeframe's bars that opened at or before ``end``; alignment then keeps only those that had closed."""
    return {timeframe: frame.loc[frame.index <= end] for timeframe, frame in frames.items()}


def resolve_bar(
    base: pd.DataFrame, base_timeframe: str, moment: date | datetime | str, *, first_usable: pd.Timestamp
) -> pd.Timestamp:
    """The last base bar at or before ``moment`` (a date means that whole day).

    Raises:
        InvalidInputError: ``moment`` is before the first bar with complete features or past the data; the
            message gives the valid range.
    """
    stamp, whole_day = utc_moment(moment)
    last = pd.Timestamp(base.index[-1])
    valid = f"predictions are possible from {first_usable.isoformat()} to {last.isoformat()}"
    details = {"first": first_usable.isoformat(), "last": last.isoformat()}
    if stamp > last + (pd.Timedelta(0) if whole_day else timeframe_delta(base_timeframe)):
        raise InvalidInputError(f"{moment} is after the last bar of the data; {valid}", details=details)
    limit = stamp + pd.Timedelta(days=1) if whole_day else stamp
    index = base.index[base.index < limit] if whole_day else base.index[base.index <= limit]
    if len(index) == 0 or index[-1] < first_usable:
        raise InvalidInputError(
            f"{moment} is before the first bar with complete features (the indicators' warm-up); {valid}",
            details=details,
        )
    return pd.Timestamp(index[-1])


class RangePredictions(NamedTuple):
    """The predictions of a range of bars, and the bars of the range that have none."""

    predictions: list[BarPrediction]
    incomplete: dict[pd.Timestamp, list[str]]
    """Bars without complete features (an indicator undefined there: a flat or gapped stretch of the data), with
    the features missing."""


def predict_bars(
    version: ModelVersion,
    frames: Mapping[str, pd.DataFrame],
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> list[BarPrediction]:
    """Predictions for every base bar from ``start`` to ``end`` (inclusive) that has complete features, from bars up
    to ``end`` only (:func:`predict_range`, without the bars it skips)."""
    return predict_range(version, frames, start, end).predictions


def predict_range(
    version: ModelVersion,
    frames: Mapping[str, pd.DataFrame],
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> RangePredictions:
    """Predictions for every base bar from ``start`` to ``end`` (inclusive), from bars up to ``end`` only, and the
    bars skipped for incomplete features.

    Features of an earlier bar do not depend on later bars, so one pass over the data up to ``end`` gives every
    bar in the range exactly what a single prediction at that bar would.

    Raises:
        InvalidInputError: more than :data:`MAX_RANGE_BARS` bars.
        ArtifactError: the version's feature list does not match what its strategy computes (a damaged
            ``features.json``).
    """
    config = version.config
    visible = frames_until(frames, end)
    features = symbol_features(config, visible)
    _check_feature_names(list(features.columns), version.feature_names)
    rows = features.loc[(features.index >= start) & (features.index <= end)]
    complete = rows.dropna()
    if len(complete) > MAX_RANGE_BARS:
        raise InvalidInputError(f"{len(complete):,} bars in the range; ask for at most {MAX_RANGE_BARS:,} at once")
    missing = rows.isna().to_numpy()
    gaps = np.flatnonzero(missing.any(axis=1))
    names = [str(name) for name in rows.columns]
    incomplete = {
        pd.Timestamp(stamp): [names[column] for column in np.flatnonzero(flags)]
        for stamp, flags in zip(pd.DatetimeIndex(rows.index)[gaps], missing[gaps], strict=True)
    }
    return RangePredictions(_predictions(version, visible, complete), incomplete)


def _check_feature_names(computed: list[str], expected: list[str]) -> None:
    """The model's inputs are the columns its ``features.json`` lists, in that order: what the strategy in its
    ``config.json`` computes. A difference is a damaged or edited version, named at its first column."""
    if computed == expected:
        return
    position = next(
        (i for i, (mine, theirs) in enumerate(zip(computed, expected, strict=False)) if mine != theirs),
        min(len(computed), len(expected)),
    )
    found = computed[position] if position < len(computed) else "nothing"
    listed = expected[position] if position < len(expected) else "nothing"
    raise ArtifactError(
        f"the model version's features.json does not match the features its config.json computes: at column "
        f"{position} the strategy computes {found}, features.json lists {listed} ({len(computed)} columns "
        f"computed, {len(expected)} listed): its files were edited or damaged, or a trainops that computes other "
        "features wrote it; delete the model and save a retrained run",
        details={"column": position, "computed": found, "listed": listed},
    )


def _predictions(
    version: ModelVersion, visible: Mapping[str, pd.DataFrame], complete: pd.DataFrame
) -> list[BarPrediction]:
    config = version.config
    if complete.empty:
        return []
    x = complete.to_numpy(dtype=np.float32)
    if version.scaler is not None:
        x = version.scaler.transform(x).astype(np.float32)
    with torch.no_grad():
        probabilities = torch.softmax(version.model(torch.from_numpy(x)), dim=1).numpy()
    inputs = indicator_values(version, visible, pd.DatetimeIndex(complete.index))
    base = visible[config.timeframes[0]]
    current = [name for name in version.feature_names if "_lag" not in name]
    memberships = complete[current].to_numpy(dtype=np.float64)
    bars = base.loc[complete.index, list(OHLCV)].to_numpy(dtype=np.float64)
    results = []
    for position, stamp in enumerate(complete.index):
        p = probabilities[position]
        choice = int(p.argmax())
        results.append(
            BarPrediction(
                prediction=Prediction(
                    timestamp=stamp.to_pydatetime(),
                    signal=_SIGNALS[choice],
                    confidence=float(p[choice]),
                    signal_strength=float(p[0] - p[2]),
                    probabilities={name: float(p[i]) for i, name in enumerate(LABEL_NAMES)},
                    fuzzy_outputs={
                        name: float(value) for name, value in zip(current, memberships[position], strict=True)
                    },
                ),
                input_features={name: float(value) for name, value in inputs.loc[stamp].items() if pd.notna(value)},
                bar={column: float(value) for column, value in zip(OHLCV, bars[position], strict=True)},
            )
        )
    return results


def indicator_values(version: ModelVersion, frames: Mapping[str, pd.DataFrame], at: pd.DatetimeIndex) -> pd.DataFrame:
    """Every indicator output on the base bars ``at`` (prefixed by timeframe when there are several)."""
    config = version.config
    base = config.timeframes[0]
    base_index = pd.DatetimeIndex(frames[base].index)
    parts = []
    for timeframe in config.timeframes:
        outputs = pd.concat(
            [compute_indicator(indicator, frames[timeframe]) for indicator in config.indicators], axis=1
        )
        if timeframe != base:
            outputs = align_to_base(outputs, timeframe, base_index, base)
        if len(config.timeframes) > 1:
            outputs = outputs.add_prefix(f"{timeframe}_")
        parts.append(outputs)
    return pd.concat(parts, axis=1).loc[at]


def first_usable_bar(version: ModelVersion, frames: Mapping[str, pd.DataFrame]) -> pd.Timestamp:
    """The first base bar whose features are all known (after every indicator's warm-up and the lags)."""
    features = symbol_features(version.config, frames)
    complete = features.dropna()
    if complete.empty:
        raise InvalidInputError("the data is too short for this model's indicators: no bar has complete features")
    return pd.Timestamp(complete.index[0])


def utc_moment(moment: date | datetime | str) -> tuple[pd.Timestamp, bool]:
    """``moment`` as a tz-naive UTC timestamp, and whether it was a date (meaning the whole day)."""
    if isinstance(moment, str):
        text = moment.strip()
        whole_day = len(text) == 10
        try:
            stamp = pd.Timestamp(text)
        except ValueError:
            raise InvalidInputError(f"{moment!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    elif isinstance(moment, datetime):
        stamp, whole_day = pd.Timestamp(moment), False
    else:
        stamp, whole_day = pd.Timestamp(moment), True
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp, whole_day
