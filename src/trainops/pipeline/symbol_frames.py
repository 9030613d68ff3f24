"""One symbol's bars in every timeframe a strategy uses, read from the data directory: what training and
prediction compute features from.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from trainops.pipeline.data import resample_ohlcv
from trainops.pipeline.data_files import data_names, load_ohlcv
from trainops.pipeline.strategy import StrategyConfig

__all__ = ["load_frames"]


def load_frames(
    config: StrategyConfig,
    data_dir: Path,
    symbol: str,
    *,
    end_date: date | None = None,
    whole_history: bool = False,
) -> dict[str, pd.DataFrame]:
    """The bars of every timeframe of ``symbol`` up to ``end_date`` (default: the strategy's), base first.

    Earlier bars than ``start_date`` are kept on purpose: indicators need them to warm up. ``whole_history``
    ignores the strategy's dates (predictions may ask about any bar). A higher timeframe without its own file is
    resampled from the base timeframe (complete bars only).
    """
    end = None if whole_history else end_date or config.training_data.end_date
    timeframes = config.timeframes
    frames = {timeframes[0]: load_ohlcv(data_dir, symbol, timeframes[0], end=end)}
    on_disk = data_names(data_dir)
    for timeframe in timeframes[1:]:
        if (symbol, timeframe) in on_disk:
            frames[timeframe] = load_ohlcv(data_dir, symbol, timeframe, end=end)
        else:
            frames[timeframe] = resample_ohlcv(frames[timeframes[0]], timeframe, source_timeframe=timeframes[0])
    return frames
