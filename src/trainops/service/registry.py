"""The model registry: name a trained model, find it again, load it, ask it for signals, delete it.

Every finished training writes a model version to the models directory (see ``pipeline/artifacts.py``); saving
gives one of those versions a name in the ``models`` table. Loaded models stay in a small LRU cache, and so do the
market data files predictions read, so a repeated prediction costs the feature computation and one forward pass.
"""

from __future__ import annotations

import math
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from trainops.core.lru import LRUCache
from trainops.core.operation import Operation, OperationStatus
from trainops.errors import ArtifactError, ConflictError, InvalidInputError
from trainops.pipeline.artifacts import ModelVersion, read_model_version
from trainops.pipeline.data import normalize_symbol, parse_timeframe
from trainops.pipeline.prediction import BarPrediction, first_usable_bar, predict_bars, resolve_bar
from trainops.pipeline.symbol_frames import load_frames
from trainops.schemas.models import (
    LoadedModel,
    ModelInfo,
    ModelSummary,
    PredictionAnswer,
    PredictRequest,
    RangePredictionAnswer,
    SavedModel,
    SaveModelRequest,
    check_model_name,
)
from trainops.service.operations import OperationsService, utcnow
from trainops.store.models import ModelRecord, ModelStore

DEFAULT_CACHE_SIZE = 8


