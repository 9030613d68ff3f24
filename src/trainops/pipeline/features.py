"""From per-bar memberships to the model's input matrix: lagged copies and z-score scaling.

A single bar says little about direction; the same features a few bars back say how they moved. :func:`add_lags`
adds those copies. :class:`FeatureScaler` then centres and scales each column with statistics from the training
rows only, so validation and test rows are scaled by numbers they did not influence (no leakage), and the same
numbers are saved with the model and reused at prediction time.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

import numpy as np
import numpy.typing as npt
import pandas as pd

from trainops.errors import DataError, StrategyError

FloatArray = npt.NDArray[np.float64]

MAX_LOOKBACK_PERIODS = 1_000
"""More lags than this multiplies the feature count far past anything an MLP on bars can use: a config typo."""


def add_lags(frame: pd.DataFrame, lookback_periods: int) -> pd.DataFrame:
    """The frame plus each column shifted by 1..``lookback_periods`` bars.

    Columns come out as the originals, then ``{column}_lag1`` of every column, then ``_lag2``, and so on; so the
    first columns of every row are the current bar and the lags follow in age order. The first
    ``lookback_periods`` rows hold NaN lags (there is no earlier bar); the pipeline drops them.

    Args:
        frame: Features on a time-sorted index.
        lookback_periods: Lags to add; 0 returns the frame unchanged (as a copy).

    Raises:
        StrategyError: ``lookback_periods`` is not a whole number from 0 to 1000.

    >>> add_lags(pd.DataFrame({"a": [1.0, 2.0, 3.0]}), 2).to_dict("list")
    {'a': [1.0, 2.0, 3.0], 'a_lag1': [nan, 1.0, 2.0], 'a_lag2': [nan, nan, 1.0]}
    """
    if (
        isinstance(lookback_periods, bool)
        or not isinstance(lookback_periods, int)
        or not 0 <= lookback_periods <= MAX_LOOKBACK_PERIODS
    ):
        raise StrategyError(
            f"lookback_periods must be a whole number from 0 to {MAX_LOOKBACK_PERIODS} (bars of history added "
            f"as lagged features), got {lookback_periods!r}",
            details={"lookback_periods": repr(lookback_periods)},
        )
    lagged = [frame.shift(k).add_suffix(f"_lag{k}") for k in range(1, lookback_periods + 1)]
    return pd.concat([frame, *lagged], axis=1) if lagged else frame.copy()


class FeatureScaler:
    """Z-score scaling, ``(x - mean) / scale``, fitted on the training rows only.

    A constant column (every training value equal) gets scale 1, so it becomes all zeros instead of a division
    by zero; a column that varies only at prediction time then still scales to finite numbers. :meth:`to_dict`
    and :meth:`from_dict` carry the fitted numbers through JSON exactly (Python floats round-trip through
    ``json``), so a reloaded model scales precisely as the trained one did.

    >>> scaler = FeatureScaler().fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> scaler.transform(np.array([[2.0, 5.0], [5.0, 6.0]])).tolist()
    [[0.0, 0.0], [3.0, 1.0]]
    """

    def __init__(self, min_scale: float = 0.0) -> None:
        """``min_scale``: no column is scaled by less than this (for columns with a known range: a column the
        training rows barely reach would otherwise turn a value seen at prediction time into a z-score in the
        tens)."""
        if not (math.isfinite(min_scale) and min_scale >= 0.0):
            raise ValueError(f"min_scale must be a finite number >= 0, got {min_scale!r}")
        self.min_scale = min_scale
        self._mean: FloatArray | None = None
        self._scale: FloatArray | None = None

    @property
    def is_fitted(self) -> bool:
        return self._mean is not None

    @property
    def n_features(self) -> int:
        return 0 if self._mean is None else int(self._mean.shape[0])

    @property
    def mean(self) -> FloatArray:
        """Per-column training mean (a copy)."""
        return self._fitted()[0].copy()

    @property
    def scale(self) -> FloatArray:
        """Per-column training standard deviation (population, ``ddof=0``) or ``min_scale`` if larger, 1 for
        constant columns (a copy)."""
        return self._fitted()[1].copy()

    def fit(self, x: npt.ArrayLike) -> FeatureScaler:
        """Learn each column's mean and standard deviation from the training rows ``x`` (2-D).

        Raises:
            DataError: ``x`` is not 2-D, has no rows, or holds NaN or infinite values (drop warm-up rows first).
        """
        values = _as_matrix(x, "fit")
        if values.shape[0] == 0:
            raise DataError("cannot fit the feature scaler on zero rows; the training split is empty")
        bad = np.flatnonzero(~np.isfinite(values).all(axis=0))
        if bad.size:
            raise DataError(
                f"cannot fit the feature scaler: column(s) {bad.tolist()} hold NaN or infinite values; drop the "
                "indicator warm-up and lag rows before scaling",
                details={"columns": bad.tolist()},
            )
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        # A spread within float rounding of the mean is a constant column whose "spread" is noise.
        constant = std <= 8 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        self._mean = mean
        self._scale = np.where(constant, 1.0, np.maximum(std, self.min_scale))
        return self

    def transform(self, x: npt.ArrayLike) -> FloatArray:
        """Scale rows with the fitted numbers; NaN stays NaN.

        Raises:
            DataError: The scaler is not fitted, or ``x`` does not have the fitted number of columns (the
                features do not match the model's).
        """
        mean, scale = self._fitted()
        values = _as_matrix(x, "transform")
        if values.shape[1] != mean.shape[0]:
            raise DataError(
                f"the feature scaler was fitted on {mean.shape[0]} columns but got {values.shape[1]}; the "
                "features must be built with the same strategy (indicators, fuzzy sets, lookback) as the model",
                details={"expected_columns": int(mean.shape[0]), "got_columns": int(values.shape[1])},
            )
        return np.asarray((values - mean) / scale, dtype=np.float64)

    def fit_transform(self, x: npt.ArrayLike) -> FloatArray:
        """Fit on ``x`` and scale it."""
        return self.fit(x).transform(x)

    def to_dict(self) -> dict[str, Any]:
        """``{"mean": [...], "scale": [...]}`` as plain floats, ready for ``json.dumps``."""
        mean, scale = self._fitted()
        return {"mean": [float(v) for v in mean], "scale": [float(v) for v in scale]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureScaler:
        """Rebuild a fitted scaler from :meth:`to_dict`'s output.

        Raises:
            DataError: The data is not what :meth:`to_dict` writes (missing keys, lengths differ, a scale that
                is not a positive finite number).
        """
        mean, scale = (data.get("mean"), data.get("scale")) if isinstance(data, dict) else (None, None)
        if not _is_number_list(mean) or not _is_number_list(scale) or len(mean) != len(scale):
            raise DataError(
                "a saved feature scaler needs 'mean' and 'scale' lists of numbers of equal length; "
                "the model's features.json is damaged or from another tool"
            )
        if not all(math.isfinite(m) for m in mean) or not all(math.isfinite(s) and s > 0 for s in scale):
            raise DataError(
                "a saved feature scaler needs finite means and positive finite scales; the model's features.json "
                "is damaged"
            )
        scaler = cls()
        scaler._mean = np.array(mean, dtype=np.float64)
        scaler._scale = np.array(scale, dtype=np.float64)
        return scaler

    def _fitted(self) -> tuple[FloatArray, FloatArray]:
        if self._mean is None or self._scale is None:
            raise DataError("the feature scaler is not fitted yet; call fit() on the training rows first")
        return self._mean, self._scale


def _as_matrix(x: npt.ArrayLike, action: str) -> FloatArray:
    values = np.asarray(x, dtype=np.float64)
    if values.ndim != 2:
        raise DataError(
            f"the feature scaler can only {action} a 2-D array (rows x features), got {values.ndim} dimension(s)"
        )
    return values


def _is_number_list(value: object) -> TypeGuard[list[float]]:
    return isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
