"""The TrainOps interface: one set of operations, two transports (in-process and HTTP).

Every method is documented here once. :class:`~trainops.client.local.LocalTrainOps` calls the service in the same
process; :class:`~trainops.client.http.HttpTrainOps` calls a trainops server. Both raise the same
:mod:`trainops.errors` exceptions, so callers never care which they hold.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import tarfile
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from pydantic import ValidationError

from trainops.client.run import Run, open_run
from trainops.core.diagnosis import OperationMetrics
from trainops.core.epoch import EpochRecord
from trainops.core.metric_definitions import TaskType
from trainops.core.operation import UNSET, Operation, OperationMetadata, OperationStatus, WriteAck
from trainops.core.policy import MonitorPolicy
from trainops.core.progress import ProgressState
from trainops.core.replay import Replay
from trainops.core.steps import StepRecord, StepSeries
from trainops.errors import ArtifactError, InvalidInputError
from trainops.schemas.artifacts import ArtifactInfo, artifact_location, check_artifact_path
from trainops.schemas.data import DataFile
from trainops.schemas.events import OperationEvent
from trainops.schemas.health import Health
from trainops.schemas.metrics import MetricDefinitions
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
    CreateOperationRequest,
    DeletedOperation,
    ExecutorJob,
    ListedOperationPage,
    OperationResults,
)
from trainops.schemas.strategies import StrategySummary, StrategyValidation
from trainops.schemas.training import TrainingPerformance, TrainingRequest, TrainingStarted, TrainingStatus
from trainops.service.export import EXPORT_FORMATS, ExportFormat


class TrainOps(ABC):
    """Operations, their progress and metric history, diagnosis and cancellation."""

    default_flush_interval: float | None = None
    """How a :meth:`run` sends epochs unless told: ``None`` stores each at once; seconds between batched sends."""

    @abstractmethod
    def health(self) -> Health:
        """Whether trainops is reachable, and what it runs on."""

    @abstractmethod
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
        """Register a pending operation that the caller will run and report into.

        Args:
            name: A short title to find the run by (1-128 characters, one line).
            tags: Labels to find it by (ASCII letters, digits and ``_ . : / = + @ -``; duplicates dropped).
            notes: Free text about it.
            operation_id: The id to give it (``op_{type}_YYYYmmdd_HHMMSS_{8 hex}``, as
                :func:`~trainops.core.operation.new_operation_id` makes one); made by trainops when left out. A
                caller that chooses the id may send the request again after a lost answer: the operation is
                registered once.
            started_at: When the run began, for a run registered after it began (it began while the server was
                away): the operation is registered running since then.

        Raises:
            InvalidInputError: a malformed type, id, name, tag or notes, or ``total_epochs`` < 1.
            ConflictError: ``operation_id`` is taken.
        """

    @abstractmethod
    def get_operation(self, operation_id: str) -> Operation:
        """One operation. Raises :class:`~trainops.errors.NotFoundError` for an unknown id."""

    @abstractmethod
    def get_job(self, operation_id: str) -> ExecutorJob | None:
        """The operation's job as the executor running it sees it, or ``None`` when no executor knows it.

        The job can say what the operation cannot yet: a Ray job ``PENDING`` until the cluster has the resources
        it asked for free (while the operation is just ``pending``), or one ``FAILED`` before its worker reported
        anything (Ray's reason in ``message``, and ``exit_code``). Over HTTP it is the ``job`` of
        ``GET /operations/{id}``, known when the server runs the operation on its executor (``TRAINOPS_EXECUTOR``);
        in-process there is no executor, so ``None``.

        Raises:
            NotFoundError: no such operation.

        Example:
            A training that asked for a GPU the Ray cluster has none of free:

            >>> job = ops.get_job(task_id)  # doctest: +SKIP
            >>> job.executor, job.status, "waiting for resources" in job.message  # doctest: +SKIP
            ('ray', 'PENDING', True)
        """

    @abstractmethod
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
        """Operations matching every filter given, newest first unless sorted otherwise, with total and active
        counts; ``limit`` at most 1000.

        Args:
            status: Only these statuses.
            operation_type: Only this type, e.g. ``training``.
            active_only: Only pending and running ones.
            name: The run's name, whole, ignoring case.
            tags: Runs having all of these tags.
            q: Text found (ignoring case) in the name, id, notes, strategy, task, symbol or a tag.
            strategy: ``metadata.strategy``, exactly; ``symbol`` and ``timeframe`` likewise.
            created_after: Created at or after this time (time-zone aware); ``created_before``: before it.
            sort: ``created`` (newest first), ``duration`` (longest first) or ``best:<metric>`` (each run's best
                value of the metric, best first as its definition says: lowest for a loss); runs without the
                value come last.
            order: ``asc`` or ``desc``, overriding the sort's direction.
            cursor: The ``next_cursor`` of the previous page (same filters and sort): the next page, stable while
                runs are added (``offset`` is not).
            include_best: Add each run's ``best`` value of its primary metric.

        Raises:
            InvalidInputError: a malformed filter, an unknown sort, a cursor of another list, or cursor with offset.

        Example:
            >>> page = ops.list_operations(tags=["baseline"], sort="best:val_loss", limit=10)  # doctest: +SKIP
            >>> while page.next_cursor:  # doctest: +SKIP
            ...     page = ops.list_operations(tags=["baseline"], sort="best:val_loss", cursor=page.next_cursor)
        """

    @abstractmethod
    def start_operation(self, operation_id: str, *, worker: str | None = None) -> Operation:
        """Mark a pending operation running."""

    @abstractmethod
    def report_progress(self, operation_id: str, state: ProgressState) -> WriteAck:
        """Record progress (throttled); the answer says whether a stop was requested."""

    @abstractmethod
    def add_epochs(self, operation_id: str, records: Sequence[EpochRecord]) -> WriteAck:
        """Store epoch records (re-sent epochs replace stored ones); the answer says whether to stop.

        Raises:
            ConflictError: the operation already ended.
        """

    def add_epoch(self, operation_id: str, record: EpochRecord) -> WriteAck:
        """Store one epoch record; see :meth:`add_epochs`."""
        return self.add_epochs(operation_id, [record])

    @abstractmethod
    def add_steps(self, operation_id: str, records: Sequence[StepRecord]) -> WriteAck:
        """Store points of the per-step (batch) series (a re-sent step replaces the stored one); the answer says
        whether to stop. A run keeps at most ``TRAINOPS_MAX_STEP_POINTS`` points (1,000 by default): past it the
        older ones are thinned to an even spacing over the whole run, and the latest step is always kept.
        :meth:`Run.step <trainops.client.run.Run.step>` sends them for a training loop.

        Raises:
            ConflictError: the operation already ended.
            InvalidInputError: more than 100,000 points in one call.
        """

    @abstractmethod
    def get_steps(self, operation_id: str, *, since_step: int | None = None, metric: str | None = None) -> StepSeries:
        """The per-step series, oldest first (the points after ``since_step``, all by default), with the cap
        (``max_points``) and whether the run outgrew it (``thinned``). With ``metric``, only the points that
        report it, each with that metric alone.

        Raises:
            NotFoundError: no such operation.
            InvalidInputError: a ``metric`` the run's steps never reported (the message lists those they did).

        Example:
            >>> series = ops.get_steps(operation_id, metric="loss")  # doctest: +SKIP
            >>> [(point.step, point.metrics["loss"]) for point in series.points][-2:]  # doctest: +SKIP
            [(4990, 0.112), (5000, 0.109)]
        """

    @abstractmethod
    def heartbeat(self, operation_id: str) -> WriteAck:
        """Say the job is alive and learn whether a stop was requested."""

    @abstractmethod
    def finish_operation(
        self,
        operation_id: str,
        status: OperationStatus | str = OperationStatus.COMPLETED,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> Operation:
        """End the operation as completed, failed (``error`` required) or cancelled."""

    @abstractmethod
    def cancel_operation(self, operation_id: str, reason: str, *, requested_by: str = "user") -> Operation:
        """Ask the operation to stop, saying why.

        Raises:
            ConflictError: it already ended.
            InvalidInputError: an empty reason.
        """

    @abstractmethod
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
        """Rename, tag or annotate an operation, or change its metadata, in any status; what is left out stays.

        Args:
            name: The new name; ``None`` clears it.
            tags: The new tags, replacing all; ``None`` or ``[]`` clears them.
            add_tags: Tags to add after the stored ones; ``remove_tags``: tags to take away (not with ``tags``).
            notes: The new notes; ``None`` clears them.
            metadata: Metadata fields to set, as :meth:`update_metadata` sets them.

        Raises:
            InvalidInputError: nothing to change, a malformed name, tag or notes, or metadata refused; nothing is
                changed.
            NotFoundError: no such operation.

        Example:
            >>> ops.update_operation(operation_id, name="lr sweep", add_tags=["baseline"]).tags  # doctest: +SKIP
            ['baseline']
        """

    @abstractmethod
    def update_metadata(self, operation_id: str, fields: Mapping[str, Any]) -> Operation:
        """Add or change fields of the operation's metadata, in any status (metadata describes the run: where it
        is mirrored, notes, its task). Each field replaces the stored value of its name, at the top level (a
        mapping such as ``parameters`` is replaced whole); a field given as ``None`` is removed. Fields trainops
        does not know are kept as they are and served under ``metadata``.

        Raises:
            InvalidInputError: no fields, ``executor`` or ``worker`` (trainops records who runs the operation
                itself), or a value the metadata refuses (an unknown ``task``); nothing is changed.
            NotFoundError: no such operation.

        Example:
            >>> ops.update_metadata(operation_id, {"mlflow_run_id": "6f1c2d"}).metadata.mlflow_run_id  # doctest: +SKIP
            '6f1c2d'
        """

    @abstractmethod
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
        """The epochs after ``since_epoch`` (all by default) and the diagnosis over the whole history.

        ``points`` (10-100,000) thins more epochs than that for a chart: at most ``points`` records, the first,
        the last, the best epoch and each metric's smallest and largest value per bucket kept, records whole.
        ``metrics.thinned`` says whether it happened and ``metrics.epochs_stored`` how many epochs are stored;
        the diagnosis is always over the whole stored history.

        ``from_epoch`` and ``to_epoch`` (inclusive, each optional) keep only the epochs between them, before any
        thinning: a chart zoomed into a stretch of a long run reads that stretch whole.

        Raises:
            NotFoundError: no such operation.
            InvalidInputError: ``points`` out of range, ``from_epoch`` after ``to_epoch``, or ``policy`` chose a
                ``monitor`` the run never reported.
        """

    def export_metrics(
        self,
        operation_id: str,
        *,
        format: ExportFormat = "csv",
        since_epoch: int | None = None,
        from_epoch: int | None = None,
        to_epoch: int | None = None,
    ) -> str:
        """The stored epoch history as a file's text: every epoch (after ``since_epoch``, between ``from_epoch``
        and ``to_epoch``, inclusive), never thinned.

        ``csv``: one row per epoch, oldest first; columns ``epoch, step, timestamp, duration, train_loss,
        val_loss, train_accuracy, val_accuracy, learning_rate``, then every custom metric, sorted; empty cells
        for values an epoch did not report; NaN and infinities as ``nan``, ``inf``, ``-inf`` (``pandas.read_csv``
        reads it back value for value). Over HTTP it is ``GET /operations/{id}/metrics?format=csv``.

        ``json``: the epochs and the diagnosis over the whole history, the document :meth:`get_metrics` answers
        (and ``trainops ops metrics --json`` prints).

        Raises:
            NotFoundError: no such operation.
            InvalidInputError: a format other than ``csv`` and ``json``.

        Example:
            >>> import io, pandas  # doctest: +SKIP
            >>> frame = pandas.read_csv(io.StringIO(ops.export_metrics(operation_id)))  # doctest: +SKIP
            >>> frame[["epoch", "val_loss"]].tail(1).to_dict("records")  # doctest: +SKIP
            [{'epoch': 29, 'val_loss': 0.412}]
        """
        if format == "json":
            metrics = self.get_metrics(operation_id, since_epoch=since_epoch, from_epoch=from_epoch, to_epoch=to_epoch)
            return metrics.model_dump_json(indent=2)
        if format == "csv":
            return self._metrics_csv(operation_id, since_epoch, from_epoch, to_epoch)
        raise InvalidInputError(
            f"unknown export format {format!r}: use one of {', '.join(EXPORT_FORMATS)}",
            details={"format": format, "formats": list(EXPORT_FORMATS)},
        )

    @abstractmethod
    def _metrics_csv(
        self, operation_id: str, since_epoch: int | None, from_epoch: int | None, to_epoch: int | None
    ) -> str:
        """The CSV of :meth:`export_metrics`."""

    @abstractmethod
    def delete_operation(self, operation_id: str) -> DeletedOperation:
        """Delete an ended run for good: its operation, epoch and step history, artifact files, worker log and the
        model version it wrote unless a named model uses it. Named models saved from it stay, keep
        ``source_operation`` and report ``source_deleted``. Over HTTP it is
        ``DELETE /operations/{id}?purge=true``.

        Returns:
            What was removed (``epochs``, ``steps``, ``artifacts``, ``artifact_bytes``, ``model_versions``,
            ``worker_log``) and the named models kept (``models_kept``).

        Raises:
            NotFoundError: no such operation (a second delete included).
            ConflictError: it is still pending or running; nothing is removed. Cancel it first
                (:meth:`cancel_operation`), then delete it once it ended.

        Example:
            >>> ops.delete_operation(operation_id).epochs  # doctest: +SKIP
            30
        """

    @abstractmethod
    def events(
        self, operation_id: str, *, last_event_id: str | None = None, points: int | None = None
    ) -> Iterator[OperationEvent]:
        """The operation's events as they happen, until it ends: ``epochs`` (new epochs, oldest first),
        ``progress``, ``recommendation`` (the diagnosis, when its recommendation changes), ``status``, and last,
        once it ended, ``diagnosis`` (the final one); then the iterator stops. The first events bring the caller
        up to date (the whole history, the current state), so an ended operation yields its history and final
        events at once.

        Over HTTP it reads ``GET /operations/{id}/events`` (server-sent events) and reconnects by itself after a
        dropped connection, resuming where it stopped; in-process it reads the store the same way. Both yield the
        same events for the same run. Closing the client ends an iterator another thread is waiting in.

        Args:
            operation_id: The operation to follow.
            last_event_id: The ``id`` of the last event already seen, to go on after it (nothing twice, nothing
                missed); from the beginning when ``None``.
            points: Thin an ``epochs`` event of more epochs than this (the catch-up of a long history, or of a long
                gap) for display, as :meth:`get_metrics` does; such an event says ``thinned``. Later events stay
                whole; the cursor is the same either way.

        Raises:
            NotFoundError: no such operation (before the first event).
            InvalidInputError: ``last_event_id`` is not an id of this operation's events, or ``points`` is out
                of range (10-100,000).

        Example:
            >>> for event in ops.events(operation_id):  # doctest: +SKIP
            ...     if event.event == "epochs":
            ...         print([record.epoch for record in event.epochs])
            ...     elif event.event == "diagnosis":
            ...         print(event.status, event.diagnosis.recommendation.action)
            [0, 1, 2]
            [3]
            completed stop_and_restore_best
        """

    @abstractmethod
    def diagnose(
        self,
        operation_id: str,
        policy: MonitorPolicy | dict[str, Any] | None = None,
        *,
        total_epochs_planned: int | None = None,
    ) -> Replay:
        """Replay a diagnosis policy over the operation's stored history: a dry run that changes nothing.

        It answers "had this policy been watching, when would it have stopped the run, and why?": the
        recommendation at every epoch, the first epoch it says stop (``stop_epoch``, ``stop_reason``), the
        epoch whose weights it would keep (``restore_epoch``) and the epochs that stop would have saved.

        Args:
            operation_id: The operation whose history to replay.
            policy: A :class:`MonitorPolicy`, or a mapping of its fields (those left out keep their defaults);
                the defaults when ``None``.
            total_epochs_planned: The run's planned length, for ``epochs_saved``; the operation's
                ``total_epochs`` when ``None``.

        Raises:
            NotFoundError: no such operation.
            InvalidInputError: a policy field that does not exist or a bad value (``patience`` 0), a
                ``total_epochs_planned`` below 1, or a history too long to replay.

        Example:
            >>> replay = ops.diagnose(operation_id, {"stop_rule": "patience", "patience": 3})  # doctest: +SKIP
            >>> replay.stop_epoch, replay.restore_epoch, replay.epochs_saved  # doctest: +SKIP
            (5, 2, 44)
        """

    @abstractmethod
    def get_results(self, operation_id: str) -> OperationResults:
        """A finished operation's results. Raises :class:`~trainops.errors.ConflictError` while it runs."""

    @abstractmethod
    def get_metric_definitions(self, task: TaskType | str | None = None) -> MetricDefinitions:
        """What each task's metrics mean: its primary metric (the diagnosis's default monitor for a run whose
        ``metadata.task`` names it) and every metric trainops knows for it, with label, format (percent, float,
        int), direction and tier. Metrics a run reports beyond these are custom (tier three); the metrics answer
        of a run carries the definitions of the metrics it reported (``metrics.definitions``).

        Args:
            task: Only this task's metrics (``"object_detection"``, a :class:`TaskType`); every task's when ``None``.

        Raises:
            InvalidInputError: an unknown task (the message lists the known ones).

        Example:
            >>> detection = ops.get_metric_definitions("object_detection").tasks["object_detection"]  # doctest: +SKIP
            >>> detection.primary_metric, detection.definitions["mAP50"].higher_is_better  # doctest: +SKIP
            ('mAP50', True)
        """

    # -- strategy training ----------------------------------------------------------------------------------

    @abstractmethod
    def start_training(self, request: TrainingRequest) -> TrainingStarted:
        """Start training a strategy; returns at once with the operation id (``task_id``).

        In-process the training runs in a worker process of this machine (it outlives the caller); on a server,
        in the server's executor. Follow it with :meth:`get_training_status`, :meth:`get_metrics` or
        ``trainops ops watch TASK_ID``.

        Raises:
            StrategyError: the strategy or the overrides are invalid (every problem with its path).
            NotFoundError: no such strategy.
            DataError: the market data it needs is missing.
        """

    @abstractmethod
    def get_training_status(self, task_id: str) -> TrainingStatus:
        """Where a training is: status, progress, current epoch, estimated completion, last epoch's metrics."""

    @abstractmethod
    def get_training_performance(self, task_id: str) -> TrainingPerformance:
        """A finished training's figures: training, test and model (a ``ConflictError`` while it runs)."""

    @abstractmethod
    def list_data(self) -> list[DataFile]:
        """The market data files available for training: symbol, timeframe, bars, first and last bar."""

    @abstractmethod
    def list_strategies(self) -> list[StrategySummary]:
        """The strategies in the strategies directory, each valid or with its problem."""

    @abstractmethod
    def validate_strategy(self, strategy: dict[str, Any] | str) -> StrategyValidation:
        """Check a strategy (a mapping, or YAML text) without training it."""

    @abstractmethod
    def download_data(self, symbol: str, timeframe: str, destination: str | os.PathLike[str]) -> Path:
        """Copy the market data file of ``symbol`` and ``timeframe`` into the local directory ``destination``
        (created if missing) under its name on the server (``EURUSD_1h.csv``, or ``.parquet``): a worker that
        trains away from the server's disk trains from there. A copy already there with the server's content is
        kept without a transfer (over HTTP the server answers 304 to its SHA-256), so the directory is a cache
        that revalidates; a changed file replaces it, checked against the server's SHA-256, whole or not at all,
        and a copy of the pair in the other format is removed.

        Returns:
            The local file.

        Raises:
            InvalidInputError: a symbol or timeframe that is not one (``../etc``), or ``destination`` is a file.
            NotFoundError: the server has no data for the pair (the message lists what it has).
            ArtifactError: the transfer was damaged (nothing is written).

        Example:
            >>> ops.download_data("EURUSD", "1h", "cache/data").name  # doctest: +SKIP
            'EURUSD_1h.csv'
        """

    # -- model registry -------------------------------------------------------------------------------------

    @abstractmethod
    def upload_model_version(self, task_id: str, version_dir: str | os.PathLike[str]) -> StoredModelVersion:
        """Send the model version a training wrote on this machine (the files of ``version_dir``, as
        :func:`~trainops.pipeline.artifacts.write_model_version` writes them) to the registry of the trainops it
        talks to, as the next version of its series; the answer's ``model_version`` is what the training's result
        names, so ``models save``, ``load`` and ``predict`` find it as they find one written there. A training
        stores one version: sending it again answers the stored one (``created`` false).

        Raises:
            InvalidInputError: ``version_dir`` is not a directory, or its files are not a readable version of
                this training.
            NotFoundError: no such operation.
            ConflictError: the training has not started, or it failed.
            PayloadTooLargeError: the version exceeds the server's limit (``TRAINOPS_MAX_ARTIFACT_BYTES``).
        """

    @abstractmethod
    def save_model(self, request: SaveModelRequest) -> SavedModel:
        """Name the model a finished training wrote (``ConflictError`` for a taken name or an unfinished task)."""

    def list_models(
        self,
        *,
        symbol: str | None = None,
        timeframe: str | None = None,
        strategy: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> list[ModelSummary]:
        """Named models, newest first, optionally filtered; the models of :meth:`list_models_page` (which gives the
        next page's cursor too)."""
        return self.list_models_page(
            symbol=symbol, timeframe=timeframe, strategy=strategy, limit=limit, cursor=cursor
        ).models

    @abstractmethod
    def list_models_page(
        self,
        *,
        symbol: str | None = None,
        timeframe: str | None = None,
        strategy: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ModelList:
        """Named models, newest first, optionally filtered: all of them, or with ``limit`` a page of at most that
        many and ``next_cursor`` (``None`` on the last page). Over HTTP it is ``GET /models?limit=&cursor=``.

        Args:
            limit: At most this many (1-1000); all when left out.
            cursor: The ``next_cursor`` of the previous page, with the same filters and ``limit``: pages never skip
                nor repeat a model while others are saved.

        Raises:
            InvalidInputError: a cursor without ``limit``, or one this list (these filters) did not hand out.

        Example:
            >>> page = ops.list_models_page(limit=20)  # doctest: +SKIP
            >>> while page.next_cursor:  # doctest: +SKIP
            ...     page = ops.list_models_page(limit=20, cursor=page.next_cursor)
        """

    @abstractmethod
    def get_model(self, model_name: str) -> ModelSummary:
        """One named model."""

    @abstractmethod
    def load_model(self, model_name: str) -> LoadedModel:
        """Load a model (checking every file) into the cache, and describe it."""

    @abstractmethod
    def predict(self, request: PredictRequest) -> PredictionAnswer | RangePredictionAnswer:
        """A signal for one bar (``test_date``) or a range, from bars up to that date only."""

    @abstractmethod
    def delete_model(self, model_name: str) -> ModelSummary:
        """Forget a named model and its files."""

    # -- artifacts ------------------------------------------------------------------------------------------

    @abstractmethod
    def upload_artifact(self, operation_id: str, artifact_path: str, source: str | os.PathLike[str]) -> ArtifactInfo:
        """Store the local file ``source`` as exactly ``artifact_path`` among the operation's artifacts (the
        primitive under :meth:`log_artifact`, which names the file after itself). A file stored there is replaced.
        A file still being written (``train.log`` while the training logs on) is stored as it is then, on both
        transports: what it gains later comes with the next upload.

        Raises:
            InvalidInputError: ``source`` is not a file, or ``artifact_path`` is not a plain relative path.
            NotFoundError: no such operation.
            PayloadTooLargeError: the file exceeds the limit (``TRAINOPS_MAX_ARTIFACT_BYTES``, default 512 MiB).
        """

    def log_artifact(
        self, operation_id: str, path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactInfo:
        """Store a local file among the operation's artifacts, named as ``mlflow.log_artifact`` names it:
        ``artifact_path`` is a directory among them and the file keeps its own name (``best.pt`` logged with
        ``artifact_path="checkpoints"`` is ``checkpoints/best.pt``; with ``None``, ``best.pt``). A file already
        stored there is replaced, so logging again is safe. An operation that has ended still accepts artifacts
        (a run's final files often come after its last epoch).

        Names are plain: ASCII letters, digits, ``.``, ``_`` and ``-`` between slashes; a file called
        ``loss curve.png`` is refused (rename it, or give the name with :meth:`upload_artifact`).

        Raises:
            InvalidInputError: ``path`` is not a file, or its name or ``artifact_path`` is not plain.
            NotFoundError: no such operation.
            PayloadTooLargeError: the file exceeds the limit (``TRAINOPS_MAX_ARTIFACT_BYTES``, default 512 MiB).

        Example:
            >>> ops.log_artifact(operation_id, "runs/best.pt", artifact_path="checkpoints").path  # doctest: +SKIP
            'checkpoints/best.pt'
        """
        source = local_file(path)
        return self.upload_artifact(operation_id, artifact_location(source.name, artifact_path), source)

    def log_artifacts(
        self, operation_id: str, dir_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        """Store every file below a local directory, keeping their paths relative to it, as
        ``mlflow.log_artifacts`` does: ``outputs/plots/loss.png`` logged from ``outputs`` with
        ``artifact_path="run"`` is ``run/plots/loss.png``. Every name is checked before the first upload, so a
        directory holding a name that cannot be stored stores nothing. An empty directory answers ``[]``.

        Raises:
            InvalidInputError: ``dir_path`` is not a directory, or a name below it (or ``artifact_path``) is not
                plain; the message names the file.
            NotFoundError: no such operation.
            PayloadTooLargeError: a file exceeds the limit (the files before it are stored).
        """
        return [
            self.upload_artifact(operation_id, name, source) for source, name in files_below(dir_path, artifact_path)
        ]

    @abstractmethod
    def list_artifacts(self, operation_id: str) -> list[ArtifactInfo]:
        """The operation's artifacts, by path, each with its size, SHA-256 and when it was stored.

        Raises:
            NotFoundError: no such operation.
        """

    @abstractmethod
    def download_artifact(self, operation_id: str, artifact_path: str, destination: str | os.PathLike[str]) -> Path:
        """Copy one artifact into the local directory ``destination`` (created if missing), keeping its path
        below it as ``mlflow.artifacts.download_artifacts`` does: ``checkpoints/best.pt`` lands in
        ``destination/checkpoints/best.pt``, replacing a file there. The copy is checked against the stored
        SHA-256 and appears whole or not at all.

        Returns:
            The local file written.

        Raises:
            InvalidInputError: ``artifact_path`` is not a plain relative path, ``destination`` is a file, or a
                local directory sits where the file goes (a file where one of its directories goes); the message
                names the path in the way.
            NotFoundError: no such operation, or no artifact at ``artifact_path``.
            ArtifactError: the copy does not match the stored SHA-256 (a damaged transfer; nothing is written).
        """

    def run(
        self,
        operation_type: str = "training",
        *,
        metadata: OperationMetadata | dict[str, Any] | None = None,
        total_epochs: int | None = None,
        flush_interval: float | Literal["default"] | None = "default",
        name: str | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
        flush_timeout: float = 60.0,
    ) -> Run:
        """Register an operation and return a :class:`Run` reporting into it (use it with ``with``).

        ``flush_interval`` (seconds) makes the run send epochs in the background in batches; ``None`` stores
        each epoch before ``run.log`` returns. The default is the transport's: batched over HTTP, so a
        training loop never waits on the network; immediate in-process, where a write takes well under 1 ms.
        ``flush_timeout`` is how long the run's end waits for what is still queued before keeping it on disk for
        ``trainops sync``. ``name``, ``tags`` and ``notes`` are what the run is found by later (``trainops ops
        list --tag baseline``).

        A batched run whose server cannot be reached now begins offline rather than failing (a warning says so):
        it registers the operation once the server answers, or ``trainops sync`` does (see
        :func:`~trainops.client.run.open_run`).

        Raises:
            InvalidInputError: a malformed type, name, tag or notes, or ``total_epochs`` < 1.

        Example:
            >>> with ops.run(name="resnet18 lr=3e-4", tags=["baseline"], total_epochs=10) as run:  # doctest: +SKIP
            ...     run.log(epoch=0, val_loss=0.9)
        """
        fields = {"operation_type": operation_type, "metadata": metadata or {}, "total_epochs": total_epochs}
        try:
            request = CreateOperationRequest.model_validate({**fields, "name": name, "tags": tags, "notes": notes})
        except ValidationError as error:
            raise invalid_input(error) from None
        if not 0 <= flush_timeout < math.inf:
            raise InvalidInputError(f"flush_timeout is seconds, 0 or more; got {flush_timeout!r}")
        interval = self.default_flush_interval if flush_interval == "default" else flush_interval
        return open_run(self, request, flush_interval=interval, flush_timeout=flush_timeout)

    def close(self) -> None:
        """Release connections. The object is unusable afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def policy_of(policy: MonitorPolicy | dict[str, Any] | None) -> MonitorPolicy | None:
    """A policy given as a :class:`MonitorPolicy` or a mapping of its fields, checked the same way on both
    transports.

    Raises:
        InvalidInputError: an unknown field or a bad value, each named with what is wrong.
    """
    if policy is None or isinstance(policy, MonitorPolicy):
        return policy
    try:
        return MonitorPolicy.model_validate(policy)
    except ValidationError as error:
        raise invalid_input(error, within="policy", details={"fields": sorted(MonitorPolicy.model_fields)}) from None


MAX_LISTED_PROBLEMS = 10


def invalid_input(
    error: ValidationError, *, within: str | None = None, details: dict[str, Any] | None = None
) -> InvalidInputError:
    """The trainops error for a model that refused its input: ``field: message`` for each problem, worded as the
    API words a refused request body, without pydantic's links to its documentation.

    Args:
        error: What pydantic refused.
        within: The field the model sits in (``policy`` makes ``patience`` read ``policy.patience``).
        details: Extra context; ``errors`` (each problem's ``loc``, ``msg`` and ``type``) is always added.

    >>> from trainops.core.policy import MonitorPolicy
    >>> try:
    ...     MonitorPolicy(patience=0)
    ... except ValidationError as refused:
    ...     print(invalid_input(refused, within="policy").message)
    policy.patience: Input should be greater than or equal to 1
    """
    parts = []
    problems = []
    for item in error.errors():
        location = [str(part) for part in ([within] if within else []) + list(item["loc"])]
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{'.'.join(location)}: {message}" if location else message)
        problems.append({"loc": location, "msg": message, "type": item["type"]})
    text = "; ".join(parts[:MAX_LISTED_PROBLEMS])
    if len(parts) > MAX_LISTED_PROBLEMS:
        text += f" (and {len(parts) - MAX_LISTED_PROBLEMS} more)"
    return InvalidInputError(text, details={**(details or {}), "errors": problems})


def local_file(path: str | os.PathLike[str]) -> Path:
    """``path`` when it names a readable regular file, else an :class:`InvalidInputError` saying what it is."""
    source = Path(path)
    if not source.is_file():
        what = "a directory (log it with log_artifacts)" if source.is_dir() else "not an existing file"
        raise InvalidInputError(f"cannot log {str(source)!r} as an artifact: it is {what}")
    return source


def files_below(dir_path: str | os.PathLike[str], artifact_path: str | None) -> list[tuple[Path, str]]:
    """Every file below ``dir_path`` with the artifact path it is stored as, by that path (symbolic links to
    directories are not followed); all are checked before anything is sent."""
    base = Path(dir_path)
    if not base.is_dir():
        raise InvalidInputError(f"cannot log {str(base)!r} as a directory of artifacts: it is not a directory")
    found = []
    for directory, _, files in os.walk(base):
        for name in files:
            source = Path(directory, name)
            relative = source.relative_to(base)
            try:
                found.append((source, artifact_location(relative.as_posix(), artifact_path)))
            except InvalidInputError as error:
                raise InvalidInputError(
                    f"cannot log {str(source)!r}: {error.message}; nothing was stored", details=error.details
                ) from None
    return sorted(found, key=lambda pair: pair[1])


def download_target(destination: str | os.PathLike[str], artifact_path: str) -> Path:
    """Where :meth:`TrainOps.download_artifact` writes ``artifact_path`` below ``destination``."""
    check_artifact_path(artifact_path)
    base = Path(destination)
    if base.exists() and not base.is_dir():
        raise InvalidInputError(f"cannot download into {str(base)!r}: it is a file; give a directory")
    return base.joinpath(*artifact_path.split("/"))


def write_verified(
    target: Path, chunks: Iterable[bytes], artifact_path: str, *, sha256: str | None, size: int | None
) -> Path:
    """Write ``chunks`` to ``target`` through a temporary file beside it, renamed into place only when the content
    has the stored ``sha256`` and ``size`` (each checked when known).

    Raises:
        ArtifactError: the content differs from what was stored (nothing is written).
        InvalidInputError: a local directory sits where the file goes, or a file where one of its directories
            goes; checked before ``chunks`` are read (the download is not wasted), and again at the rename.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise _in_the_way(target, artifact_path) from None
    if target.is_dir() and not target.is_symlink():  # a link is replaced, as the rename does
        raise _in_the_way(target, artifact_path)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        received_size = 0
        with os.fdopen(descriptor, "wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                received_size += len(chunk)
                out.write(chunk)
        received = digest.hexdigest()
        if (sha256 is not None and received != sha256) or (size is not None and received_size != size):
            raise ArtifactError(
                f"the copy of artifact {artifact_path!r} is damaged: {received_size:,} bytes with SHA-256 "
                f"{received[:12]}..., stored {size if size is not None else '?'} bytes with "
                f"{(sha256 or '?')[:12]}...; download it again",
                details={"path": artifact_path, "sha256": sha256, "size": size, "received_sha256": received},
            )
        try:
            os.replace(temporary, target)
        except (IsADirectoryError, NotADirectoryError, FileExistsError):  # made while the content came
            raise _in_the_way(target, artifact_path) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return target


def _in_the_way(target: Path, name: str) -> InvalidInputError:
    """The error for a local path that keeps ``name`` from being written to ``target``: ``target`` itself when it
    is a directory, else the first of its parents that is not one."""
    blocker, what = target, "a directory"
    if not target.is_dir():
        parents = reversed(target.parents)  # from the top: the one a mkdir failed on
        blocker = next((path for path in parents if path.exists() and not path.is_dir()), target.parent)
        what = "a file, where a directory must go"
    return InvalidInputError(
        f"cannot download {name!r} to {str(target)!r}: {str(blocker)!r} is {what}; move it away, or download "
        "into another directory",
        details={"path": name, "target": str(target), "in_the_way": str(blocker)},
    )


_DATA_FILE_NAME = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,31}_[0-9a-z]{2,3}\.(csv|parquet)")
"""A market data file's name (``EURUSD_1h.csv``), as a server may name a download: one plain name, never a path."""


def file_sha256(path: Path) -> str:
    """The SHA-256 of a local file, read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def data_directory(destination: str | os.PathLike[str]) -> Path:
    """``destination`` as a directory to download market data into (created if missing)."""
    base = Path(destination)
    if base.exists() and not base.is_dir():
        raise InvalidInputError(f"cannot download market data into {str(base)!r}: it is a file; give a directory")
    base.mkdir(parents=True, exist_ok=True)
    return base


def cached_data_files(base: Path, symbol: str, timeframe: str) -> list[Path]:
    """The copies of the pair that a download into ``base`` may keep (the name as given, upper-cased symbol)."""
    stem = f"{symbol.strip().upper()}_{timeframe.strip()}"
    if "/" in stem or "\\" in stem or stem.startswith("."):
        return []
    return [path for path in (base / f"{stem}.csv", base / f"{stem}.parquet") if path.is_file()]


def data_file_target(base: Path, name: str) -> Path:
    """Where a downloaded data file named ``name`` by the server goes in ``base``; a name that is not a data
    file's (a path, anything odd) is refused rather than written."""
    if not _DATA_FILE_NAME.fullmatch(name):
        raise ArtifactError(f"the server named the market data file {name!r}, which is not a data file's name")
    return base / name


def drop_other_formats(kept: Path) -> None:
    """Remove the pair's copy in the other format beside ``kept``: a directory holding both cannot be trained on."""
    other = kept.with_suffix(".parquet" if kept.suffix == ".csv" else ".csv")
    other.unlink(missing_ok=True)


@contextlib.contextmanager
def packed_version(version_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary tar archive of the regular files at the top level of ``version_dir`` (a model version), named
    as they are; removed when the block ends.

    Raises:
        InvalidInputError: ``version_dir`` is not a directory.
    """
    source = Path(version_dir)
    if not source.is_dir():
        raise InvalidInputError(f"cannot upload {str(source)!r} as a model version: it is not a directory")
    descriptor, name = tempfile.mkstemp(prefix="trainops-version-", suffix=".tar")
    os.close(descriptor)
    archive = Path(name)
    try:
        with tarfile.open(archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(source.iterdir()):
                if path.is_file() and not path.is_symlink():
                    tar.add(path, arcname=path.name, recursive=False)
        yield archive
    finally:
        archive.unlink(missing_ok=True)
