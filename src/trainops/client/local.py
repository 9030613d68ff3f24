"""TrainOps in-process: straight calls on the service over the local database."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from trainops.client.base import (
    TrainOps,
    data_directory,
    download_target,
    drop_other_formats,
    file_sha256,
    invalid_input,
    local_file,
    packed_version,
    policy_of,
    write_verified,
)
from trainops.core.diagnosis import OperationMetrics
from trainops.core.epoch import EpochRecord
from trainops.core.metric_definitions import TaskType
from trainops.core.operation import UNSET, Operation, OperationMetadata, OperationStatus, WriteAck
from trainops.core.policy import MonitorPolicy
from trainops.core.progress import ProgressState
from trainops.core.replay import Replay
from trainops.core.steps import StepRecord, StepSeries
from trainops.errors import ConfigurationError, ConflictError, InvalidInputError, NotFoundError, ServiceUnavailableError
from trainops.schemas.artifacts import ArtifactInfo, check_artifact_path
from trainops.schemas.data import DataFile
from trainops.schemas.events import OperationEvent
from trainops.schemas.health import Health
from trainops.schemas.metrics import MetricDefinitions, metric_definitions
from trainops.schemas.models import (
    LoadedModel,
    ModelList,
    ModelSummary,
    PredictionAnswer,
    PredictRequest,
    RangePredictionAnswer,
    SavedModel,
    SaveModelRequest,
    StoredModelVersion,
)
from trainops.schemas.operations import (
    MAX_LIST_LIMIT,
    DeletedOperation,
    ExecutorJob,
    ListedOperation,
    ListedOperationPage,
    OperationResults,
)
from trainops.schemas.strategies import StrategySummary, StrategyValidation
from trainops.schemas.training import TrainingPerformance, TrainingRequest, TrainingStarted, TrainingStatus
from trainops.service.artifacts import ArtifactService, open_artifacts
from trainops.service.bootstrap import check_health, open_registry, open_training
from trainops.service.deletion import delete_operation as purge_operation
from trainops.service.events import Cursor, read_events
from trainops.service.export import epochs_csv
from trainops.service.operations import OperationsService, check_epoch_range, check_points, epochs_in_range
from trainops.service.workers import (
    TAKEOVER_SECONDS,
    end_lost,
    local_workers_lost,
    spawn_worker,
    this_worker,
    worker_log_path,
)
from trainops.settings import Settings, get_settings

if TYPE_CHECKING:  # the train extra's services, opened on first use (the client must import without them)
    from trainops.service.registry import ModelRegistry
    from trainops.service.training import TrainingService

WORKER_START_TIMEOUT = TAKEOVER_SECONDS
"""Seconds a new worker process gets to import torch and take its operation over."""
LOST_CHECK_SECONDS = 5.0
"""How often a local events stream checks that the process of the run it follows is still alive."""
_CHUNK_BYTES = 1024 * 1024


class LocalTrainOps(TrainOps):
    """The :class:`TrainOps` interface on an :class:`OperationsService` in this process."""

    def __init__(self, service: OperationsService, *, settings: Settings | None = None) -> None:
        if not isinstance(service, OperationsService):
            raise TypeError(
                f"LocalTrainOps takes an OperationsService, not {type(service).__name__}; for a database of your "
                "own, `trainops.connect(settings=Settings(database_url='sqlite:///path/to/trainops.db'))`"
            )
        self._service = service
        self.settings = settings or get_settings()
        self._closed = threading.Event()

    @property
    def service(self) -> OperationsService:
        """The service this client calls; refused once the client is closed, as :class:`HttpTrainOps` is."""
        if self._closed.is_set():
            database = self._service.store.engine.url.render_as_string(hide_password=True)
            raise ConfigurationError(
                f"this client of {database} was closed (its `with` block ended, or close() was called); keep it "
                "open as long as anything reports through it, or connect again"
            )
        return self._service

    def health(self) -> Health:
        return check_health(self.service)

    def create_operation(
        self,
        operation_type: str = "training",
        *,
        metadata: OperationMetadata | dict[str, Any] | None = None,
        total_epochs: int | None = None,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
        operation_id: str | None = None,
        started_at: datetime | None = None,
    ) -> Operation:
        return self.service.create(
            operation_type,
            metadata=_metadata(metadata),
            total_epochs=total_epochs,
            name=name,
            tags=tags,
            notes=notes,
            operation_id=operation_id,
            started_at=started_at,
        )

    def get_operation(self, operation_id: str) -> Operation:
        return self._noticed(self.service.get(operation_id))

    def _noticed(self, operation: Operation) -> Operation:
        """``operation``, ended first if it is an active local training whose process on this host is gone (killed,
        out of memory): a server's reaper notices that within seconds, but with no server running nobody would, and
        ``trainops ops watch`` would follow a dead run for ever. The same rule as the reaper's
        (:func:`~trainops.service.workers.local_workers_lost`)."""
        if not operation.is_active or operation.metadata.executor != "local":
            return operation
        lost = local_workers_lost([operation])
        if not lost:
            return operation
        with contextlib.suppress(ConflictError, NotFoundError):  # it ended (or vanished) meanwhile
            end_lost(self.service, operation.operation_id, lost[operation.operation_id])
        return self.service.get(operation.operation_id)

    def get_job(self, operation_id: str) -> ExecutorJob | None:
        self.service.get(operation_id)  # an unknown id fails here as it does over HTTP
        return None  # no executor in this process: trainings started here run in workers it does not queue

    def list_operations(
        self,
        *,
        status: OperationStatus | Iterable[OperationStatus] | None = None,
        operation_type: str | None = None,
        active_only: bool = False,
        limit: int = 100,
        offset: int = 0,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        q: str | None = None,
        strategy: str | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        sort: str = "created",
        order: Literal["asc", "desc"] | None = None,
        cursor: str | None = None,
        include_best: bool = False,
    ) -> ListedOperationPage:
        listing = partial(
            self.service.list_operations,
            status=status,
            operation_type=operation_type,
            active_only=active_only,
            limit=limit,
            offset=offset,
            name=name,
            tags=tags,
            q=q,
            strategy=strategy,
            symbol=symbol,
            timeframe=timeframe,
            created_after=created_after,
            created_before=created_before,
            sort=sort,
            order=order,
            cursor=cursor,
        )
        page = listing()
        if [item for item in page.items if self._noticed(item) is not item]:  # each one checked
            page = listing()  # a run listed as active had lost its process, and has just been ended
        best = self.service.best_values(page.items) if include_best else {}
        listed = [ListedOperation(**item.model_dump(), best=best.get(item.operation_id)) for item in page.items]
        return ListedOperationPage(
            items=listed,
            total=page.total,
            active=page.active,
            limit=page.limit,
            offset=page.offset,
            next_cursor=page.next_cursor,
        )

    def start_operation(self, operation_id: str, *, worker: str | None = None) -> Operation:
        return self.service.start(operation_id, worker=worker)

    def report_progress(self, operation_id: str, state: ProgressState) -> WriteAck:
        return self.service.report_progress(operation_id, state)

    def add_epochs(self, operation_id: str, records: Sequence[EpochRecord]) -> WriteAck:
        return self.service.add_epochs(operation_id, records)

    def add_steps(self, operation_id: str, records: Sequence[StepRecord]) -> WriteAck:
        return self.service.add_steps(operation_id, records)

    def get_steps(self, operation_id: str, *, since_step: int | None = None, metric: str | None = None) -> StepSeries:
        return self.service.steps(operation_id, since_step=since_step, metric=metric)

    def heartbeat(self, operation_id: str) -> WriteAck:
        return self.service.heartbeat(operation_id)

    def finish_operation(
        self,
        operation_id: str,
        status: OperationStatus | str = OperationStatus.COMPLETED,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> Operation:
        return self.service.finish(operation_id, _status(status), result=result, error=error)

    def cancel_operation(self, operation_id: str, reason: str, *, requested_by: str = "user") -> Operation:
        return self.service.cancel(operation_id, reason, requested_by=requested_by)

    def update_operation(
        self,
        operation_id: str,
        *,
        name: str | None = UNSET,
        tags: Sequence[str] | None = UNSET,
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        notes: str | None = UNSET,
        metadata: Mapping[str, Any] | None = None,
    ) -> Operation:
        return self.service.update_operation(
            operation_id,
            name=name,
            tags=tags,
            add_tags=add_tags,
            remove_tags=remove_tags,
            notes=notes,
            metadata=metadata,
        )

    def update_metadata(self, operation_id: str, fields: Mapping[str, Any]) -> Operation:
        return self.service.update_metadata(operation_id, fields)

    def get_metrics(
        self,
        operation_id: str,
        *,
        since_epoch: int | None = None,
        policy: MonitorPolicy | None = None,
        points: int | None = None,
        from_epoch: int | None = None,
        to_epoch: int | None = None,
    ) -> OperationMetrics:
        return self.service.metrics(
            operation_id,
            since_epoch=since_epoch,
            policy=policy,
            points=points,
            from_epoch=from_epoch,
            to_epoch=to_epoch,
        )

    def _metrics_csv(
        self, operation_id: str, since_epoch: int | None, from_epoch: int | None, to_epoch: int | None
    ) -> str:
        check_epoch_range(from_epoch, to_epoch)
        epochs = self.service.history(operation_id).epochs
        return "".join(epochs_csv(epochs_in_range(epochs, from_epoch, to_epoch, since_epoch=since_epoch)))

    def delete_operation(self, operation_id: str) -> DeletedOperation:
        return purge_operation(operation_id, operations=self.service, artifacts=self.artifacts, settings=self.settings)

    def events(
        self, operation_id: str, *, last_event_id: str | None = None, points: int | None = None
    ) -> Iterator[OperationEvent]:
        cursor = Cursor.decode(last_event_id)
        check_points(points)
        batch = read_events(self.service, operation_id, cursor, points=points)
        while True:
            yield from batch.events
            if batch.ended:
                return
            cursor = batch.cursor
            # the server's loop, without a server: a cheap version read until something changed
            checked = time.monotonic()
            while self.service.version(operation_id).version == cursor.version:
                time.sleep(self.settings.events_poll_interval)  # TRAINOPS_EVENTS_POLL_INTERVAL
                if self._closed.is_set():  # a reader on another thread outlived its client: let it go
                    return
                if time.monotonic() - checked >= LOST_CHECK_SECONDS:  # and its reaper: a dead run ends the stream
                    checked = time.monotonic()
                    self.get_operation(operation_id)
            batch = read_events(self.service, operation_id, cursor, points=points)

    def diagnose(
        self,
        operation_id: str,
        policy: MonitorPolicy | dict[str, Any] | None = None,
        *,
        total_epochs_planned: int | None = None,
    ) -> Replay:
        return self.service.diagnose(operation_id, policy_of(policy), total_epochs_planned=total_epochs_planned)

    def get_results(self, operation_id: str) -> OperationResults:
        return self.service.results(operation_id)

    def get_metric_definitions(self, task: TaskType | str | None = None) -> MetricDefinitions:
        return metric_definitions(task)

    def close(self) -> None:
        self._closed.set()
        self._service.store.engine.dispose()

    # -- strategy training ----------------------------------------------------------------------------------

    @functools.cached_property
    def training(self) -> TrainingService:
        """The strategy training service (needs the ``train`` extra: a clear error names it when missing)."""
        return open_training(self.settings, self.service)

    def start_training(self, request: TrainingRequest) -> TrainingStarted:
        return self.training.start(request, self._spawn_worker, allow_paths=True, worker=this_worker())

    def _spawn_worker(self, operation: Operation) -> None:
        """Run the training in a worker process of this machine (it outlives the caller), and wait until the
        worker has taken the operation over: until then this process is its recorded worker, and returning
        earlier would leave a pending operation that nobody runs if the worker failed to start."""
        process = spawn_worker(operation.operation_id, self.settings)
        # collected when it exits, so a worker that dies (killed, out of memory) is not left a zombie of this
        # process, which would count as alive and keep its run "running" while this process lives
        threading.Thread(target=process.wait, name=f"trainops-worker-{process.pid}", daemon=True).start()
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while self.service.get(operation.operation_id).status is OperationStatus.PENDING:
            code = process.poll()
            if code is not None or time.monotonic() > deadline:
                log = worker_log_path(self.settings, operation.operation_id)
                reason = f"exited with code {code}" if code is not None else "did not start in time"
                raise ServiceUnavailableError(
                    f"training {operation.operation_id} could not start: the worker process {reason}; its log is {log}"
                )
            time.sleep(0.05)

    def get_training_status(self, task_id: str) -> TrainingStatus:
        return self.training.status(task_id)

    def get_training_performance(self, task_id: str) -> TrainingPerformance:
        return self.training.performance(task_id)

    def list_data(self) -> list[DataFile]:
        return self.training.data()

    def list_strategies(self) -> list[StrategySummary]:
        return self.training.strategies()

    def validate_strategy(self, strategy: dict[str, Any] | str) -> StrategyValidation:
        return self.training.validate(strategy)

    def download_data(self, symbol: str, timeframe: str, destination: str | os.PathLike[str]) -> Path:
        base = data_directory(destination)
        stored = self.registry.data_file(symbol, timeframe)
        name = f"{stored.symbol}_{stored.timeframe}.{stored.format}"
        target = base / name
        if not (target.is_file() and file_sha256(target) == stored.sha256):
            with stored.path.open("rb") as handle:
                chunks = iter(partial(handle.read, _CHUNK_BYTES), b"")
                write_verified(target, chunks, name, sha256=stored.sha256, size=stored.size)
        drop_other_formats(target)
        return target

    # -- model registry -------------------------------------------------------------------------------------

    def upload_model_version(self, task_id: str, version_dir: str | os.PathLike[str]) -> StoredModelVersion:
        with packed_version(version_dir) as archive:
            return self.registry.receive_version(task_id, archive)

    @functools.cached_property
    def registry(self) -> ModelRegistry:
        """The model registry (needs the ``train`` extra: a clear error names it when missing)."""
        return open_registry(self.settings, self.service)

    def save_model(self, request: SaveModelRequest) -> SavedModel:
        return self.registry.save(request)

    def list_models_page(
        self,
        *,
        symbol: str | None = None,
        timeframe: str | None = None,
        strategy: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ModelList:
        if limit is not None and not 1 <= limit <= MAX_LIST_LIMIT:  # as GET /models checks it
            raise InvalidInputError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
        return self.registry.list_page(
            symbol=symbol, timeframe=timeframe, strategy=strategy, limit=limit, cursor=cursor
        )

    def get_model(self, model_name: str) -> ModelSummary:
        return self.registry.get(model_name)

    def load_model(self, model_name: str) -> LoadedModel:
        return self.registry.load(model_name)

    def predict(self, request: PredictRequest) -> PredictionAnswer | RangePredictionAnswer:
        return self.registry.predict(request)

    def delete_model(self, model_name: str) -> ModelSummary:
        return self.registry.delete(model_name)

    # -- artifacts ------------------------------------------------------------------------------------------

    @functools.cached_property
    def artifacts(self) -> ArtifactService:
        """The artifact store under the settings' artifacts directory (``TRAINOPS_ARTIFACTS_DIR``)."""
        return open_artifacts(self.settings, self.service)

    def upload_artifact(self, operation_id: str, artifact_path: str, source: str | os.PathLike[str]) -> ArtifactInfo:
        return self.artifacts.put_file(operation_id, check_artifact_path(artifact_path), local_file(source))

    def list_artifacts(self, operation_id: str) -> list[ArtifactInfo]:
        return self.artifacts.list(operation_id)

    def download_artifact(self, operation_id: str, artifact_path: str, destination: str | os.PathLike[str]) -> Path:
        target = download_target(destination, artifact_path)
        info, handle = self.artifacts.open(operation_id, artifact_path)
        with handle:
            chunks = iter(partial(handle.read, _CHUNK_BYTES), b"")
            return write_verified(target, chunks, artifact_path, sha256=info.sha256, size=info.size)


def _metadata(metadata: OperationMetadata | dict[str, Any] | None) -> OperationMetadata | None:
    """Metadata checked as the HTTP client checks it: a bad value (an unknown task) is an
    :class:`InvalidInputError` naming ``metadata.<field>``."""
    if metadata is None or isinstance(metadata, OperationMetadata):
        return metadata
    try:
        return OperationMetadata.model_validate(metadata)
    except ValidationError as error:
        raise invalid_input(error, within="metadata") from None


def _status(status: OperationStatus | str) -> OperationStatus:
    try:
        return OperationStatus(status)
    except ValueError:
        raise InvalidInputError(
            f"unknown status {status!r}: use one of {', '.join(s.value for s in OperationStatus)}"
        ) from None
