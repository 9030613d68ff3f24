"""Strategy training as operations: requests, strategy lookup, overrides, and the views clients read.

A training operation carries the whole strategy it trains (``metadata.parameters.config``, after overrides),
so whoever runs it (an in-process CLI, a worker process the server spawned, later a Ray task) needs nothing
but the operation id, and the record says exactly what was trained.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from trainops.core.epoch import EpochRecord
from trainops.core.operation import Operation, OperationMetadata
from trainops.errors import (
    ConfigurationError,
    ConflictError,
    DataError,
    InvalidInputError,
    NotFoundError,
    StrategyError,
    TrainOpsError,
)
from trainops.pipeline.data_files import available_data, data_names, one_file_each
from trainops.pipeline.strategy import (
    NAME_PATTERN,
    StrategyConfig,
    load_strategy,
    parse_strategy,
    strategy_from_yaml,
)
from trainops.pipeline.trainer import resolve_device
from trainops.schemas.data import DataFile
from trainops.schemas.strategies import StrategySummary, StrategyValidation
from trainops.schemas.training import (
    TRAINING,
    TRAINING_STATE,
    ConfigOverrides,
    Resources,
    TrainingPerformance,
    TrainingRequest,
    TrainingStarted,
    TrainingStatus,
)
from trainops.service.operations import OperationsService
from trainops.service.workers import check_local_resources

DEFAULT_STRATEGY = "mean_reversion"
"""The strategy ``POST /training/start`` trains when the request names none (only ``config`` overrides)."""

ESTIMATED_SAMPLES_PER_SECOND = 20_000.0
"""A deliberately modest CPU figure for the MLP trainer; the estimate is a hint, not a promise."""


# -- strategies -------------------------------------------------------------------------------------------------


def find_strategy(reference: str, strategies_dir: Path, *, allow_paths: bool = True) -> Path:
    """The file of a strategy given by name (``mean_reversion``) or, when ``allow_paths``, by path.

    Over the API only names are accepted (a path would let a client read any YAML on the server).

    Raises:
        NotFoundError: no such strategy; the message lists the available names.
        InvalidInputError: a path was given where only names are accepted.
    """
    try:
        # over the API no path is read, so "~" is not expanded: "~name" naming no user must not become a 500
        candidate = Path(reference).expanduser() if allow_paths else Path(reference)
    except RuntimeError:  # "~name" where no user of that name exists
        raise InvalidInputError(
            f"strategy {reference!r}: {reference.split('/', 1)[0]!r} names no user's home folder; give a strategy "
            "name or a path"
        ) from None
    looks_like_path = candidate.suffix in {".yaml", ".yml"} or "/" in reference or "\\" in reference
    if looks_like_path:
        inside = strategies_dir.resolve() in candidate.resolve().parents
        if not (allow_paths or inside):
            raise InvalidInputError(
                f"strategy {reference!r}: give a strategy name (or a path inside {strategies_dir}); the server "
                f"only reads its own strategies. Available: {', '.join(strategy_names(strategies_dir)) or 'none'}"
            )
        if candidate.is_file():
            return candidate
        raise NotFoundError(f"strategy file {reference!r} does not exist")
    if not re.match(NAME_PATTERN, reference):
        raise InvalidInputError(f"strategy name {reference!r} is invalid: letters, digits, '_', '.', '-' only")
    for suffix in (".yaml", ".yml"):
        path = strategies_dir / f"{reference}{suffix}"
        if path.is_file():
            return path
    names = strategy_names(strategies_dir)
    raise NotFoundError(
        f"no strategy named {reference!r} in {strategies_dir}; available: {', '.join(names) or 'none'} "
        "(set TRAINOPS_STRATEGIES_DIR to another directory)",
        details={"available": names},
    )


def strategy_names(strategies_dir: Path) -> list[str]:
    if not strategies_dir.is_dir():
        return []
    return sorted(
        {path.stem for path in strategies_dir.iterdir() if path.suffix in {".yaml", ".yml"} and path.is_file()}
    )


def summarize(config: StrategyConfig, path: str) -> StrategySummary:
    return StrategySummary(
        name=config.name,
        path=path,
        valid=True,
        description=config.description.strip(),
        version=config.version,
        symbols=config.symbols,
        timeframes=config.timeframes,
        indicators=[indicator.feature_id for indicator in config.indicators],
        architecture=list(config.model.architecture.hidden_layers),
        epochs=config.model.training.epochs,
    )


def list_strategies(strategies_dir: Path) -> list[StrategySummary]:
    """Every strategy file in ``strategies_dir``, valid or not (a broken one says why)."""
    summaries = []
    for name in strategy_names(strategies_dir):
        path = find_strategy(name, strategies_dir)
        try:
            summaries.append(summarize(load_strategy(path), str(path)))
        except StrategyError as error:
            summaries.append(StrategySummary(name=name, path=str(path), valid=False, error=error.message))
    return summaries


def validate_strategy_input(data: Any, source: str = "strategy") -> StrategyValidation:
    """Check a strategy (a parsed mapping, or YAML text) without training it."""
    try:
        config = strategy_from_yaml(data, source) if isinstance(data, str) else parse_strategy(data, source)
    except StrategyError as error:
        problems = error.details.get("problems") or [error.message]
        return StrategyValidation(valid=False, problems=list(problems), message=error.message)
    return StrategyValidation(
        valid=True, message=f"{config.name} is a valid strategy", strategy=summarize(config, source)
    )


def apply_overrides(
    config: StrategyConfig,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    epochs: int | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
    overrides: ConfigOverrides | None = None,
) -> StrategyConfig:
    """The strategy with a request's changes applied, validated again as a whole.

    ``symbol`` and ``timeframe`` narrow the strategy to that one symbol / timeframe; ``validation_split``
    takes its share from the training split and keeps the test split.
    """
    data = config.to_dict()
    training_data = data["training_data"]
    if symbol:
        training_data["symbols"] = {"mode": "single", "symbol": symbol}
    if timeframe:
        training_data["timeframes"] = {"mode": "single", "timeframe": timeframe}
    if start_date:
        training_data["start_date"] = start_date.isoformat()
    if end_date:
        training_data["end_date"] = end_date.isoformat()
    model, training = data["model"], data["model"]["training"]
    if epochs is not None:
        training["epochs"] = epochs
    if overrides is not None:
        if overrides.hidden_layers is not None:
            model["architecture"]["hidden_layers"] = overrides.hidden_layers
        if overrides.dropout_rate is not None:
            model["architecture"]["dropout"] = overrides.dropout_rate
        for name in ("epochs", "learning_rate", "batch_size", "optimizer"):
            value = getattr(overrides, name)
            if value is not None:
                training[name] = value
        if overrides.early_stopping is not None:
            early = training.get("early_stopping") or {}
            early.update(overrides.early_stopping.model_dump(exclude_none=True))
            training["early_stopping"] = early
        if overrides.validation_split is not None:
            split = data["training"]["data_split"]
            test = split["test"]
            if overrides.validation_split + test >= 1:
                raise StrategyError(
                    f"validation_split {overrides.validation_split} plus the strategy's test split {test} leaves "
                    "nothing to train on; choose a smaller validation_split"
                )
            split.update(validation=overrides.validation_split, train=round(1 - overrides.validation_split - test, 10))
    return parse_strategy(data, config.name)


def resolve_request(request: TrainingRequest, strategies_dir: Path, *, allow_paths: bool) -> StrategyConfig:
    """The strategy a request trains (``DEFAULT_STRATEGY`` when it names none), its overrides applied."""
    path = find_strategy(request.strategy or DEFAULT_STRATEGY, strategies_dir, allow_paths=allow_paths)
    return apply_overrides(
        load_strategy(path),
        symbol=request.symbol,
        timeframe=request.timeframe,
        start_date=request.start_date,
        end_date=request.end_date,
        overrides=request.config,
    )


def check_data(config: StrategyConfig, data_dir: Path) -> list[DataFile]:
    """Refuse up front a training whose base-timeframe files are missing (higher timeframes can be resampled), or
    whose dates lie outside one of them: the job would only fail once started.

    Returns:
        The base-timeframe files the training reads, described (their bars and dates), each read once.

    Raises:
        DataError: naming the missing files and what is available, or the file and the dates it holds.
    """
    base = config.timeframes[0]
    # only the files this training reads: a damaged file of another symbol is none of its business
    files = available_data(data_dir, {(symbol, base) for symbol in config.symbols})
    present = one_file_each(files, data_dir)
    missing = [f"{symbol}_{base}" for symbol in config.symbols if (symbol, base) not in present]
    if missing:
        names = [f"{symbol}_{timeframe}" for symbol, timeframe in data_names(data_dir)]
        available = ", ".join(names) or "none (run `trainops data sample`)"
        raise DataError(
            f"no market data for {', '.join(missing)} in {data_dir}; available: {available}",
            details={"missing": missing, "data_dir": str(data_dir)},
        )
    start, end = config.training_data.start_date, config.training_data.end_date
    for symbol in config.symbols:
        held = present[(symbol, base)]
        if held.problem is not None:
            raise DataError(held.problem, details={"file": held.name})
        if held.start is None or held.end is None:
            continue  # an empty file: the pipeline says so
        if (start is not None and start > held.end.date()) or (end is not None and end < held.start.date()):
            raise DataError(
                f"{held.name} has bars from {held.start:%Y-%m-%d} to {held.end:%Y-%m-%d}; the training asks for "
                f"{start or 'its start'} to {end or 'its end'}: choose dates inside that range",
                details={"file": held.name, "start": str(start), "end": str(end)},
            )
    return files


def check_models_dir(models_dir: Path) -> None:
    """Refuse up front a training whose model version would have nowhere to go: the training would run to its
    end, then fail writing it.

    Raises:
        ConfigurationError: ``models_dir`` (or the nearest folder above it that exists) is a file, or cannot be
            written.
    """
    existing = next((path for path in (models_dir, *models_dir.parents) if path.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        problem = "is a file" if existing == models_dir else f"cannot be created: {existing} is a file"
        raise ConfigurationError(
            f"the models directory {models_dir} (TRAINOPS_MODELS_DIR) {problem}: point TRAINOPS_MODELS_DIR at a "
            "directory, where trainings keep their model versions",
            details={"models_dir": str(models_dir)},
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"the models directory {models_dir} (TRAINOPS_MODELS_DIR) cannot be written by this process "
            f"({existing} is not writable): give it write access, or point TRAINOPS_MODELS_DIR elsewhere",
            details={"models_dir": str(models_dir)},
        )


def estimated_minutes(config: StrategyConfig, files: Sequence[DataFile]) -> float:
    """A rough duration: the bars the strategy trains on (``files``: its base-timeframe files, as
    :func:`check_data` answers them), times epochs, at a modest CPU speed."""
    samples = sum(item.bars for item in files) * config.training.data_split.train * config.model.training.epochs
    return round(0.05 + samples / ESTIMATED_SAMPLES_PER_SECOND / 60, 2)


def training_metadata(
    config: StrategyConfig,
    *,
    device: str | None,
    worker: str | None,
    executor: str = "local",
    resources: Resources | None = None,
) -> OperationMetadata:
    """The metadata a training operation is created with: what it trains, on what, and who runs it.

    A local run's device is resolved here (this machine trains it); a remote one's is left as asked until its
    worker records the device it found.
    """
    parameters: dict[str, Any] = {"resources": resources.model_dump(exclude_none=True)} if resources else {}
    return OperationMetadata(
        symbol=config.symbols[0] if len(config.symbols) == 1 else None,
        timeframe=config.timeframes[0] if len(config.timeframes) == 1 else None,
        strategy=config.name,
        parameters={
            "config": config.to_dict(),
            "symbols": config.symbols,
            "timeframes": config.timeframes,
            "device": device,
            **parameters,
        },
        executor=executor,
        worker=worker,
        device=str(resolve_device(device)) if executor == "local" else device,
    )


def strategy_of(operation: Operation) -> StrategyConfig:
    """The strategy a training operation trains, as recorded in it.

    Raises:
        InvalidInputError: the operation is not a strategy training (it has no recorded strategy).
    """
    config = operation.metadata.parameters.get("config")
    if operation.operation_type != TRAINING or not isinstance(config, dict):
        raise InvalidInputError(
            f"operation {operation.operation_id} is not a strategy training started by trainops; "
            "use /operations/{id} for operations that outside scripts report into"
        )
    return parse_strategy(config, operation.metadata.strategy or "strategy")


def create_training(
    service: OperationsService,
    config: StrategyConfig,
    *,
    device: str | None = None,
    worker: str | None = None,
    task_id: str | None = None,
    executor: str = "local",
    resources: Resources | None = None,
    name: str | None = None,
    tags: Sequence[str] | None = None,
    notes: str | None = None,
) -> Operation:
    """Register a pending training operation for ``config`` (someone must then run it), named, tagged and
    annotated as asked."""
    return service.create(
        TRAINING,
        metadata=training_metadata(config, device=device, worker=worker, executor=executor, resources=resources),
        total_epochs=config.model.training.epochs,
        operation_id=task_id,
        name=name,
        tags=tags,
        notes=notes,
    )


def started_answer(operation: Operation, config: StrategyConfig, files: Sequence[DataFile]) -> TrainingStarted:
    """The answer to starting a training: what will train, and roughly for how long."""
    symbols, timeframes = config.symbols, config.timeframes
    return TrainingStarted(
        task_id=operation.operation_id,
        message=(
            f"Training {config.name} on {', '.join(symbols)} [{', '.join(timeframes)}] for up to "
            f"{config.model.training.epochs} epochs; follow it with: trainops ops watch {operation.operation_id}"
        ),
        symbol=",".join(symbols),
        timeframe=",".join(timeframes),
        config=config.to_dict(),
        estimated_duration_minutes=estimated_minutes(config, files),
    )


# -- views ------------------------------------------------------------------------------------------------------


def training_status(operation: Operation, last_epoch: EpochRecord | None) -> TrainingStatus:
    """What ``GET /training/{task_id}`` shows of an operation and its last finished epoch."""
    progress = operation.progress
    current = progress.epoch if progress.epoch is not None else (last_epoch.epoch + 1 if last_epoch else None)
    return TrainingStatus(
        task_id=operation.operation_id,
        status=TRAINING_STATE[operation.status],
        progress=progress.percentage,
        phase=progress.phase,
        message=progress.message,
        current_epoch=current,
        total_epochs=operation.total_epochs,
        started_at=operation.started_at,
        estimated_completion=_estimated_completion(operation),
        current_metrics=last_epoch,
        error=operation.error,
        cancel_reason=operation.cancel_reason,
        symbol=operation.metadata.symbol,
        timeframe=operation.metadata.timeframe,
        strategy=operation.metadata.strategy,
    )


def _estimated_completion(operation: Operation) -> datetime | None:
    """Linear extrapolation of the progress bar; ``completed_at`` once it ended."""
    if operation.status.is_terminal:
        return operation.completed_at
    percentage = operation.progress.percentage
    if operation.started_at is None or percentage < 5.0:  # preprocessing says little about training time
        return None
    elapsed = datetime.now(UTC) - operation.started_at
    return operation.started_at + timedelta(seconds=elapsed.total_seconds() * 100.0 / percentage)


def training_performance(operation: Operation) -> TrainingPerformance:
    """What ``GET /training/{task_id}/performance`` shows: the figures of a finished training.

    Raises:
        ConflictError: the training has not finished, or ended without results (it failed before evaluating).
    """
    result = operation.result or {}
    if not operation.status.is_terminal:
        raise ConflictError(
            f"training {operation.operation_id} is still {TRAINING_STATE[operation.status]} "
            f"({operation.progress.percentage:.0f}%); its performance exists once it ends"
        )
    if "test_metrics" not in result:
        why = f": {operation.error}" if operation.error else ""
        raise ConflictError(f"training {operation.operation_id} ended {operation.status.value} without results{why}")
    try:
        return TrainingPerformance.of(operation.operation_id, TRAINING_STATE[operation.status], result)
    except ValueError as error:  # pydantic's ValidationError: the result is not one a strategy training writes
        raise ConflictError(
            f"the result of {operation.operation_id} is not a strategy training's, so it has no performance: {error}"
        ) from None


# -- the service ------------------------------------------------------------------------------------------------


class TrainingService:
    """Strategy training as operations: start, status, performance, strategies, validation, data listing.

    The training route, :class:`~trainops.client.local.LocalTrainOps`, ``trainops train`` and the worker all go
    through it, so a training starts, reads and validates the same way whoever asks.

    Args:
        operations: The operations service the trainings are recorded in.
        strategies_dir: Where strategies are found by name.
        data_dir: The market data files trainings read.
        models_dir: Where a finished training writes its model version.
    """

    def __init__(
        self, operations: OperationsService, *, strategies_dir: Path, data_dir: Path, models_dir: Path
    ) -> None:
        self.operations = operations
        self.strategies_dir = strategies_dir
        self.data_dir = data_dir
        self.models_dir = models_dir

    def start(
        self,
        request: TrainingRequest,
        launch: Callable[[Operation], None],
        *,
        allow_paths: bool,
        worker: str | None = None,
        executor: str = "local",
    ) -> TrainingStarted:
        """Check a request, register its pending operation and hand it to ``launch``, which runs it somewhere.

        Args:
            request: What to train.
            launch: Called with the new pending operation: an executor queues it, a client spawns a worker, the
                CLI starts a thread. If it raises, the operation is failed with the error before it propagates.
            allow_paths: Whether ``request.strategy`` may be a path (on this machine) besides a name; a server
                only reads its own strategies.
            worker: ``host:pid`` of the process that records the operation until a runner takes it over.
            executor: Who will run it (``local``, ``ray``), recorded as the operation's ``metadata.executor``.

        Raises:
            StrategyError: the strategy or the overrides are invalid (every problem with its path).
            NotFoundError: no such strategy.
            DataError: the market data it needs is missing.
            ConfigurationError: the models directory is a file, or cannot be written.
            InvalidInputError: a local training asks for more CPUs or GPUs than this machine has.
        """
        if executor == "local":  # this machine trains it: refuse resources it does not have, before anything else
            check_local_resources(request.resources)
        config = resolve_request(request, self.strategies_dir, allow_paths=allow_paths)
        files = check_data(config, self.data_dir)
        check_models_dir(self.models_dir)
        operation = create_training(
            self.operations,
            config,
            device=request.device,
            worker=worker,
            task_id=request.task_id,
            executor=executor,
            resources=request.resources,
            name=request.name,
            tags=request.tags,
            notes=request.notes,
        )
        try:
            launch(operation)
        except BaseException as error:
            if not self.operations.get(operation.operation_id).status.is_terminal:
                message = error.message if isinstance(error, TrainOpsError) else f"{type(error).__name__}: {error}"
                self.operations.fail(operation.operation_id, message)
            raise
        return started_answer(operation, config, files)

    def status(self, task_id: str) -> TrainingStatus:
        """Where a training is: status, progress, current epoch, estimated completion, last epoch's metrics.

        Raises:
            NotFoundError: no such operation.
            InvalidInputError: the operation is not a strategy training.
        """
        operation = self.operations.get(task_id)
        strategy_of(operation)  # a clear error for operations that are not strategy trainings
        history = self.operations.metrics(task_id).metrics.epochs
        return training_status(operation, history[-1] if history else None)

    def performance(self, task_id: str) -> TrainingPerformance:
        """A finished training's figures (a ``ConflictError`` while it runs)."""
        return training_performance(self.operations.get(task_id))

    def strategy(self, operation: Operation) -> StrategyConfig:
        """The strategy a training operation trains, as recorded in it."""
        return strategy_of(operation)

    def strategies(self) -> list[StrategySummary]:
        """Every strategy in the strategies directory, valid or with its problem."""
        return list_strategies(self.strategies_dir)

    def validate(self, strategy: dict[str, Any] | str, source: str = "strategy") -> StrategyValidation:
        """Check a strategy (a mapping, or YAML text) without training it."""
        return validate_strategy_input(strategy, source)

    def validate_named(self, name: str, *, allow_paths: bool) -> StrategyValidation:
        """Check a strategy found by name (or path, when ``allow_paths``) without training it."""
        path = find_strategy(name, self.strategies_dir, allow_paths=allow_paths)
        return validate_strategy_input(load_strategy(path).to_dict(), path.name)

    def data(self) -> list[DataFile]:
        """The market data files trainings can read: symbol, timeframe, bars, first and last bar."""
        return available_data(self.data_dir)
