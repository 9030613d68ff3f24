"""Predictions from a saved model: the training contract, the bar a date means, and no look-ahead.

The contract: a model written to disk and read back, asked about the bars of its own test split, gives exactly the
probabilities the trained model gave on the training job's test rows. Each shipped strategy used here is trained
once for the module (3 epochs, CPU) on the real sample data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainops.core.reporter import NullReporter
from trainops.errors import ArtifactError, InvalidInputError
from trainops.pipeline import prediction
from trainops.pipeline.artifacts import ModelVersion, read_model_version, write_model_version
from trainops.pipeline.data import timeframe_delta
from trainops.pipeline.labels import LABEL_NAMES
from trainops.pipeline.prediction import first_usable_bar, predict_bars, resolve_bar
from trainops.pipeline.strategy import load_strategy, parse_strategy
from trainops.pipeline.symbol_frames import load_frames
from trainops.pipeline.trainer import predict_proba
from trainops.pipeline.training import StrategyTrainingJob, TrainedStrategy

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
SHIPPED = ["mean_reversion", "multi_timeframe"]
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Saved:
    """A trained strategy, its version as read back from disk, and the bars predictions read."""

    trained: TrainedStrategy
    version: ModelVersion
    frames: dict[str, pd.DataFrame]

    @property
    def test_bars(self) -> pd.DatetimeIndex:
        return self.trained.data.split_index["EURUSD"]["test"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, market_data: Path) -> Callable[[str], Saved]:
    """``saved(strategy)``: the strategy trained (once per module), written, read back, with its bars."""
    models_dir = tmp_path_factory.mktemp("models")
    cache: dict[str, Saved] = {}

    def get(strategy: str) -> Saved:
        if strategy not in cache:
            config = load_strategy(STRATEGIES / f"{strategy}.yaml").to_dict()
            config["model"]["training"]["epochs"] = 3
            job = StrategyTrainingJob(
                parse_strategy(config), data_dir=market_data, reporter=NullReporter(), device="cpu"
            )
            trained = job.run()
            version = read_model_version(write_model_version(trained, models_dir, operation_id="op_test"))
            frames = load_frames(version.config, market_data, "EURUSD")
            cache[strategy] = Saved(trained, version, frames)
        return cache[strategy]

    return get


def probabilities(predictions: list[prediction.BarPrediction]) -> np.ndarray:
    return np.array([[item.prediction.probabilities[name] for name in LABEL_NAMES] for item in predictions])


# -- the contract ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", SHIPPED)
def test_a_range_reproduces_the_test_split(saved: Callable[[str], Saved], strategy: str) -> None:
    model = saved(strategy)
    bars = model.test_bars

    predictions = predict_bars(model.version, model.frames, bars[0], bars[-1])

    expected = predict_proba(model.trained.model, model.trained.data.x_test, "cpu")
    assert [item.prediction.timestamp for item in predictions] == list(bars.to_pydatetime())
    np.testing.assert_allclose(probabilities(predictions), expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("strategy", SHIPPED)
def test_single_bars_reproduce_the_test_split(saved: Callable[[str], Saved], strategy: str) -> None:
    model = saved(strategy)
    bars = model.test_bars
    expected = predict_proba(model.trained.model, model.trained.data.x_test, "cpu")
    sample = [*range(0, len(bars), 97), len(bars) - 1]

    for position in sample:
        [single] = predict_bars(model.version, model.frames, bars[position], bars[position])

        assert single.prediction.timestamp == bars[position]
        np.testing.assert_allclose(probabilities([single])[0], expected[position], rtol=0, atol=TOLERANCE)


def test_a_prediction_describes_its_bar(saved: Callable[[str], Saved]) -> None:
    model = saved("mean_reversion")
    stamp = pd.Timestamp("2018-01-10 12:00")

    [single] = predict_bars(model.version, model.frames, stamp, stamp)

    answer = single.prediction
    p = answer.probabilities
    assert list(p) == list(LABEL_NAMES)
    assert sum(p.values()) == pytest.approx(1.0, abs=1e-6)
    assert answer.signal == ("buy", "hold", "sell")[int(np.argmax(list(p.values())))]
    assert answer.confidence == max(p.values())
    assert answer.signal_strength == pytest.approx(p["BUY"] - p["SELL"])
    assert list(answer.fuzzy_outputs) == [name for name in model.version.feature_names if "_lag" not in name]
    assert all(0.0 <= value <= 1.0 for value in answer.fuzzy_outputs.values())
    bar = model.frames["1h"].loc[[stamp]].iloc[0]
    assert single.bar == {str(column): float(value) for column, value in bar.items()}
    assert list(single.bar) == ["open", "high", "low", "close", "volume"]
    assert list(single.input_features)[:2] == ["rsi_14", "bb_20"]
    assert 0.0 <= single.input_features["rsi_14"] <= 100.0


# -- which bar a date means -----------------------------------------------------------------------------------

FIRST_USABLE = pd.Timestamp("2017-04-20 06:00")
LAST = pd.Timestamp("2018-02-07 15:00")
VALID_RANGE = "predictions are possible from 2017-04-20T06:00:00 to 2018-02-07T15:00:00"


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        pytest.param(date(2018, 1, 10), "2018-01-10 23:00", id="a-date-is-the-whole-day"),
        pytest.param("2018-01-10", "2018-01-10 23:00", id="a-date-as-text"),
        pytest.param(date(2018, 1, 12), "2018-01-12 21:00", id="friday-ends-early"),
        pytest.param(date(2018, 1, 13), "2018-01-12 21:00", id="saturday-has-no-bars"),
        pytest.param(datetime(2018, 1, 10, 12), "2018-01-10 12:00", id="a-bar-opening"),
        pytest.param(datetime(2018, 1, 10, 12, 59), "2018-01-10 12:00", id="inside-a-bar"),
        pytest.param("2018-01-10T12:30", "2018-01-10 12:00", id="a-datetime-as-text"),
        pytest.param(datetime(2018, 1, 10, 14, 30, tzinfo=timezone(timedelta(hours=2))), "2018-01-10 12:00", id="tz"),
        pytest.param(datetime(2018, 1, 10, 12, tzinfo=UTC), "2018-01-10 12:00", id="utc"),
        pytest.param(date(2017, 4, 20), "2017-04-20 23:00", id="the-first-usable-day"),
        pytest.param(datetime(2017, 4, 20, 6), "2017-04-20 06:00", id="the-first-usable-bar"),
        pytest.param(date(2018, 2, 7), "2018-02-07 15:00", id="the-last-day"),
        pytest.param(datetime(2018, 2, 7, 15, 59), "2018-02-07 15:00", id="inside-the-last-bar"),
    ],
)
def test_a_moment_resolves_to_the_last_bar_at_or_before_it(
    saved: Callable[[str], Saved], moment: date | datetime | str, expected: str
) -> None:
    bars = saved("mean_reversion").frames["1h"]

    assert resolve_bar(bars, "1h", moment, first_usable=FIRST_USABLE) == pd.Timestamp(expected)


def test_the_first_usable_bar_is_after_the_warm_up(saved: Callable[[str], Saved]) -> None:
    model = saved("mean_reversion")

    first = first_usable_bar(model.version, model.frames)

    assert first == FIRST_USABLE
    assert model.frames["1h"].index[-1] == LAST
    before = first - timeframe_delta("1h")
    assert predict_bars(model.version, model.frames, before, before) == []
    assert len(predict_bars(model.version, model.frames, before, first)) == 1


@pytest.mark.parametrize(
    ("moment", "problem"),
    [
        pytest.param(date(2017, 4, 19), "is before the first bar with complete features", id="the-data's-first-day"),
        pytest.param(datetime(2017, 4, 20, 5), "is before the first bar with complete features", id="in-the-warm-up"),
        pytest.param(date(2016, 1, 1), "is before the first bar with complete features", id="before-the-data"),
        pytest.param(date(2018, 2, 8), "is after the last bar of the data", id="the-day-after"),
        pytest.param(datetime(2018, 2, 7, 16, 0, 1), "is after the last bar of the data", id="after-the-last-bar"),
        pytest.param("2030-01-01", "is after the last bar of the data", id="far-future"),
    ],
)
def test_a_moment_outside_the_data_names_the_valid_range(
    saved: Callable[[str], Saved], moment: date | datetime | str, problem: str
) -> None:
    bars = saved("mean_reversion").frames["1h"]

    with pytest.raises(InvalidInputError, match=problem) as caught:
        resolve_bar(bars, "1h", moment, first_usable=FIRST_USABLE)

    assert VALID_RANGE in caught.value.message
    assert caught.value.details == {"first": "2017-04-20T06:00:00", "last": "2018-02-07T15:00:00"}


def test_text_that_is_not_a_date_is_refused(saved: Callable[[str], Saved]) -> None:
    bars = saved("mean_reversion").frames["1h"]

    with pytest.raises(InvalidInputError, match="'next tuesday' is not a date; use YYYY-MM-DD"):
        resolve_bar(bars, "1h", "next tuesday", first_usable=FIRST_USABLE)


def test_data_too_short_for_the_indicators_is_refused(saved: Callable[[str], Saved]) -> None:
    model = saved("mean_reversion")
    short = {timeframe: frame.iloc[:15] for timeframe, frame in model.frames.items()}

    with pytest.raises(InvalidInputError, match="too short for this model's indicators"):
        first_usable_bar(model.version, short)


def test_features_that_no_longer_match_the_model_are_refused(saved: Callable[[str], Saved]) -> None:
    model = saved("mean_reversion")
    renamed = dataclasses.replace(model.version, feature_names=list(reversed(model.version.feature_names)))
    stamp = pd.Timestamp("2018-01-10 12:00")

    names = model.version.feature_names
    with pytest.raises(ArtifactError) as refused:
        predict_bars(renamed, model.frames, stamp, stamp)
    assert str(refused.value).startswith(
        f"the model version's features.json does not match the features its config.json computes: at column 0 "
        f"the strategy computes {names[0]}, features.json lists {names[-1]} ({len(names)} columns computed, "
        f"{len(names)} listed)"
    )


def test_a_range_over_the_limit_is_refused(saved: Callable[[str], Saved], monkeypatch: pytest.MonkeyPatch) -> None:
    model = saved("mean_reversion")
    monkeypatch.setattr(prediction, "MAX_RANGE_BARS", 24)

    assert len(predict_bars(model.version, model.frames, pd.Timestamp("2018-01-10"), pd.Timestamp("2018-01-10 23:00")))
    with pytest.raises(InvalidInputError, match="25 bars in the range; ask for at most 24 at once"):
        predict_bars(model.version, model.frames, pd.Timestamp("2018-01-10"), pd.Timestamp("2018-01-11"))


# -- no look-ahead --------------------------------------------------------------------------------------------


def rows_until(source: Path, target: Path, stamp: pd.Timestamp) -> None:
    """Copy a CSV keeping the header and the rows opening at or before ``stamp``."""
    header, *rows = source.read_text(encoding="utf-8").splitlines()
    cut = str(stamp)
    target.write_text("\n".join([header, *(row for row in rows if row.split(",", 1)[0] <= cut)]) + "\n")


def cut_after(market_data: Path, target: Path, stamp: pd.Timestamp) -> None:
    """Every EURUSD file, cut right after ``stamp``: what the data looked like then (a higher-timeframe bar in
    progress included, as a live feed shows it)."""
    for source in market_data.glob("EURUSD_*.csv"):
        rows_until(source, target / source.name, stamp)


def base_only_cut_after(market_data: Path, target: Path, stamp: pd.Timestamp) -> None:
    """Only the hourly file, cut right after ``stamp``: the 4h and 1d bars are resampled from it."""
    rows_until(market_data / "EURUSD_1h.csv", target / "EURUSD_1h.csv", stamp)


def future_changed(market_data: Path, target: Path, stamp: pd.Timestamp) -> None:
    """Every file whole, but each bar not closed by the end of ``stamp``'s hour moved 10% up: a different future."""
    now = stamp + timeframe_delta("1h")
    for source in market_data.glob("EURUSD_*.csv"):
        frame = pd.read_csv(source, index_col="timestamp", parse_dates=True)
        unclosed = pd.DatetimeIndex(frame.index) + timeframe_delta(source.stem.split("_")[1]) > now
        frame.loc[unclosed, ["open", "high", "low", "close"]] *= 1.1
        frame.to_csv(target / source.name, index_label="timestamp")


@pytest.mark.parametrize("strategy", SHIPPED)
@pytest.mark.parametrize("rewrite", [cut_after, base_only_cut_after, future_changed])
@pytest.mark.parametrize("moment", ["2018-01-10 13:00", "2018-01-15 00:00", "2018-02-07 15:00"])
def test_a_prediction_sees_no_later_bar(
    saved: Callable[[str], Saved],
    market_data: Path,
    tmp_path: Path,
    strategy: str,
    rewrite: Callable[[Path, Path, pd.Timestamp], None],
    moment: str,
) -> None:
    model = saved(strategy)
    stamp = pd.Timestamp(moment)
    rewrite(market_data, tmp_path, stamp)
    then = load_frames(model.version.config, tmp_path, "EURUSD")

    [with_everything] = predict_bars(model.version, model.frames, stamp, stamp)
    [with_the_past_only] = predict_bars(model.version, then, stamp, stamp)

    assert with_the_past_only == with_everything
