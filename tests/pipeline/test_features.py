"""Lagged features and the train-only z-score scaler."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from trainops.errors import DataError, StrategyError
from trainops.pipeline.features import FeatureScaler, add_lags


def features_frame(rows: int = 6) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=rows, freq="h", name="timestamp")
    return pd.DataFrame({"a": np.arange(rows, dtype=float), "b": np.arange(rows, dtype=float) * 10 + 1}, index=index)


@pytest.mark.parametrize(
    ("lookback", "columns"),
    [
        (0, ["a", "b"]),
        (1, ["a", "b", "a_lag1", "b_lag1"]),
        (3, ["a", "b", "a_lag1", "b_lag1", "a_lag2", "b_lag2", "a_lag3", "b_lag3"]),
    ],
)
def test_add_lags_names_and_orders_columns(lookback: int, columns: list[str]) -> None:
    assert list(add_lags(features_frame(), lookback).columns) == columns


def test_lag_k_at_row_t_is_the_value_at_row_t_minus_k() -> None:
    frame = features_frame(8)

    lagged = add_lags(frame, 3)

    assert lagged.index.equals(frame.index)
    for k in (1, 2, 3):
        for column in ("a", "b"):
            assert lagged[f"{column}_lag{k}"].iloc[:k].isna().all()
            for t in range(k, len(frame)):
                assert lagged[f"{column}_lag{k}"].iloc[t] == frame[column].iloc[t - k]


def test_add_lags_leaves_its_input_alone() -> None:
    frame = features_frame()

    add_lags(frame, 2)
    unlagged = add_lags(frame, 0)
    unlagged.iloc[0, 0] = 99.0

    assert list(frame.columns) == ["a", "b"]
    assert frame.iloc[0, 0] == 0.0


@pytest.mark.parametrize("lookback", [-1, 1.5, True, "3", 1_001])
def test_add_lags_refuses_a_bad_lookback(lookback: Any) -> None:
    with pytest.raises(StrategyError, match=r"lookback_periods must be a whole number from 0 to 1000"):
        add_lags(features_frame(), lookback)


TRAIN = np.array([[1.0, 10.0, 5.0], [3.0, 30.0, 5.0], [5.0, 20.0, 5.0]])


def test_scaler_standardises_the_training_rows() -> None:
    scaled = FeatureScaler().fit_transform(TRAIN)

    np.testing.assert_allclose(scaled[:, :2].mean(axis=0), [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(scaled[:, :2].std(axis=0), [1.0, 1.0])


def test_scaler_uses_only_the_rows_it_was_fitted_on() -> None:
    rows = np.vstack([TRAIN, [[1000.0, -1000.0, 7.0]]])
    scaler = FeatureScaler().fit(rows[:3])
    mean, scale = scaler.mean, scaler.scale

    transformed = scaler.transform(rows)

    np.testing.assert_allclose(mean, [3.0, 20.0, 5.0])
    np.testing.assert_allclose(scale, [np.std([1.0, 3.0, 5.0]), np.std([10.0, 30.0, 20.0]), 1.0])
    np.testing.assert_allclose(transformed[3], (rows[3] - mean) / scale)
    np.testing.assert_array_equal(scaler.mean, mean)  # transforming other rows changed nothing
    np.testing.assert_array_equal(scaler.scale, scale)


@pytest.mark.parametrize("value", [5.0, 0.1, 1e9, -3.3])
def test_constant_columns_get_scale_one(value: float) -> None:
    scaler = FeatureScaler().fit(np.full((4, 1), value))

    assert scaler.scale.tolist() == [1.0]
    assert scaler.transform(np.array([[value], [value + 1.0]])).tolist() == [[0.0], [1.0]]


def test_a_column_the_training_rows_barely_reach_is_scaled_no_finer_than_min_scale() -> None:
    # a fuzzy set 8 of 3,470 training rows reach: its spread is 0.02, and a full membership at prediction time read
    # as 50 standard deviations
    rare = np.zeros((3470, 1))
    rare[:8, 0] = 0.77
    assert np.std(rare) < 0.05

    floored = FeatureScaler(min_scale=0.05).fit(rare)
    plain = FeatureScaler().fit(rare)

    assert floored.scale.tolist() == [0.05] and plain.scale.tolist() == [pytest.approx(np.std(rare))]
    assert floored.transform(np.array([[1.0]]))[0, 0] < 20.0 < plain.transform(np.array([[1.0]]))[0, 0]
    assert FeatureScaler(min_scale=0.05).fit(TRAIN).scale.tolist() == FeatureScaler().fit(TRAIN).scale.tolist()
    with pytest.raises(ValueError, match="min_scale"):
        FeatureScaler(min_scale=-1.0)


def test_nan_stays_nan_when_transforming() -> None:
    scaled = FeatureScaler().fit(TRAIN).transform(np.array([[np.nan, 20.0, 5.0]]))

    assert np.isnan(scaled[0, 0])
    assert scaled[0, 1:].tolist() == [0.0, 0.0]


def test_to_dict_from_dict_round_trips_exactly_through_json() -> None:
    rng = np.random.default_rng(3)
    train = rng.normal(0.1, 3.7, (50, 4))
    train[:, 2] = 1 / 3
    scaler = FeatureScaler().fit(train)
    probe = rng.normal(0.0, 5.0, (10, 4))

    restored = FeatureScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))

    assert restored.to_dict() == scaler.to_dict()
    np.testing.assert_array_equal(restored.mean, scaler.mean)
    np.testing.assert_array_equal(restored.scale, scaler.scale)
    np.testing.assert_array_equal(restored.transform(probe), scaler.transform(probe))
    assert set(scaler.to_dict()) == {"mean", "scale"}
    assert all(type(v) is float for v in scaler.to_dict()["mean"])


def test_transform_refuses_the_wrong_number_of_columns() -> None:
    scaler = FeatureScaler().fit(TRAIN)

    with pytest.raises(DataError, match=r"fitted on 3 columns but got 2; the features must be built with the same"):
        scaler.transform(TRAIN[:, :2])


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.array([1.0, 2.0]), r"2-D array \(rows x features\), got 1 dimension"),
        (np.empty((0, 3)), r"zero rows"),
        (np.array([[1.0, np.nan], [2.0, 3.0]]), r"column\(s\) \[1\] hold NaN or infinite values"),
        (np.array([[np.inf, 1.0], [2.0, 3.0]]), r"column\(s\) \[0\] hold NaN or infinite values"),
    ],
)
def test_fit_refuses_unusable_rows(x: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message):
        FeatureScaler().fit(x)


def test_an_unfitted_scaler_refuses_to_transform_or_save() -> None:
    scaler = FeatureScaler()

    assert not scaler.is_fitted
    with pytest.raises(DataError, match="not fitted yet"):
        scaler.transform(TRAIN)
    with pytest.raises(DataError, match="not fitted yet"):
        scaler.to_dict()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"mean": [1.0], "scale": [1.0, 2.0]},
        {"mean": [1.0], "scale": ["1"]},
        {"mean": [1.0], "scale": [0.0]},
        {"mean": [float("nan")], "scale": [1.0]},
    ],
)
def test_from_dict_refuses_damaged_data(data: dict[str, Any]) -> None:
    with pytest.raises(DataError, match="saved feature scaler needs"):
        FeatureScaler.from_dict(data)
