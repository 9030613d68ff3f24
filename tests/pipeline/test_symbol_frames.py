"""A strategy's bars for one symbol: every timeframe read from its own file or resampled from the base."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.pipeline.ohlcv import bars
from trainops.errors import DataError
from trainops.pipeline.data import resample_ohlcv
from trainops.pipeline.strategy import StrategyConfig, load_strategy, parse_strategy
from trainops.pipeline.symbol_frames import load_frames

STRATEGIES_DIR = Path(__file__).resolve().parents[2] / "strategies"


def multi_timeframe(**training_data: Any) -> StrategyConfig:
    """The shipped EURUSD 1h + 4h + 1d strategy with the given ``training_data`` entries replaced."""
    data = load_strategy(STRATEGIES_DIR / "multi_timeframe.yaml").to_dict()
    data["training_data"].update(training_data)
    return parse_strategy(data)


@pytest.fixture
def hourly(tmp_path: Path) -> pd.DataFrame:
    """Ten days of hourly EURUSD bars, the only file in ``tmp_path``."""
    frame = bars("2024-01-01", 24 * 10)
    frame.to_csv(tmp_path / "EURUSD_1h.csv", index_label="timestamp")
    return frame


def test_higher_timeframes_without_a_file_are_resampled_from_the_base(tmp_path: Path, hourly: pd.DataFrame) -> None:
    frames = load_frames(multi_timeframe(), tmp_path, "EURUSD")

    assert list(frames) == ["1h", "4h", "1d"]
    pd.testing.assert_frame_equal(frames["1h"], hourly, check_freq=False)
    for timeframe in ("4h", "1d"):
        expected = resample_ohlcv(hourly, timeframe, source_timeframe="1h")
        pd.testing.assert_frame_equal(frames[timeframe], expected, check_freq=False)


def test_a_higher_timeframe_file_is_read_rather_than_resampled(tmp_path: Path, hourly: pd.DataFrame) -> None:
    own = resample_ohlcv(hourly, "4h", source_timeframe="1h")
    own["volume"] *= 10  # not what resampling would give, so the test can tell where the bars came from
    own.to_csv(tmp_path / "EURUSD_4h.csv", index_label="timestamp")

    frames = load_frames(multi_timeframe(), tmp_path, "EURUSD")

    pd.testing.assert_frame_equal(frames["4h"], own, check_freq=False)
    assert frames["4h"].attrs["source"] == "EURUSD 4h"


@pytest.mark.parametrize(
    ("strategy_end", "end_date", "whole_history", "last_hour"),
    [
        (None, None, False, "2024-01-10 23:00"),
        ("2024-01-05", None, False, "2024-01-05 23:00"),  # the strategy's end date covers its whole day
        ("2024-01-05", date(2024, 1, 3), False, "2024-01-03 23:00"),  # an explicit end date wins
        ("2024-01-05", date(2024, 1, 3), True, "2024-01-10 23:00"),  # predictions may ask about any bar
    ],
)
def test_end_dates(
    tmp_path: Path,
    hourly: pd.DataFrame,
    strategy_end: str | None,
    end_date: date | None,
    whole_history: bool,
    last_hour: str,
) -> None:
    config = multi_timeframe(start_date="2024-01-02", end_date=strategy_end)

    frames = load_frames(config, tmp_path, "EURUSD", end_date=end_date, whole_history=whole_history)

    assert frames["1h"].index[0] == pd.Timestamp("2024-01-01")  # earlier bars are kept for the warm-up
    assert frames["1h"].index[-1] == pd.Timestamp(last_hour)
    assert frames["1d"].index[-1] == pd.Timestamp(last_hour).normalize()  # the last day is complete


def test_a_missing_base_file_names_the_symbol_and_timeframe(tmp_path: Path) -> None:
    bars("2024-01-01", 10, "D").to_csv(tmp_path / "EURUSD_1d.csv", index_label="timestamp")

    with pytest.raises(DataError, match=r"no market data for EURUSD 1h: .* Available: EURUSD_1d"):
        load_frames(multi_timeframe(), tmp_path, "EURUSD")
