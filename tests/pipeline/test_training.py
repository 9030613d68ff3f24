"""The strategy training job on the real sample data: what it reports and in which order, multi-timeframe
features without look-ahead, the per-symbol time-ordered split and train-only scaling, cancellation, data
errors, the result contract, and reproducibility."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from trainops.core import CancelRequest, EpochRecord, ProgressState
from trainops.core.progress import PHASE_BANDS, Phase
from trainops.errors import DataError, OperationCancelledError, TrainingDivergedError
from trainops.pipeline.data import timeframe_delta
from trainops.pipeline.data_files import load_ohlcv, write_sample_data
from trainops.pipeline.evaluation import evaluate
from trainops.pipeline.labels import LABEL_NAMES, zigzag_decided
from trainops.pipeline.strategy import StrategyConfig, load_strategy, parse_strategy
from trainops.pipeline.symbol_frames import load_frames
from trainops.pipeline.trainer import predict_logits
from trainops.pipeline.training import (
    MEMBERSHIP_MIN_SCALE,
    PreparedData,
    StrategyTrainingJob,
    TrainedStrategy,
    symbol_features,
    timeframe_memberships,
)
from trainops.schemas.training import CancelledBy, StrategyResult

STRATEGIES_DIR = Path(__file__).resolve().parents[2] / "strategies"
EPOCHS = 2
STOP = CancelRequest(reason="val_loss rising", requested_by="agent", requested_at=datetime(2024, 1, 1, tzinfo=UTC))
PHASE_ORDER = [Phase.PREPROCESSING, Phase.PREPARATION, Phase.TRAINING, Phase.EVALUATION]

Event = tuple[Any, ...]


class RecordingReporter:
    """A Reporter that keeps every call in order; asks to stop once ``stop_after`` ``should_stop`` calls have
    passed, or as soon as ``stop_when(self)`` holds."""

    def __init__(
        self,
        *,
        stop_after: int | None = None,
        stop_when: Callable[[RecordingReporter], bool] | None = None,
    ) -> None:
        self.events: list[Event] = []
        self.stop_checks = 0
        self.stop_after = stop_after
        self.stop_when = stop_when

    def progress(self, state: ProgressState) -> None:
        self.events.append(("progress", state))

    def epoch(self, record: EpochRecord) -> None:
        self.events.append(("epoch", record))

    def batch(
        self, epoch: int, batch: int, total_batches: int | None = None, metrics: Mapping[str, float] | None = None
    ) -> None:
        self.events.append(("batch", epoch, batch, total_batches))

    def artifact(self, name: str, path: str, kind: str = "file") -> None:
        self.events.append(("artifact", name, path, kind))

    def should_stop(self) -> CancelRequest | None:
        self.stop_checks += 1
        if self.stop_after is not None and self.stop_checks > self.stop_after:
            return STOP
        if self.stop_when is not None and self.stop_when(self):
            return STOP
        return None

    @property
    def states(self) -> list[ProgressState]:
        return [event[1] for event in self.events if event[0] == "progress"]

    @property
    def records(self) -> list[EpochRecord]:
        return [event[1] for event in self.events if event[0] == "epoch"]

    @property
    def batches(self) -> list[Event]:
        return [event for event in self.events if event[0] == "batch"]

    def messages(self, phase: Phase) -> list[str]:
        return [state.message or "" for state in self.states if state.phase == phase]

    def first(self, phase: Phase) -> int:
        """The position in ``events`` of the first progress of ``phase``."""
        return next(n for n, event in enumerate(self.events) if event[0] == "progress" and event[1].phase == phase)


def shipped(name: str) -> StrategyConfig:
    return load_strategy(STRATEGIES_DIR / f"{name}.yaml")


def variant(config: StrategyConfig, *, epochs: int = EPOCHS, **training_data: Any) -> StrategyConfig:
    """``config`` with fewer epochs and the given ``training_data`` entries replaced, validated again."""
    data = config.to_dict()
    data["model"]["training"]["epochs"] = epochs
    data["training_data"].update(training_data)
    return parse_strategy(data)


def small_mean_reversion(**changes: Any) -> StrategyConfig:
    """The shipped EURUSD 1h strategy from 2017-11-01 (~1,600 labelled rows, 18 batches an epoch)."""
    return variant(shipped("mean_reversion"), **{"start_date": "2017-11-01", **changes})


def train(config: StrategyConfig, data_dir: Path, reporter: RecordingReporter) -> TrainedStrategy:
    return StrategyTrainingJob(config, data_dir=data_dir, reporter=reporter, device="cpu").run()


def comparable(record: EpochRecord) -> dict[str, Any]:
    return record.model_dump(exclude={"duration", "timestamp"})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("data")
    write_sample_data(directory)
    return directory


@pytest.fixture(scope="module")
def mean_reversion(data_dir: Path) -> tuple[TrainedStrategy, RecordingReporter]:
    """One full two-epoch run of the shipped EURUSD 1h strategy, with everything it reported."""
    reporter = RecordingReporter()
    return train(small_mean_reversion(), data_dir, reporter), reporter


# ------------------------------------------------------------------------------------------------ progress


def test_phases_run_in_order_and_never_go_back(mean_reversion: tuple[TrainedStrategy, RecordingReporter]) -> None:
    _, reporter = mean_reversion
    phases = [state.phase for state in reporter.states]

    runs = [phase for position, phase in enumerate(phases) if position == 0 or phases[position - 1] != phase]
    assert runs == PHASE_ORDER


def test_percentages_never_decrease_and_stay_in_their_phase_band(
    mean_reversion: tuple[TrainedStrategy, RecordingReporter],
) -> None:
    _, reporter = mean_reversion
    percentages = [state.percentage for state in reporter.states]

    assert percentages == sorted(percentages)
    for state in reporter.states:
        low, high = PHASE_BANDS[Phase(str(state.phase))]
        assert low <= state.percentage <= high, state
    assert percentages[0] == 0.0
    assert percentages[-1] == 100.0


def test_preprocessing_reports_loading_each_indicator_each_fuzzy_feature_features_and_labels(
    mean_reversion: tuple[TrainedStrategy, RecordingReporter],
) -> None:
    _, reporter = mean_reversion
    prefix = "Processing EURUSD (1/1)"

    assert reporter.messages(Phase.PREPROCESSING) == [
        f"{prefix} [1h] - Loading data",
        f"{prefix} [1h] - Computing RSI (1/3)",
        f"{prefix} [1h] - Computing BBANDS (2/3)",
        f"{prefix} [1h] - Computing STOCH (3/3)",
        f"{prefix} [1h] - Fuzzifying rsi_14: oversold, neutral, overbought (1/3)",
        f"{prefix} [1h] - Fuzzifying bb_20: below, middle, above (2/3)",
        f"{prefix} [1h] - Fuzzifying stoch_14: low, mid, high (3/3)",
        f"{prefix} - Building features (27 columns)",  # 9 memberships and 2 lags of each
        f"{prefix} - Generating labels (ZigZag 0.40%)",
    ]


def test_preprocessing_states_count_steps_and_say_where_they_are(
    mean_reversion: tuple[TrainedStrategy, RecordingReporter],
) -> None:
    _, reporter = mean_reversion
    states = [state for state in reporter.states if state.phase == Phase.PREPROCESSING]

    assert [state.items_done for state in states] == list(range(len(states)))
    assert {state.items_total for state in states} == {len(states)}
    assert [state.current_step for state in states[:7]] == [
        "preprocessing",
        "rsi_14",
        "bb_20",
        "stoch_14",
        "rsi_14",
        "bb_20",
        "stoch_14",
    ]
    assert states[1].context == {"symbol": "EURUSD", "timeframe": "1h", "indicator": "rsi_14"}
    assert states[4].context == {"symbol": "EURUSD", "timeframe": "1h", "fuzzy_feature": "rsi_14"}
    assert states[-1].context == {"symbol": "EURUSD"}


def test_preparation_reports_combining_splitting_and_creating_the_model(
    mean_reversion: tuple[TrainedStrategy, RecordingReporter],
) -> None:
    result, reporter = mean_reversion
    data = result.data
    train_rows, val_rows, test_rows = len(data.y_train), len(data.y_val), len(data.y_test)
    parameters = sum(parameter.numel() for parameter in result.model.parameters())

    purged = data.purged_rows
    assert purged > 0  # the last bars of train and of validation wait on a pivot confirmed in the next split
    assert reporter.messages(Phase.PREPARATION) == [
        f"Combining 1 symbol(s): {train_rows + val_rows + test_rows + purged:,} labelled rows",
        f"Splitting in time order: {train_rows:,} train, {val_rows:,} validation, {test_rows:,} test rows; "
        f"{purged:,} purged whose label a later split's prices decide",
        f"Creating model mlp_32_16: 27 inputs, {parameters:,} parameters, on cpu",
    ]
    assert [state.current_step for state in reporter.states if state.phase == Phase.PREPARATION] == [
        "combine",
        "split",
        "create_model",
    ]


def test_training_reports_every_batch_and_one_epoch_record_after_each_epoch(
    mean_reversion: tuple[TrainedStrategy, RecordingReporter],
) -> None:
    result, reporter = mean_reversion
    start, end = reporter.first(Phase.TRAINING), reporter.first(Phase.EVALUATION)
    batches = math.ceil(len(result.data.y_train) / result.config.model.training.batch_size)

    def brief(event: Event) -> Event:
        if event[0] == "progress":
            return ("progress", event[1].message, event[1].percentage)
        if event[0] == "epoch":
            return ("epoch", event[1].epoch)
        return event

    expected: list[Event] = [("progress", f"Epoch 1/{EPOCHS} · Batch 0/{batches}", 5.0)]
    for epoch in range(EPOCHS):
        expected += [("batch", epoch, batch, batches) for batch in range(1, batches + 1)]
        expected += [("epoch", epoch), ("progress", f"Epoch {epoch + 1}/{EPOCHS}", 5.0 + 90.0 * (epoch + 1) / EPOCHS)]
    assert [brief(event) for event in reporter.events[start:end]] == expected


def test_epoch_records_carry_the_losses_grad_norm_and_learning_rate(
    mean_reversion: tuple[TrainedStrategy, RecordingReporter],
) -> None:
    result, reporter = mean_reversion

    assert reporter.records == result.outcome.history
    for record in reporter.records:
        assert record.learning_rate == result.config.model.training.learning_rate
        assert math.isfinite(record.metrics["grad_norm"])
        assert record.metrics["grad_norm"] > 0
        for name in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            value = record.value(name)
            assert value is not None
            assert math.isfinite(value)


def test_evaluation_reports_95_then_100_with_the_test_scores(
    mean_reversion: tuple[TrainedStrategy, RecordingReporter],
) -> None:
    result, reporter = mean_reversion
    scores = result.evaluation
    # the baseline: always the training split's most frequent class, scored on the test rows
    counts = {name: int((result.data.y_train == label).sum()) for label, name in enumerate(LABEL_NAMES)}
    majority = max(counts, key=lambda name: counts[name])
    baseline = float((result.data.y_test == LABEL_NAMES.index(majority)).mean())
    test_metrics = result.result().test_metrics
    assert (test_metrics.baseline_class, test_metrics.baseline_accuracy) == (majority, pytest.approx(baseline))

    evaluation = [state for state in reporter.states if state.phase == Phase.EVALUATION]
    assert [(state.percentage, state.message) for state in evaluation] == [
        (95.0, f"Evaluating on the test split ({len(result.data.y_test):,} rows)"),
        (
            100.0,
            f"Test accuracy {scores.test_accuracy:.1%} (always {majority}: {baseline:.1%}), "
            f"macro F1 {scores.f1_score:.3f}",
        ),
    ]
    assert evaluation[-1].context == {"test_accuracy": scores.test_accuracy, "f1_score": scores.f1_score}
    assert reporter.events[-1] == ("progress", evaluation[-1])


def test_a_strategy_of_long_set_names_is_prepared_with_its_progress_cut_to_size(data_dir: Path) -> None:
    """A valid strategy whose fuzzy sets spell out more than a progress message holds (1,024 characters) had failed
    in preparation: the message of its own progress was refused."""
    data = small_mean_reversion().to_dict()
    feature, sets = next(iter(data["fuzzy_sets"].items()))
    data["fuzzy_sets"][feature] = {
        ("level_" + "x" * 400 + f"_{name}" if name != "output" else name): value for name, value in sets.items()
    }
    reporter = RecordingReporter()
    StrategyTrainingJob(parse_strategy(data), data_dir=data_dir, reporter=reporter, device="cpu").prepare_data()

    fuzzifying = [message for message in reporter.messages(Phase.PREPROCESSING) if f"Fuzzifying {feature}" in message]
    assert len(fuzzifying) == 1 and len(fuzzifying[0]) == 1024 and fuzzifying[0].endswith("…")


def test_features_that_never_vary_in_the_training_rows_are_named(data_dir: Path) -> None:
    """A fuzzy set no bar reaches (RSI above 200) trained as a column of zeros, without a word."""
    data = small_mean_reversion().to_dict()
    data["fuzzy_sets"]["rsi_14"]["impossible"] = {"type": "triangular", "parameters": [200, 210, 220]}
    reporter = RecordingReporter()
    job = StrategyTrainingJob(parse_strategy(data), data_dir=data_dir, reporter=reporter, device="cpu")

    prepared = job.prepare_data()

    lookbacks = data["model"]["features"]["lookback_periods"]
    assert prepared.constant_features == ["rsi_14_impossible"] + [
        f"rsi_14_impossible_lag{lag}" for lag in range(1, lookbacks + 1)
    ]
    assert prepared.summary().constant_features == prepared.constant_features
    [said] = [message for message in reporter.messages(Phase.PREPARATION) if "never vary" in message]
    assert said.startswith(f"{len(prepared.constant_features)} of {len(prepared.feature_names)} features never vary")


def test_a_run_that_diverges_before_any_usable_epoch_fails_instead_of_reporting_a_result(data_dir: Path) -> None:
    """A learning rate of 1e30 made every weight NaN at epoch 0, and the run still ended with test figures computed
    from NaN logits (accuracy 39%: every prediction BUY) and a model version that could not predict."""
    data = small_mean_reversion().to_dict()
    data["model"]["training"].update({"optimizer": "sgd", "learning_rate": 1e30, "epochs": 2})
    reporter = RecordingReporter()
    job = StrategyTrainingJob(parse_strategy(data), data_dir=data_dir, reporter=reporter, device="cpu")

    with pytest.raises(TrainingDivergedError, match=r"^train_loss became nan at epoch 0; lower learning_rate"):
        job.run()
    assert not reporter.messages(Phase.EVALUATION)  # nothing evaluated


# ------------------------------------------------------------------------------------------ multi-timeframe


@pytest.fixture(scope="module")
def multi_timeframe() -> StrategyConfig:
    return variant(shipped("multi_timeframe"))


@pytest.fixture(scope="module")
def eurusd_frames(multi_timeframe: StrategyConfig, data_dir: Path) -> dict[str, pd.DataFrame]:
    return load_frames(multi_timeframe, data_dir, "EURUSD")


@pytest.fixture(scope="module")
def eurusd_features(multi_timeframe: StrategyConfig, eurusd_frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return symbol_features(multi_timeframe, eurusd_frames)


def test_multi_timeframe_reports_each_timeframe_in_order(multi_timeframe: StrategyConfig, data_dir: Path) -> None:
    reporter = RecordingReporter()
    StrategyTrainingJob(multi_timeframe, data_dir=data_dir, reporter=reporter, device="cpu").prepare_data()
    prefix = "Processing EURUSD (1/1)"
    per_timeframe = [
        "Computing RSI (1/3)",
        "Computing MACD (2/3)",
        "Computing ADX (3/3)",
        "Fuzzifying rsi_14: weak, neutral, strong (1/3)",
        "Fuzzifying macd_12_26_9: falling, flat, rising (2/3)",
        "Fuzzifying adx_14: ranging, trending, strong_trend (3/3)",
    ]

    assert reporter.messages(Phase.PREPROCESSING) == [
        *(f"{prefix} [{timeframe}] - Loading data" for timeframe in ("1h", "4h", "1d")),
        *(f"{prefix} [{timeframe}] - {step}" for timeframe in ("1h", "4h", "1d") for step in per_timeframe),
        f"{prefix} - Building features (54 columns)",  # 3 timeframes x 9 memberships, and one lag of each
        f"{prefix} - Generating labels (ZigZag 0.50%)",
    ]
    assert [state.context.get("timeframe") for state in reporter.states[:3]] == ["1h", "4h", "1d"]


def test_multi_timeframe_features_are_prefixed_with_their_timeframe(
    multi_timeframe: StrategyConfig, data_dir: Path
) -> None:
    prepared = StrategyTrainingJob(
        multi_timeframe, data_dir=data_dir, reporter=RecordingReporter(), device="cpu"
    ).prepare_data()
    memberships = [
        f"{feature_id}_{name}" for feature_id, fuzzy in multi_timeframe.fuzzy_sets.items() for name in fuzzy.sets
    ]
    current = [f"{timeframe}_{column}" for timeframe in ("1h", "4h", "1d") for column in memberships]

    assert prepared.feature_names == [*current, *(f"{column}_lag1" for column in current)]
    assert "4h_rsi_14_weak" in prepared.feature_names
    assert prepared.x_train.shape[1] == len(prepared.feature_names) == 54


@pytest.mark.parametrize(
    ("base_bar", "timeframe", "last_closed"),
    [
        ("2017-09-05 02:00", "4h", "2017-09-04 20:00"),  # the 00:00 4h bar is still open at 03:00
        ("2017-09-05 03:00", "4h", "2017-09-05 00:00"),  # ... and closes with this hour, at 04:00
        ("2017-09-05 22:00", "1d", "2017-09-04 00:00"),  # the day is still open at 23:00
        ("2017-09-05 23:00", "1d", "2017-09-05 00:00"),  # ... and closes with this hour, at midnight
    ],
)
def test_each_hour_sees_the_last_higher_timeframe_bar_that_had_closed(
    multi_timeframe: StrategyConfig,
    eurusd_frames: dict[str, pd.DataFrame],
    eurusd_features: pd.DataFrame,
    base_bar: str,
    timeframe: str,
    last_closed: str,
) -> None:
    memberships = timeframe_memberships(multi_timeframe, eurusd_frames[timeframe]).astype(np.float32)
    closed = pd.Timestamp(last_closed)
    still_open = closed + timeframe_delta(timeframe)
    # the case can fail: the bar one step later holds other values
    assert not np.allclose(memberships.loc[closed], memberships.loc[still_open])

    seen = eurusd_features.loc[pd.Timestamp(base_bar), [f"{timeframe}_{column}" for column in memberships.columns]]
    np.testing.assert_array_equal(seen.to_numpy(), memberships.loc[closed].to_numpy())


NO_LOOK_AHEAD_BARS = [
    pytest.param("2017-09-05 03:00", id="a 4h bar closes with it"),
    pytest.param("2017-09-05 04:00", id="first hour after a 4h bar closed"),
    pytest.param("2017-09-05 22:00", id="an hour before a 1d bar closes"),
    pytest.param("2017-09-05 23:00", id="a 1d and a 4h bar close with it"),
    pytest.param("2017-09-06 00:00", id="first hour of a new day"),
    pytest.param("2017-10-10 14:00", id="mid-bar for 4h and 1d"),
    pytest.param("2018-01-05 20:00", id="friday evening"),
]


@pytest.mark.parametrize("last_bar", NO_LOOK_AHEAD_BARS)
def test_features_up_to_a_bar_do_not_change_when_later_bars_are_removed(
    multi_timeframe: StrategyConfig,
    eurusd_frames: dict[str, pd.DataFrame],
    eurusd_features: pd.DataFrame,
    last_bar: str,
) -> None:
    t = pd.Timestamp(last_bar)
    assert t in eurusd_features.index
    closes_at = t + timeframe_delta("1h")
    # what was known at t's close: the bars of every timeframe that had closed by then
    known = {
        tf: frame[pd.DatetimeIndex(frame.index) + timeframe_delta(tf) <= closes_at]
        for tf, frame in eurusd_frames.items()
    }

    truncated = symbol_features(multi_timeframe, known)

    pd.testing.assert_frame_equal(truncated.loc[:t], eurusd_features.loc[:t], check_exact=True)
    assert eurusd_features.loc[t].notna().all()


@pytest.mark.parametrize("last_bar", ["2017-09-05 23:00", "2017-10-10 14:00"])
def test_features_from_a_shorter_hourly_file_match_up_to_its_last_bar(
    multi_timeframe: StrategyConfig,
    data_dir: Path,
    eurusd_features: pd.DataFrame,
    tmp_path: Path,
    last_bar: str,
) -> None:
    # Only the hourly file, cut after t: the 4h and 1d bars are resampled from it, the unfinished ones dropped.
    t = pd.Timestamp(last_bar)
    load_ohlcv(data_dir, "EURUSD", "1h").loc[:t].to_csv(tmp_path / "EURUSD_1h.csv", index_label="timestamp")

    frames = load_frames(multi_timeframe, tmp_path, "EURUSD")
    truncated = symbol_features(multi_timeframe, frames)

    assert frames["1d"].index[-1] + timeframe_delta("1d") <= t + timeframe_delta("1h")
    pd.testing.assert_frame_equal(truncated.loc[:t], eurusd_features.loc[:t], check_exact=True)


# -------------------------------------------------------------------------------------------- multi-symbol

TWO_SYMBOLS: dict[str, Any] = {
    "name": "two_symbols_daily",
    "training_data": {
        "symbols": {"mode": "multi_symbol", "list": ["EURUSD", "GOOG"]},
        "timeframes": {"mode": "single", "timeframe": "1d"},
    },
    "indicators": [
        {"name": "rsi", "feature_id": "rsi_14", "period": 14},
        {"name": "roc", "feature_id": "roc_10", "period": 10},
    ],
    "fuzzy_sets": {
        "rsi_14": {
            "low": {"type": "triangular", "parameters": [0, 30, 50]},
            "high": {"type": "triangular", "parameters": [50, 70, 100]},
        },
        "roc_10": {
            "falling": {"type": "trapezoidal", "parameters": [-100, -100, -2, 0]},
            "rising": {"type": "trapezoidal", "parameters": [0, 2, 100, 100]},
        },
    },
    "model": {
        "architecture": {"hidden_layers": [8]},
        "features": {"lookback_periods": 2},
        "training": {"epochs": EPOCHS, "batch_size": 64},
    },
    "training": {"labels": {"zigzag_threshold": 0.02, "label_lookahead": 10}},
}


@dataclass
class TwoSymbols:
    job: StrategyTrainingJob
    data: PreparedData
    reporter: RecordingReporter

    def raw_rows(self, data_dir: Path, split: str) -> npt.NDArray[np.float64]:
        """Unscaled features of each symbol's ``split`` rows, recomputed from the files, in the job's row order."""
        config = self.job.config
        parts = []
        for symbol in config.symbols:
            features = symbol_features(config, load_frames(config, data_dir, symbol))
            parts.append(features.loc[self.data.split_index[symbol][split]].to_numpy(dtype=np.float64))
        return np.concatenate(parts)


@pytest.fixture(scope="module")
def two_symbols(data_dir: Path) -> TwoSymbols:
    """EURUSD (2017-2018) and GOOG (2004-2013) daily bars, prepared (not trained) in one job."""
    reporter = RecordingReporter()
    job = StrategyTrainingJob(parse_strategy(TWO_SYMBOLS), data_dir=data_dir, reporter=reporter, device="cpu")
    return TwoSymbols(job, job.prepare_data(), reporter)


def test_multi_symbol_processes_each_symbol_and_keeps_its_rows(two_symbols: TwoSymbols) -> None:
    data, reporter = two_symbols.data, two_symbols.reporter

    assert list(data.rows_per_symbol) == ["EURUSD", "GOOG"]
    kept = {symbol: sum(len(index) for index in data.split_index[symbol].values()) for symbol in data.rows_per_symbol}
    for symbol, rows in data.rows_per_symbol.items():
        assert 0.9 * rows <= kept[symbol] <= rows  # all but the few purged at the boundaries
        assert rows >= 100
    total = sum(data.rows_per_symbol.values())
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == sum(kept.values()) == total - data.purged_rows
    messages = reporter.messages(Phase.PREPROCESSING)
    assert messages[0] == "Processing EURUSD (1/2) [1d] - Loading data"
    assert messages[len(messages) // 2 - 1] == "Processing EURUSD (1/2) - Generating labels (ZigZag 2.00%)"
    assert messages[len(messages) // 2] == "Processing GOOG (2/2) [1d] - Loading data"
    assert messages[-1] == "Processing GOOG (2/2) - Generating labels (ZigZag 2.00%)"
    assert reporter.messages(Phase.PREPARATION)[0] == f"Combining 2 symbol(s): {total:,} labelled rows"


def test_multi_symbol_split_is_on_one_time_axis(two_symbols: TwoSymbols) -> None:
    # GOOG's daily bars (2004-2013) all come before EURUSD's (2017-2018). Split each on its own, GOOG's test bars
    # (2011-13) came before EURUSD's training bars (2017): a model tested on a period it had trained on in another
    # symbol. On one axis, EURUSD is all test: its bars are the newest.
    data = two_symbols.data
    split = two_symbols.job.config.training.data_split
    goog, eurusd = data.split_index["GOOG"], data.split_index["EURUSD"]

    assert len(eurusd["train"]) == len(eurusd["validation"]) == 0
    assert len(eurusd["test"]) == data.rows_per_symbol["EURUSD"]
    assert goog["train"][-1] < goog["validation"][0] and goog["validation"][-1] < goog["test"][0]
    assert goog["test"][-1] < eurusd["test"][0]
    for part in (*goog.values(), *eurusd.values()):
        assert part.is_monotonic_increasing and part.is_unique
    # the boundary lies at the split's fraction of all the labelled rows (less those purged before it)
    total = sum(data.rows_per_symbol.values())
    assert int(total * split.train) - data.purged_rows <= len(data.y_train) <= int(total * split.train)


def test_no_symbol_tests_a_period_another_trains_on(data_dir: Path, tmp_path: Path) -> None:
    """Two symbols over overlapping months: every validation and test bar, of either, comes after every training
    bar of both."""
    eurusd = load_ohlcv(data_dir, "EURUSD", "1h")
    early = eurusd.copy()
    early.index = early.index - pd.Timedelta(days=60)  # the same market, two months earlier
    eurusd.to_csv(tmp_path / "EURUSD_1h.csv", index_label="timestamp")
    early.to_csv(tmp_path / "EARLY_1h.csv", index_label="timestamp")
    config = copy.deepcopy(TWO_SYMBOLS)
    config["training_data"] = {
        "symbols": {"mode": "multi_symbol", "list": ["EURUSD", "EARLY"]},
        "timeframes": {"mode": "single", "timeframe": "1h"},
    }
    config["training"] = {"labels": {"zigzag_threshold": 0.004, "label_lookahead": 24}}
    data = StrategyTrainingJob(parse_strategy(config), data_dir=tmp_path, reporter=RecordingReporter()).prepare_data()

    index = {symbol: data.split_index[symbol] for symbol in ("EURUSD", "EARLY")}
    last_train = max(index[symbol]["train"][-1] for symbol in index)
    later = [index[symbol][name] for symbol in index for name in ("validation", "test")]
    assert all(len(part) > 0 for part in later)  # both symbols have bars in each split
    assert last_train < min(part[0] for part in later)


def test_no_training_or_validation_label_is_decided_by_a_later_split(two_symbols: TwoSymbols, data_dir: Path) -> None:
    data = two_symbols.data
    config = two_symbols.job.config
    frames = load_frames(config, data_dir, "GOOG")
    close = frames["1d"]["close"].loc[symbol_features(config, frames).index]  # the bars the labels were made from
    decided = zigzag_decided(close, config.training.labels)
    when = pd.Series(close.index[decided.clip(lower=0)], index=close.index)
    index = data.split_index["GOOG"]

    assert data.purged_rows > 0
    assert (when.loc[index["train"]] < index["validation"][0]).all()
    assert (when.loc[index["validation"]] < index["test"][0]).all()
    # and what was purged is only that: the labelled bars before validation's first left out of training (its
    # last ones) were decided after the last training bar kept
    span = close.loc[index["train"][0] : index["validation"][0]].index[:-1]
    left_out = span.difference(index["train"])
    assert len(left_out) > 0 and (when.loc[left_out] > index["train"][-1]).all()


def test_multi_symbol_rows_are_those_bars_stacked_symbol_by_symbol(two_symbols: TwoSymbols, data_dir: Path) -> None:
    data = two_symbols.data
    assert data.scaler is not None

    for split, scaled in (("train", data.x_train), ("validation", data.x_val), ("test", data.x_test)):
        expected = data.scaler.transform(two_symbols.raw_rows(data_dir, split))
        np.testing.assert_allclose(scaled, expected, rtol=1e-5, atol=1e-5)


def test_scaler_is_fitted_on_the_training_rows_only(two_symbols: TwoSymbols, data_dir: Path) -> None:
    data = two_symbols.data
    raw = two_symbols.raw_rows(data_dir, "train")
    varying = raw.std(axis=0) > 1e-6
    assert data.scaler is not None
    assert varying.sum() >= len(varying) - 2

    np.testing.assert_allclose(data.scaler.mean, raw.mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        data.scaler.scale[varying], np.maximum(raw.std(axis=0)[varying], MEMBERSHIP_MIN_SCALE), rtol=1e-9
    )
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=0)[varying], 1.0, atol=1e-4)
    # fitted on every row, all rows together would have mean 0; fitted on train, the later rows drift away
    everything = np.concatenate([data.x_train, data.x_val, data.x_test])
    assert np.abs(everything.mean(axis=0)).max() > 0.02


# ---------------------------------------------------------------------------------------------- cancellation


def test_stop_during_preprocessing_raises_with_the_reason_and_who_asked(data_dir: Path) -> None:
    reporter = RecordingReporter(stop_after=3)  # loading, RSI and BBANDS run; the stop arrives before STOCH

    with pytest.raises(OperationCancelledError, match="agent: val_loss rising"):
        train(small_mean_reversion(), data_dir, reporter)

    assert reporter.messages(Phase.PREPROCESSING)[-1] == "Processing EURUSD (1/1) [1h] - Computing BBANDS (2/3)"
    assert {state.phase for state in reporter.states} == {Phase.PREPROCESSING}
    assert reporter.records == []
    assert reporter.batches == []


def test_stop_during_preparation_raises_before_training(data_dir: Path) -> None:
    reporter = RecordingReporter(stop_when=lambda r: bool(r.messages(Phase.PREPARATION)))

    with pytest.raises(OperationCancelledError, match="stopped by agent: val_loss rising"):
        train(small_mean_reversion(), data_dir, reporter)

    assert len(reporter.messages(Phase.PREPARATION)) == 1
    assert reporter.batches == []


def batches_done(count: Callable[[int], int]) -> Callable[[RecordingReporter], bool]:
    """Stop once ``count(batches per epoch)`` batches have run."""

    def reached(reporter: RecordingReporter) -> bool:
        batches = reporter.batches
        return bool(batches) and len(batches) >= count(batches[0][3])

    return reached


def test_stop_during_training_keeps_the_finished_epochs_and_evaluates_the_best_weights(data_dir: Path) -> None:
    reporter = RecordingReporter(stop_when=batches_done(lambda per_epoch: 2 * per_epoch + 7))

    result = train(small_mean_reversion(epochs=5), data_dir, reporter)

    per_epoch = reporter.batches[0][3]
    assert len(reporter.batches) == 2 * per_epoch + 7  # checked before every batch: none ran after the stop
    assert result.cancelled
    assert result.outcome.epochs_completed == len(result.outcome.history) == 2
    assert reporter.records == result.outcome.history
    summary = result.result()
    assert summary.cancelled == CancelledBy(reason="val_loss rising", requested_by="agent")
    assert summary.model_dump(mode="json")["cancelled"] == {"reason": "val_loss rising", "requested_by": "agent"}
    assert summary.training_metrics.epochs_completed == 2
    assert summary.training_metrics.stopped_reason == "cancelled by agent: val_loss rising"
    assert summary.training_metrics.restored_best_weights is True
    for name in ("test_loss", "test_accuracy", "precision", "recall", "f1_score"):
        assert math.isfinite(getattr(summary.test_metrics, name))
    assert [state.percentage for state in reporter.states if state.phase == Phase.EVALUATION] == [95.0, 100.0]

    # the model holds the best epoch's weights (not those of the 7 batches after it), and those were scored
    assert result.outcome.best_epoch is not None
    best = result.outcome.history[result.outcome.best_epoch]
    kept = summary.training_metrics  # and its figures are those weights', not the last epoch's
    assert (kept.kept_train_accuracy, kept.kept_val_accuracy) == (best.train_accuracy, best.val_accuracy)
    logits = torch.from_numpy(predict_logits(result.model, result.data.x_val, "cpu"))
    val_loss = float(F.cross_entropy(logits, torch.from_numpy(result.data.y_val)))
    assert val_loss == pytest.approx(best.val_loss, rel=1e-5)
    again = evaluate(result.model, result.data.x_test, result.data.y_test, device="cpu", class_names=LABEL_NAMES)
    assert again.test_accuracy == result.evaluation.test_accuracy
    assert again.test_loss == pytest.approx(result.evaluation.test_loss, rel=1e-6)


def test_stop_before_the_first_batch_still_returns_a_scored_run(data_dir: Path) -> None:
    reporter = RecordingReporter(stop_when=lambda r: bool(r.messages(Phase.TRAINING)))

    result = train(small_mean_reversion(), data_dir, reporter)

    assert result.cancelled
    assert reporter.batches == []
    assert result.outcome.history == []
    summary = json.loads(json.dumps(result.result().model_dump(mode="json"), allow_nan=False))
    assert summary["training_metrics"]["epochs_completed"] == 0
    assert summary["training_metrics"]["final_val_loss"] is None
    assert summary["cancelled"]["requested_by"] == "agent"
    assert math.isfinite(summary["test_metrics"]["test_accuracy"])


# ---------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"symbols": {"mode": "single", "symbol": "AAPL"}},
            r"no market data for AAPL 1h: .*AAPL_1h\.csv \(or \.parquet\) does not exist\. "
            r"Available: EURUSD_1h, EURUSD_4h, EURUSD_1d, GOOG_1d, GOOG_1w",
            id="missing file",
        ),
        pytest.param(
            {"start_date": "2017-04-19", "end_date": "2017-04-21"},
            r"EURUSD 1h has 60 bar\(s\) between 2017-04-19 09:00 and 2017-04-21 20:00; at least 71 are needed "
            r"for the indicators \(warm-up 21 \+ 50\)\. Load a wider date range",
            id="too few bars for the warm-up",
        ),
        pytest.param(
            {"start_date": "2017-10-02", "end_date": "2017-10-04"},
            r"\d+ labelled rows are too few for a train/validation/test split with at least 10 rows in each part; "
            r"widen the date range, use a shorter timeframe or a smaller zigzag_threshold",
            id="too few labelled rows",
        ),
    ],
)
def test_unusable_data_raises_a_data_error_before_any_epoch(
    data_dir: Path, changes: dict[str, Any], message: str
) -> None:
    reporter = RecordingReporter()

    with pytest.raises(DataError, match=message):
        train(small_mean_reversion(**changes), data_dir, reporter)

    assert reporter.records == []
    assert reporter.batches == []
    assert not reporter.messages(Phase.TRAINING)


def test_missing_data_error_lists_what_is_available(data_dir: Path) -> None:
    config = small_mean_reversion(symbols={"mode": "single", "symbol": "AAPL"})

    with pytest.raises(DataError) as raised:
        train(config, data_dir, RecordingReporter())

    assert raised.value.details["available"] == ["EURUSD_1h", "EURUSD_4h", "EURUSD_1d", "GOOG_1d", "GOOG_1w"]


# ---------------------------------------------------------------------------------------------------- result


def test_result_holds_the_training_test_and_model_figures(
    mean_reversion: tuple[TrainedStrategy, RecordingReporter],
) -> None:
    result, _ = mean_reversion
    summary = result.result()
    last = result.outcome.history[-1]

    training = summary.training_metrics
    assert (
        training.final_train_loss,
        training.final_val_loss,
        training.final_train_accuracy,
        training.final_val_accuracy,
    ) == (last.train_loss, last.val_loss, last.train_accuracy, last.val_accuracy)
    assert training.epochs_completed == training.epochs_planned == EPOCHS
    assert training.early_stopped is False
    assert training.training_time_minutes is not None and training.training_time_minutes >= 0
    assert summary.cancelled is None
    assert summary.model_version is None and summary.model_info.model_path is None  # no version was written

    test = summary.test_metrics
    for name in ("test_loss", "test_accuracy", "precision", "recall", "f1_score"):
        assert math.isfinite(getattr(test, name)), name
    for name in ("test_accuracy", "precision", "recall", "f1_score"):
        assert 0.0 <= getattr(test, name) <= 1.0, name
    assert test.support == len(result.data.y_test)
    assert test.per_class == result.evaluation.per_class

    model = summary.model_info
    assert model.architecture == "mlp_32_16"
    assert model.parameters_count == sum(parameter.numel() for parameter in result.model.parameters())
    assert model.model_size_mb == pytest.approx(model.parameters_count * 4 / 2**20, abs=1e-6)
    assert model.input_size == 27

    balance = summary.data.class_balance
    assert list(balance) == ["BUY", "HOLD", "SELL"]
    assert sum(share.fraction for share in balance.values()) == pytest.approx(1.0)
    rows = summary.data.rows
    assert sum(share.count for share in balance.values()) == rows.train + rows.validation + rows.test


def test_result_json_has_the_stored_keys_in_their_order(
    mean_reversion: tuple[TrainedStrategy, RecordingReporter],
) -> None:
    """REST clients and results stored in existing databases read these keys by name."""
    result, _ = mean_reversion
    stored = result.result().model_dump(mode="json")

    assert list(stored) == [
        "strategy",
        "symbols",
        "timeframes",
        "training_metrics",
        "test_metrics",
        "model_info",
        "data",
        "cancelled",
        "duration_seconds",
        "timings",
    ]
    assert list(stored["training_metrics"]) == [
        "final_train_loss",
        "final_val_loss",
        "final_train_accuracy",
        "final_val_accuracy",
        "kept_train_accuracy",
        "kept_val_accuracy",
        "best_epoch",
        "best_value",
        "monitor",
        "epochs_completed",
        "epochs_planned",
        "early_stopped",
        "stopped_reason",
        "restored_best_weights",
        "diverged",
        "training_time_minutes",
        "samples_per_second",
    ]
    assert list(stored["test_metrics"]) == [
        "test_loss",
        "test_accuracy",
        "precision",
        "recall",
        "f1_score",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "confusion_matrix",
        "per_class",
        "support",
        "baseline_accuracy",
        "baseline_class",
    ]
    assert stored["test_metrics"]["per_class"]["SELL"].keys() == {"precision", "recall", "f1", "support", "accuracy"}
    assert list(stored["model_info"]) == [
        "model_type",
        "architecture",
        "parameters_count",
        "model_size_mb",
        "input_size",
        "device",
    ]
    assert list(stored["data"]) == [
        "features",
        "rows",
        "rows_per_symbol",
        "dropped_rows",
        "purged_rows",  # written when the splits' boundaries purged some rows, as they do here
        "class_balance",
        "start",
        "end",
    ]
    assert stored["data"]["rows"].keys() == {"train", "validation", "test"}
    assert stored["data"]["class_balance"]["HOLD"].keys() == {"count", "fraction"}
    assert stored["strategy"] == "mean_reversion" and stored["symbols"] == ["EURUSD"] and stored["timeframes"] == ["1h"]
    assert set(stored["timings"]) == {"preprocessing", "model_creation", "training", "evaluation"}


def test_result_is_json_and_reads_back(mean_reversion: tuple[TrainedStrategy, RecordingReporter]) -> None:
    result, _ = mean_reversion
    stored = result.result().model_dump(mode="json")

    assert json.loads(json.dumps(stored, allow_nan=False)) == stored
    assert StrategyResult.model_validate(stored) == result.result()
    assert StrategyResult.model_validate(stored).model_dump(mode="json") == stored


# ------------------------------------------------------------------------------------------ reproducibility


def history(config: StrategyConfig, data_dir: Path) -> list[dict[str, Any]]:
    reporter = RecordingReporter()
    result = train(config, data_dir, reporter)
    assert reporter.records == result.outcome.history
    return [comparable(record) for record in result.outcome.history]


def test_same_seed_on_cpu_gives_identical_epoch_histories(data_dir: Path) -> None:
    config = small_mean_reversion()
    data = config.to_dict()
    data["model"]["training"]["seed"] = 7
    other_seed = parse_strategy(data)

    first = history(config, data_dir)

    assert history(config, data_dir) == first
    assert history(other_seed, data_dir) != first