class ModelRegistry:
    """Save, list, load, predict with and delete named models.

    Args:
        store: The ``models`` table.
        operations: Where the trainings that produced the models are recorded.
        models_dir: The model versions' files.
        data_dir: The market data predictions read.
        cache_size: Loaded models (and data files) kept in memory.
    """

    def __init__(
        self,
        store: ModelStore,
        operations: OperationsService,
        *,
        models_dir: Path,
        data_dir: Path,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.store = store
        self.operations = operations
        self.models_dir = models_dir
        self.data_dir = data_dir
        self.cache_size = cache_size
        # name -> (the version's path when it was loaded, the version)
        self._loaded: LRUCache[str, tuple[str, ModelVersion]] = LRUCache(cache_size)
        self._frames: LRUCache[tuple[Any, ...], dict[str, pd.DataFrame]] = LRUCache(cache_size)
        # a few per model and data file: the first bar with complete features is a small answer worth keeping
        self._first: LRUCache[tuple[str, tuple[Any, ...]], pd.Timestamp] = LRUCache(4 * cache_size)

    # -- saving -----------------------------------------------------------------------------------------------

    def save(self, request: SaveModelRequest) -> SavedModel:
        """Name the model a finished training wrote.

        Raises:
            InvalidInputError: a hostile or malformed name.
            NotFoundError: no such task.
            ConflictError: the name is taken (unless ``overwrite``), or the task has not finished, failed, or
                left no model; the message says which.
        """
        name = check_model_name(request.model_name)
        operation = self.operations.get(request.task_id)
        path = self._version_of(operation)
        version = read_model_version(path)
        if version.metadata.get("source_operation") != operation.operation_id:
            raise ConflictError(
                f"the model version {path.name} was not written by {operation.operation_id} (it says "
                f"{version.metadata.get('source_operation')!r}); that training's model is gone, train it again"
            )
        metrics = _headline(version)
        now = utcnow()
        record = self.store.insert(
            ModelRecord(
                model_id=0,
                name=name,
                version_path=str(path.relative_to(self.models_dir)),
                strategy=version.config.name,
                symbol=str(version.metadata.get("symbol", "+".join(version.config.symbols))),
                timeframe=str(version.metadata.get("timeframe", "+".join(version.config.timeframes))),
                source_operation=operation.operation_id,
                description=request.description or None,
                metrics=metrics,
                size_bytes=version.size_bytes,
                created_at=_created_at(version, operation),
                saved_at=now,
            ),
            replace=request.overwrite,
        )
        self._loaded.pop(name)
        return SavedModel(
            model_id=record.model_id,
            model_name=record.name,
            model_path=str(path),
            task_id=operation.operation_id,
            saved_at=record.saved_at,
            model_size_mb=round(record.size_bytes / 2**20, 6),
        )

    def _version_of(self, operation: Operation) -> Path:
        status = operation.status
        result = operation.result or {}
        if status in (OperationStatus.PENDING, OperationStatus.RUNNING):
            raise ConflictError(
                f"training {operation.operation_id} is still {status.value} ({operation.progress.percentage:.0f}%); "
                "save its model once it has finished",
                details={"status": status.value},
            )
        if status is OperationStatus.FAILED:
            raise ConflictError(
                f"training {operation.operation_id} failed, so it has no model to save: {operation.error}",
                details={"status": status.value},
            )
        relative = result.get("model_version")
        if not isinstance(relative, str):
            raise ConflictError(
                f"operation {operation.operation_id} ended {status.value} without a model "
                "(it was stopped before training began, or it is not a strategy training)",
                details={"status": status.value},
            )
        path = (self.models_dir / relative).resolve()
        if self.models_dir.resolve() not in path.parents:
            raise ArtifactError(f"operation {operation.operation_id} names a model outside the models directory")
        return path

    # -- reading ----------------------------------------------------------------------------------------------

    def list_models(
        self, *, symbol: str | None = None, timeframe: str | None = None, strategy: str | None = None
    ) -> list[ModelSummary]:
        """Named models, newest first; ``symbol`` and ``timeframe`` are matched in their canonical spelling."""
        symbol = "+".join(normalize_symbol(part) for part in symbol.split("+")) if symbol else None
        timeframe = "+".join(parse_timeframe(part) for part in timeframe.split("+")) if timeframe else None
        return [
            self._summary(record)
            for record in self.store.list_models(symbol=symbol, timeframe=timeframe, strategy=strategy)
        ]

    def get(self, name: str) -> ModelSummary:
        return self._summary(self.store.get(check_model_name(name)))

    def _summary(self, record: ModelRecord) -> ModelSummary:
        metrics = record.metrics
        return ModelSummary(
            model_id=record.model_id,
            model_name=record.name,
            strategy=record.strategy,
            symbol=record.symbol,
            timeframe=record.timeframe,
            created_at=record.created_at,
            saved_at=record.saved_at,
            training_accuracy=metrics.get("training_accuracy"),
            test_accuracy=metrics.get("test_accuracy"),
            f1_score=metrics.get("f1_score"),
            architecture=metrics.get("architecture"),
            description=record.description,
            source_operation=record.source_operation,
            model_path=str(self.models_dir / record.version_path),
            model_size_mb=round(record.size_bytes / 2**20, 6),
        )

    def load(self, name: str) -> LoadedModel:
        """Load a model into the cache (reading and checking every file), and describe it."""
        record, version = self._loaded_version(name, reload=True)
        metrics = record.metrics
        return LoadedModel(
            model_name=name,
            model_info=ModelInfo(
                created_at=record.created_at,
                symbol=record.symbol,
                timeframe=record.timeframe,
                strategy=record.strategy,
                architecture=metrics.get("architecture"),
                training_accuracy=metrics.get("training_accuracy"),
                test_accuracy=metrics.get("test_accuracy"),
                input_size=len(version.feature_names),
                features=version.feature_names,
                source_operation=record.source_operation,
            ),
        )

    def _loaded_version(self, name: str, *, reload: bool = False) -> tuple[ModelRecord, ModelVersion]:
        """The model's record and its version, from the cache unless ``reload`` (or its files changed)."""
        record = self.store.get(check_model_name(name))
        cached = self._loaded.get(name)
        if cached is not None and cached[0] == record.version_path and not reload:
            return record, cached[1]
        try:
            version = read_model_version(self.models_dir / record.version_path)
        except ArtifactError:
            self._loaded.pop(name)  # damaged since it was cached: do not keep serving the old copy
            raise
        self._loaded.put(name, (record.version_path, version))
        return record, version

    @property
    def loaded(self) -> list[str]:
        """Names of the models in memory, least recently used first."""
        return self._loaded.keys()

    # -- predicting -------------------------------------------------------------------------------------------

    def predict(self, request: PredictRequest) -> PredictionAnswer | RangePredictionAnswer:
        """A signal for one bar, or the signal series of a range, from bars up to the date asked only.

        Raises:
            InvalidInputError: the timeframe is not the model's, or a date is outside the data or before the
                indicators' warm-up (the message gives the valid range).
            DataError: no data for the symbol.
        """
        _, version = self._loaded_version(request.model_name)
        symbol = normalize_symbol(request.symbol)
        timeframe = parse_timeframe(request.timeframe)
        base = version.config.timeframes[0]
        if timeframe != base:
            raise InvalidInputError(
                f"model {request.model_name!r} predicts on {base} bars (it was trained on "
                f"{'+'.join(version.config.timeframes)}); ask with timeframe {base!r}"
            )
        data_key, frames = self._frames_of(version, symbol)
        first = self._first_usable(version, data_key, frames)
        bars = frames[base]
        if request.test_date is not None:
            bar = resolve_bar(bars, base, request.test_date, first_usable=first)
            [single] = predict_bars(version, frames, bar, bar)
            return _answer(request.model_name, symbol, timeframe, single)
        assert request.start_date is not None and request.end_date is not None  # the request model checks
        end = resolve_bar(bars, base, request.end_date, first_usable=first)
        start = _first_bar_from(bars, request.start_date, first)
        if start > end:
            raise InvalidInputError(f"start_date {request.start_date} is after end_date {request.end_date}")
        series = predict_bars(version, frames, start, end)
        predictions = [item.prediction for item in series]
        counts = {signal: sum(1 for item in predictions if item.signal == signal) for signal in ("buy", "hold", "sell")}
        return RangePredictionAnswer(
            model_name=request.model_name,
            symbol=symbol,
            timeframe=timeframe,
            start_date=predictions[0].timestamp if predictions else start.to_pydatetime(),
            end_date=end.to_pydatetime(),
            count=len(predictions),
            predictions=predictions,
            signal_counts=counts,
        )

    def _frames_of(self, version: ModelVersion, symbol: str) -> tuple[tuple[Any, ...], dict[str, pd.DataFrame]]:
        """The symbol's bars in every timeframe of the model, cached while the files are unchanged."""
        stamps = tuple(
            (path.name, path.stat().st_mtime_ns) for path in sorted(self.data_dir.glob(f"{symbol}_*")) if path.is_file()
        )
        key = (symbol, tuple(version.config.timeframes), stamps)
        frames = self._frames.get(key)
        if frames is None:
            frames = load_frames(version.config, self.data_dir, symbol, whole_history=True)
            self._frames.put(key, frames)
        return key, frames

    def _first_usable(
        self, version: ModelVersion, data_key: tuple[Any, ...], frames: dict[str, pd.DataFrame]
    ) -> pd.Timestamp:
        """The first bar with complete features: it depends only on the model and the data, so it is cached."""
        key = (str(version.path), data_key)
        known = self._first.get(key)
        if known is None:
            known = first_usable_bar(version, frames)
            self._first.put(key, known)
        return known

    # -- deleting ---------------------------------------------------------------------------------------------

    def delete(self, name: str) -> ModelSummary:
        """Forget a named model; its files go too unless another name points at the same version."""
        record = self.store.delete(check_model_name(name))
        summary = self._summary(record)
        self._loaded.pop(name)
        if self.store.references(record.version_path) == 0:
            path = (self.models_dir / record.version_path).resolve()
            if self.models_dir.resolve() in path.parents:
                shutil.rmtree(path, ignore_errors=True)
        return summary


def _first_bar_from(bars: pd.DataFrame, moment: date | datetime, first: pd.Timestamp) -> pd.Timestamp:
    """The first base bar at or after ``moment`` (a date means that day's first bar).

    Raises:
        InvalidInputError: ``moment`` is before the first bar with complete features, or after the data.
    """
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    last = pd.Timestamp(bars.index[-1])
    valid = f"predictions are possible from {first.isoformat()} to {last.isoformat()}"
    earliest = first if isinstance(moment, datetime) else first.normalize()  # a date: any bar of that day
    if stamp < earliest:
        raise InvalidInputError(
            f"start_date {moment} is before the first bar with complete features (the indicators' warm-up); {valid}",
            details={"first": first.isoformat(), "last": last.isoformat()},
        )
    position = int(bars.index.searchsorted(stamp))
    if position >= len(bars.index):
        raise InvalidInputError(f"start_date {moment} is after the last bar of the data; {valid}")
    return max(pd.Timestamp(bars.index[position]), first)


def _answer(model_name: str, symbol: str, timeframe: str, single: BarPrediction) -> PredictionAnswer:
    return PredictionAnswer(
        model_name=model_name,
        symbol=symbol,
        timeframe=timeframe,
        test_date=single.prediction.timestamp,
        prediction=single.prediction,
        input_features=single.input_features,
        bar=single.bar,
    )


def _headline(version: ModelVersion) -> dict[str, Any]:
    """The figures the ``models`` table keeps for listing: read by name, so the keys are a stored contract."""
    training = version.metrics.training_metrics
    test = version.metrics.test_metrics
    return {
        "training_accuracy": _finite(training.final_train_accuracy),
        "validation_accuracy": _finite(training.final_val_accuracy),
        "test_accuracy": _finite(test.test_accuracy),
        "f1_score": _finite(test.f1_score),
        "best_epoch": training.best_epoch,
        "epochs_completed": training.epochs_completed,
        "architecture": version.metadata.get("architecture"),
    }


def _finite(value: float | None) -> float | None:
    """``value`` when finite, else ``None``: a diverged run's NaN is no score for a listing to show."""
    return value if value is not None and math.isfinite(value) else None


def _created_at(version: ModelVersion, operation: Operation) -> datetime:
    text = version.metadata.get("created_at")
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else operation.completed_at or utcnow()
    except ValueError:
        return operation.completed_at or utcnow()
