"""Synthetic OHLCV frames for the market data tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def bars(start: str, periods: int, freq: str = "h", *, seed: int = 0) -> pd.DataFrame:
    """A valid OHLCV frame of a random walk."""
    index = pd.date_range(start, periods=periods, freq=freq, name="timestamp").as_unit("ns")
    close = 100 + np.random.default_rng(seed).standard_normal(periods).cumsum()
    opens = np.concatenate([[100.0], close[:-1]])
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, close) + 0.5,
            "low": np.minimum(opens, close) - 0.5,
            "close": close,
            "volume": np.arange(1.0, periods + 1),
        },
        index=index,
    )


def weekdays_only(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame.index.day_of_week < 5]
