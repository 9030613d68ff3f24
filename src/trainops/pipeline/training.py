"""The strategy training job: market data -> indicators -> fuzzy memberships -> features -> labels -> MLP -> test.

The job reports every step through the :class:`~trainops.core.reporter.Reporter` it is given and nothing else:
per symbol and timeframe the loading, each indicator and each fuzzy feature, then the features and labels
(preprocessing, 0-5%), combining, splitting and creating the model (preparation, 5%), every epoch and batch
(training, 5-95%) and the test evaluation (95-100%). The engines it calls are pure and know nothing of this;
:func:`symbol_features` takes a ``step`` hook so the same code computes features for prediction, silently.

A stop request is honoured between steps and, during training, between batches; the model then keeps the best
weights seen and is still evaluated, so a cancelled run leaves its history, its best model and its scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from torch import nn

from trainops.core.progress import MAX_STEP_LENGTH, Phase, ProgressState, band_percentage, clipped
from trainops.core.reporter import Reporter
from trainops.errors import DataError, OperationCancelledError, TrainingDivergedError
from trainops.pipeline.data import align_to_base, require_bars
from trainops.pipeline.evaluation import EvaluationResult, evaluate
from trainops.pipeline.features import FeatureScaler, add_lags
from trainops.pipeline.fuzzy import fuzzify
from trainops.pipeline.indicators import compute_indicator, output_column, warmup_bars
from trainops.pipeline.labels import LABEL_NAMES, class_balance, zigzag_decided, zigzag_labels
from trainops.pipeline.model import architecture_name, build_mlp, model_size_mb, parameter_count
from trainops.pipeline.strategy import DataSplitConfig, StrategyConfig
from trainops.pipeline.symbol_frames import load_frames
from trainops.pipeline.trainer import Trainer, TrainingOutcome, resolve_device
from trainops.schemas.training import (
    CancelledBy,
    ClassShare,
    DataSummary,
    SplitRows,
    StrategyModelInfo,
    StrategyResult,
    StrategyTestMetrics,
    StrategyTrainingMetrics,
)

MIN_ROWS_PER_SPLIT = 10
"""Fewer labelled rows than this in the validation or test split cannot say anything; the job refuses."""

MEMBERSHIP_MIN_SCALE = 0.05
"""The least scale of a feature (all are fuzzy memberships, in [0, 1]). A set the training rows barely reach (8 of
3,470 in one case) had a scale of 0.02, so a bar in it at prediction time read as 50 standard deviations, far outside
anything the model saw; at 0.05 a full membership reads at most 20. Columns that vary more are scaled as before."""

MIN_TRAINING_BARS = 50
"""Bars beyond the indicators' warm-up and the lags that a symbol needs before training is worth starting."""

Step = Callable[[str, Mapping[str, Any]], None]
"""A hook called before each unit of work with a message and its context (symbol, timeframe, indicator, ...)."""

T = TypeVar("T")
FloatMatrix = npt.NDArray[np.float32]
LabelVector = npt.NDArray[np.int64]


def _silent(message: str, context: Mapping[str, Any]) -> None:
    pass


class SymbolRows(NamedTuple):
    """One symbol's labelled rows: features, labels, and the bar at which each label became known."""

    symbol: str
    features: pd.DataFrame
    labels: pd.Series
    decided: pd.Series
    """The time of the bar whose close decided each row's label (:func:`~trainops.pipeline.labels.zigzag_decided`)."""


def nanoseconds(times: pd.Index | pd.Series) -> npt.NDArray[np.int64]:
    """Times as nanoseconds since 1970 (in their time zone's UTC when they have one), whatever unit pandas holds
    them in: comparable across symbols."""
    return pd.DatetimeIndex(times).as_unit("ns").asi8


def split_times(indexes: Sequence[pd.Index], split: DataSplitConfig) -> tuple[int, int]:
    """The last bar of the training split and of the validation split, on one time axis for every symbol (as
    :func:`nanoseconds`): ``split.train`` of all the labelled rows lie at or before the first, ``split.validation``
    more at or before the second. Bars at the same time fall in the same split.

    >>> days = pd.date_range("2024-01-01", periods=10, freq="D")
    >>> split = DataSplitConfig(train=0.6, validation=0.2, test=0.2)
    >>> [str(pd.Timestamp(t, unit="ns").date()) for t in split_times([days], split)]
    ['2024-01-06', '2024-01-08']
    """
    times = np.sort(np.concatenate([nanoseconds(index) for index in indexes]))
    train_end = max(int(len(times) * split.train), 1)
    validation_end = min(train_end + max(int(len(times) * split.validation), 1), len(times))
    return int(times[train_end - 1]), int(times[validation_end - 1])


# -- features ---------------------------------------------------------------------------------------------------


def warmup(config: StrategyConfig) -> int:
    """Bars every timeframe needs before its first complete feature row: indicator warm-up plus the lags."""
    return max(warmup_bars(indicator) for indicator in config.indicators) + config.model.features.lookback_periods


def timeframe_memberships(
    config: StrategyConfig, ohlcv: pd.DataFrame, step: Step = _silent, context: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Every fuzzy membership of one timeframe's bars: ``{feature_id}_{set}`` columns in declared order."""
    where = dict(context or {})
    outputs: dict[str, pd.DataFrame] = {}
    total = len(config.indicators)
    for number, indicator in enumerate(config.indicators, start=1):
        label = indicator.indicator.talib_name
        step(f"Computing {label} ({number}/{total})", {**where, "indicator": indicator.feature_id})
        outputs[indicator.feature_id] = compute_indicator(indicator, ohlcv)
    by_feature = {indicator.feature_id: indicator for indicator in config.indicators}
    columns: list[pd.DataFrame] = []
    total = len(config.fuzzy_sets)
    for number, (feature_id, fuzzy) in enumerate(config.fuzzy_sets.items(), start=1):
        sets = ", ".join(fuzzy.sets)
        step(f"Fuzzifying {feature_id}: {sets} ({number}/{total})", {**where, "fuzzy_feature": feature_id})
        column = output_column(by_feature[feature_id], fuzzy.output)
        columns.append(fuzzify(outputs[feature_id][column], fuzzy, feature_id, ohlcv))
    return pd.concat(columns, axis=1)


def symbol_features(
    config: StrategyConfig,
    frames: Mapping[str, pd.DataFrame],
    step: Step = _silent,
    context: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The model's input columns for one symbol, one row per base bar (warm-up rows hold NaN).

    With several timeframes each column is prefixed with its timeframe (``4h_rsi_14_oversold``) and the higher
    timeframes' values are those of their last bar that had closed by the base bar's close (no look-ahead).
    Lagged copies (``_lag1`` ...) follow, from ``model.features.lookback_periods``.
    """
    timeframes = config.timeframes
    base = timeframes[0]
    base_index = pd.DatetimeIndex(frames[base].index)
    parts: list[pd.DataFrame] = []
    for timeframe in timeframes:
        where = {**(context or {}), "timeframe": timeframe}

        def timeframe_step(message: str, details: Mapping[str, Any], timeframe: str = timeframe) -> None:
            step(f"[{timeframe}] - {message}", details)

        memberships = timeframe_memberships(config, frames[timeframe], timeframe_step, where)
        if timeframe != base:
            memberships = align_to_base(memberships, timeframe, base_index, base)
        if config.training_data.timeframes.is_multi:
            memberships = memberships.add_prefix(f"{timeframe}_")
        parts.append(memberships)
    combined = pd.concat(parts, axis=1)
    return add_lags(combined, config.model.features.lookback_periods).astype(np.float32)


def _constant_columns(matrix: FloatMatrix) -> list[bool]:
    """Per column, whether it holds one value in every row (a matrix without rows has none).

    >>> _constant_columns(np.array([[0.0, 1.0], [0.0, 2.0]], dtype=np.float32))
    [True, False]
    """
    if len(matrix) == 0:
        return [False] * matrix.shape[1]
    return [bool(spread == 0.0) for spread in matrix.max(axis=0) - matrix.min(axis=0)]


# -- the job ----------------------------------------------------------------------------------------------------


@dataclass
class PreparedData:
    """The labelled, split and scaled rows the model trains on, and how they were made."""

    feature_names: list[str]
    x_train: FloatMatrix
    y_train: LabelVector
    x_val: FloatMatrix
    y_val: LabelVector
    x_test: FloatMatrix
    y_test: LabelVector
    scaler: FeatureScaler | None
    class_balance: dict[str, dict[str, float | int]]
    rows_per_symbol: dict[str, int]
    dropped_rows: int
    start: str | None
    end: str | None
    purged_rows: int = 0
    """Rows left out at the splits' boundaries: their label was decided by a later split's prices."""
    split_index: dict[str, dict[str, pd.DatetimeIndex]] = field(default_factory=dict)
    """Per symbol, the bars of each split (``train``, ``validation``, ``test``), in row order within the symbol."""
    constant_features: list[str] = field(default_factory=list)
    """Features with one value over every training row: nothing to learn from."""

    def baseline(self) -> dict[str, Any]:
        """``baseline_class``, the training split's most frequent class, and ``baseline_accuracy``, the test accuracy
        of always predicting it (nothing when either split is empty)."""
        if not len(self.y_train) or not len(self.y_test):
            return {}
        majority = int(np.bincount(self.y_train, minlength=len(LABEL_NAMES)).argmax())
        return {"baseline_class": LABEL_NAMES[majority], "baseline_accuracy": float(np.mean(self.y_test == majority))}

    def summary(self) -> DataSummary:
        return DataSummary(
            features=len(self.feature_names),
            rows=SplitRows(train=len(self.y_train), validation=len(self.y_val), test=len(self.y_test)),
            rows_per_symbol=dict(self.rows_per_symbol),
            dropped_rows=self.dropped_rows,
            purged_rows=self.purged_rows,
            class_balance={name: ClassShare.model_validate(share) for name, share in self.class_balance.items()},
            start=self.start,
            end=self.end,
            constant_features=list(self.constant_features),
        )


@dataclass
class TrainedStrategy:
    """What a training job produced: the model with its best weights, how it was trained and how it scored."""

    config: StrategyConfig
    model: nn.Module
    data: PreparedData
    outcome: TrainingOutcome
    evaluation: EvaluationResult
    device: str
    duration_seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def cancelled(self) -> bool:
        return self.outcome.cancelled is not None

    def result(self) -> StrategyResult:
        """The operation's result: training, test, model and data figures (``model_dump(mode="json")`` stores it).

        ``model_version`` and ``model_info.model_path`` are left unset: whoever writes the model version fills them.
        """
        outcome = self.outcome
        last = outcome.history[-1] if outcome.history else None
        kept = last
        if outcome.restored_best_weights:  # the model holds best_epoch's weights: its figures describe them
            kept = next((record for record in outcome.history if record.epoch == outcome.best_epoch), last)
        evaluation = self.evaluation
        return StrategyResult(
            strategy=self.config.name,
            symbols=list(self.config.symbols),
            timeframes=list(self.config.timeframes),
            training_metrics=StrategyTrainingMetrics(
                final_train_loss=last.train_loss if last else None,
                final_val_loss=last.val_loss if last else None,
                final_train_accuracy=last.train_accuracy if last else None,
                final_val_accuracy=last.val_accuracy if last else None,
                kept_train_accuracy=kept.train_accuracy if kept else None,
                kept_val_accuracy=kept.val_accuracy if kept else None,
                best_epoch=outcome.best_epoch,
                best_value=outcome.best_value,
                monitor=outcome.monitor,
                epochs_completed=outcome.epochs_completed,
                epochs_planned=self.config.model.training.epochs,
                early_stopped=outcome.early_stopped,
                stopped_reason=outcome.stop_reason,
                restored_best_weights=outcome.restored_best_weights,
                diverged=outcome.diverged,
                training_time_minutes=round(outcome.duration_seconds / 60, 4),
                samples_per_second=round(outcome.samples_per_second, 1),
            ),
            test_metrics=StrategyTestMetrics(
                test_loss=evaluation.test_loss,
                test_accuracy=evaluation.test_accuracy,
                precision=evaluation.precision,
                recall=evaluation.recall,
                f1_score=evaluation.f1_score,
                precision_weighted=evaluation.precision_weighted,
                recall_weighted=evaluation.recall_weighted,
                f1_weighted=evaluation.f1_weighted,
                confusion_matrix=evaluation.confusion_matrix,
                per_class=dict(evaluation.per_class),
                support=evaluation.support,
                **self.data.baseline(),
            ),
            model_info=StrategyModelInfo(
                model_type=self.config.model.type,
                architecture=architecture_name(self.config.model.architecture),
                parameters_count=parameter_count(self.model),
                model_size_mb=round(model_size_mb(self.model), 6),
                input_size=len(self.data.feature_names),
                device=self.device,
            ),
            data=self.data.summary(),
            cancelled=(
                CancelledBy(reason=outcome.cancelled.reason, requested_by=outcome.cancelled.requested_by)
                if outcome.cancelled
                else None
            ),
            duration_seconds=round(self.duration_seconds, 3),
            timings={name: round(seconds, 4) for name, seconds in self.timings.items()},
        )


class StrategyTrainingJob:
    """Train one strategy on the data in ``data_dir``, reporting through ``reporter``.

    Args:
        config: The validated strategy (see :func:`~trainops.pipeline.strategy.load_strategy`).
        data_dir: Where the ``{SYMBOL}_{TIMEFRAME}`` files are.
        reporter: Receives progress, epochs and batches; asked whether to stop between steps and batches.
        device: ``cuda``, ``cpu``, ...; CUDA when available by default.

    Raises (from :meth:`run`):
        DataError: missing or unusable data, or too few bars or labelled rows.
        OperationCancelledError: a stop was requested before training began (during training the job stops,
            keeps the best weights and returns normally; :attr:`TrainedStrategy.cancelled` is then true).
    """

    def __init__(
        self, config: StrategyConfig, *, data_dir: Path, reporter: Reporter, device: str | None = None
    ) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.reporter = reporter
        self.device = resolve_device(device)
        self._steps_done = 0
        self._steps_total = 1
        self._timings: dict[str, float] = {}

    def run(self) -> TrainedStrategy:
        started = time.perf_counter()
        data = self._timed("preprocessing", self.prepare_data)
        model = self._timed("model_creation", lambda: self._create_model(len(data.feature_names)))
        trainer = Trainer(self.config.model.training, self.reporter, device=self.device)
        outcome = self._timed(
            "training", lambda: trainer.fit(model, data.x_train, data.y_train, data.x_val, data.y_val)
        )
        if outcome.diverged is not None and outcome.best_epoch is None:
            # no epoch before it was usable: test figures of NaN weights would read as a result, and a model as one
            raise TrainingDivergedError(
                f"{outcome.diverged}; no epoch had a finite {outcome.monitor} before, so there is no model to "
                "evaluate or keep",
                details={"epochs_completed": outcome.epochs_completed},
            )
        self.reporter.progress(
            ProgressState(
                percentage=band_percentage(Phase.EVALUATION, 0.0),
                phase=Phase.EVALUATION,
                current_step="evaluation",
                message=f"Evaluating on the test split ({len(data.y_test):,} rows)",
            )
        )
        result = self._timed(
            "evaluation", lambda: evaluate(model, data.x_test, data.y_test, device=self.device, class_names=LABEL_NAMES)
        )
        majority = data.baseline()
        baseline = f" (always {majority['baseline_class']}: {majority['baseline_accuracy']:.1%})" if majority else ""
        self.reporter.progress(
            ProgressState(
                percentage=band_percentage(Phase.EVALUATION, 1.0),
                phase=Phase.EVALUATION,
                current_step="evaluation",
                message=f"Test accuracy {result.test_accuracy:.1%}{baseline}, macro F1 {result.f1_score:.3f}",
                context={"test_accuracy": result.test_accuracy, "f1_score": result.f1_score},
            )
        )
        return TrainedStrategy(
            config=self.config,
            model=model,
            data=data,
            outcome=outcome,
            evaluation=result,
            device=str(self.device),
            duration_seconds=time.perf_counter() - started,
            timings=self._timings,
        )

    # -- preprocessing and preparation ------------------------------------------------------------------------

    def prepare_data(self) -> PreparedData:
        """Preprocess every symbol, then combine, split and scale (without training)."""
        config = self.config
        symbols = config.symbols
        per_timeframe = 1 + len(config.indicators) + len(config.fuzzy_sets)
        self._steps_total = len(symbols) * (len(config.timeframes) * per_timeframe + 2)
        self._steps_done = 0
        rows: list[SymbolRows] = []
        dropped = 0
        for number, symbol in enumerate(symbols, start=1):
            symbol_rows, lost = self._symbol_rows(symbol, number, len(symbols))
            rows.append(symbol_rows)
            dropped += lost
        return self._combine_and_split(rows, dropped)

    def _symbol_rows(self, symbol: str, number: int, count: int) -> tuple[SymbolRows, int]:
        config = self.config
        prefix = f"Processing {symbol} ({number}/{count})"
        context = {"symbol": symbol}
        base = config.timeframes[0]
        self._step(f"{prefix} [{base}] - Loading data", {**context, "timeframe": base})
        frames = load_frames(config, self.data_dir, symbol)
        needed = warmup(config) + MIN_TRAINING_BARS
        for timeframe, frame in frames.items():
            if timeframe != base:
                self._step(f"{prefix} [{timeframe}] - Loading data", {**context, "timeframe": timeframe})
            require_bars(frame, needed, f"the indicators (warm-up {needed - MIN_TRAINING_BARS} + {MIN_TRAINING_BARS})")

        def step(message: str, details: Mapping[str, Any]) -> None:
            self._step(f"{prefix} {message}", details)

        features = symbol_features(config, frames, step, context)
        self._step(f"{prefix} - Building features ({features.shape[1]} columns)", context)
        start, end = config.training_data.start_date, config.training_data.end_date
        window = features.index >= pd.Timestamp(start) if start else np.ones(len(features), dtype=bool)
        if end:
            window &= features.index < pd.Timestamp(end + timedelta(days=1))
        features = features.loc[window]
        if features.empty:
            raise DataError(f"{symbol} {base} has no bars between {start or 'the start'} and {end or 'the end'}")

        self._step(f"{prefix} - Generating labels (ZigZag {config.training.labels.zigzag_threshold:.2%})", context)
        close = frames[base]["close"].loc[features.index]
        labels = zigzag_labels(close, config.training.labels)
        decided = pd.Series(close.index[zigzag_decided(close, config.training.labels).clip(lower=0)], index=close.index)
        usable = features.notna().all(axis=1).to_numpy() & labels.notna().to_numpy()
        return SymbolRows(symbol, features.loc[usable], labels.loc[usable], decided.loc[usable]), int((~usable).sum())

    def _combine_and_split(self, rows: Sequence[SymbolRows], dropped: int) -> PreparedData:
        split = self.config.training.data_split
        total_rows = sum(len(part.labels) for part in rows)
        self._prepare(f"Combining {len(rows)} symbol(s): {total_rows:,} labelled rows", "combine")
        if total_rows < 3 * MIN_ROWS_PER_SPLIT:
            raise DataError(
                f"{total_rows:,} labelled rows are too few for a train/validation/test split with at least "
                f"{MIN_ROWS_PER_SPLIT} rows in each part; widen the date range, use a shorter timeframe or a smaller "
                "zigzag_threshold"
            )
        train_last, validation_last = split_times([part.labels.index for part in rows], split)
        parts: dict[str, list[Any]] = {name: [] for name in ("train", "validation", "test")}
        split_index: dict[str, dict[str, pd.DatetimeIndex]] = {}
        purged = 0
        for part in rows:
            index = pd.DatetimeIndex(part.features.index)
            decided = nanoseconds(part.decided)
            at = nanoseconds(index)
            # One time axis for every symbol: a bar of one symbol never tests a period another trains on. A row whose
            # label is decided by a bar past its split's last bar is purged: its target would carry the next split's
            # prices (the zigzag confirms a pivot bars after it).
            masks = {
                "train": at <= train_last,
                "validation": (at > train_last) & (at <= validation_last),
                "test": at > validation_last,
            }
            kept = {
                "train": masks["train"] & (decided <= train_last),
                "validation": masks["validation"] & (decided <= validation_last),
                "test": masks["test"],
            }
            purged += sum(int(masks[name].sum() - kept[name].sum()) for name in masks)
            x = part.features.to_numpy(dtype=np.float32)
            y = part.labels.to_numpy(dtype=np.int64)
            for name, mask in kept.items():
                parts[name].append((x[mask], y[mask]))
            split_index[part.symbol] = {name: index[mask] for name, mask in kept.items()}
        counts = {name: sum(len(y) for _, y in chunks) for name, chunks in parts.items()}
        if min(counts.values()) < MIN_ROWS_PER_SPLIT:
            raise DataError(
                f"{total_rows:,} labelled rows give {counts['train']:,} train, {counts['validation']:,} validation and "
                f"{counts['test']:,} test rows for a {split.train:g}/{split.validation:g}/{split.test:g} split in "
                f"time order ({purged:,} purged at the boundaries); each part needs at least {MIN_ROWS_PER_SPLIT}: "
                "widen the date range, use a shorter timeframe or a smaller zigzag_threshold",
                details={"rows": counts, "purged": purged},
            )

        def stacked(name: str) -> tuple[FloatMatrix, LabelVector]:
            return (
                np.concatenate([x for x, _ in parts[name]]).astype(np.float32),
                np.concatenate([y for _, y in parts[name]]).astype(np.int64),
            )

        x_train, y_train = stacked("train")
        x_val, y_val = stacked("validation")
        x_test, y_test = stacked("test")
        purge = f"; {purged:,} purged whose label a later split's prices decide" if purged else ""
        self._prepare(
            f"Splitting in time order: {len(y_train):,} train, {len(y_val):,} validation, {len(y_test):,} test rows"
            f"{purge}",
            "split",
        )
        feature_names = [str(name) for name in rows[0].features.columns]
        constant = [name for name, still in zip(feature_names, _constant_columns(x_train), strict=True) if still]
        if constant:
            shown = ", ".join(constant[:8]) + (f" and {len(constant) - 8} more" if len(constant) > 8 else "")
            self._prepare(
                f"{len(constant)} of {len(feature_names)} features never vary in the training rows ({shown}): the "
                "model learns nothing from them",
                "split",
            )
        scaler = None
        if self.config.model.features.scale_features:
            scaler = FeatureScaler(min_scale=MEMBERSHIP_MIN_SCALE).fit(x_train)
            x_train, x_val, x_test = (scaler.transform(x).astype(np.float32) for x in (x_train, x_val, x_test))
        all_labels = np.concatenate([y_train, y_val, y_test])
        starts = [part.features.index[0] for part in rows if len(part.features)]
        ends = [part.features.index[-1] for part in rows if len(part.features)]
        return PreparedData(
            feature_names=feature_names,
            x_train=x_train,
            y_train=y_train,
            x_val=x_val,
            y_val=y_val,
            x_test=x_test,
            y_test=y_test,
            scaler=scaler,
            class_balance=class_balance(all_labels.astype(np.float64)),
            rows_per_symbol={part.symbol: len(part.labels) for part in rows},
            dropped_rows=dropped,
            purged_rows=purged,
            start=min(starts).isoformat() if starts else None,
            end=max(ends).isoformat() if ends else None,
            split_index=split_index,
            constant_features=constant,
        )

    def _create_model(self, input_size: int) -> nn.Module:
        architecture = self.config.model.architecture
        model = build_mlp(input_size, architecture, num_classes=len(LABEL_NAMES), seed=self.config.model.training.seed)
        self._prepare(
            f"Creating model {architecture_name(architecture)}: {input_size} inputs, "
            f"{parameter_count(model):,} parameters, on {self.device}",
            "create_model",
        )
        return model

    # -- reporting --------------------------------------------------------------------------------------------

    def _check_stop(self) -> None:
        request = self.reporter.should_stop()
        if request is not None:
            raise OperationCancelledError(f"stopped by {request.requested_by}: {request.reason}")

    def _step(self, message: str, context: Mapping[str, Any]) -> None:
        """One preprocessing step begins: check for a stop, then say where we are (0-5%)."""
        self._check_stop()
        fraction = self._steps_done / self._steps_total if self._steps_total else 0.0
        self._steps_done += 1
        self.reporter.progress(
            ProgressState(
                percentage=band_percentage(Phase.PREPROCESSING, fraction),
                phase=Phase.PREPROCESSING,
                current_step=clipped(
                    str(context.get("indicator") or context.get("fuzzy_feature") or "preprocessing"), MAX_STEP_LENGTH
                ),
                message=clipped(message),
                items_done=self._steps_done - 1,
                items_total=self._steps_total,
                context={key: value for key, value in context.items() if value is not None},
            )
        )

    def _prepare(self, message: str, step: str) -> None:
        self._check_stop()
        self.reporter.progress(
            ProgressState(
                percentage=band_percentage(Phase.PREPARATION, 1.0),
                phase=Phase.PREPARATION,
                current_step=step,
                message=clipped(message),
            )
        )

    def _timed(self, name: str, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return work()
        finally:
            self._timings[name] = self._timings.get(name, 0.0) + time.perf_counter() - started
