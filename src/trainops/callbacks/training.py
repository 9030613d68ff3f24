"""TrainingCallbacks: the one interface every framework's training loop reports through.

A framework integration (Lightning, Hugging Face, Keras, Ultralytics, timm) or a hand-written loop calls seven
methods at the points every loop has; TrainingCallbacks turns them into a trainops operation with its per-epoch
history (and a per-step series), mirrors them to the sinks asked for (console, MLflow), and answers
:meth:`~TrainingCallbacks.should_stop` when a person, an agent or the diagnosis asked the run to stop.

Tracking never breaks training: whatever fails (trainops unreachable at the start, a sink down, a value that is
not a number) is logged once as a warning and the training goes on. See :mod:`trainops.callbacks` for an example.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from pydantic import ValidationError

from trainops.callbacks.sinks import ConsoleSink, GuardedSink, RunInfo, Sink
from trainops.callbacks.system import SystemMonitor
from trainops.client.base import TrainOps, invalid_input
from trainops.client.run import Run, ending_message, exited_cleanly, open_run
from trainops.core.cancellation import CancelRequest
from trainops.core.diagnosis import Action
from trainops.core.epoch import FIELD_METRICS, RESERVED_NAMES, EpochRecord
from trainops.core.metric_definitions import parse_task
from trainops.core.metric_names import INDEX_NAMES, normalize_metrics
from trainops.core.numbers import detached, parse_metric
from trainops.core.operation import OperationMetadata, OperationStatus
from trainops.core.policy import MonitorPolicy
from trainops.core.redaction import redacted
from trainops.errors import InvalidInputError, OperationCancelledError, ServiceUnavailableError
from trainops.schemas.operations import CreateOperationRequest

logger = logging.getLogger("trainops.callbacks")

StopRequest = CancelRequest
"""Who asked a run to stop, why, and when (``reason``, ``requested_by``, ``requested_at``)."""

REPORT_INTERVAL = 0.5
"""Seconds between background sends when the transport has none of its own (in-process): the training thread
only queues epochs and steps, so a hook costs microseconds whatever the database is doing."""

DIAGNOSIS = "diagnosis"
"""``requested_by`` of a stop that the diagnosis asked for (``stop_on_recommendation``)."""

CONSULT_WAIT = 5.0
"""Seconds the training thread waits at most for an epoch to be stored before asking the diagnosis about it
(``stop_on_recommendation``); a server slower than that (or hung) is asked again once it has answered anything."""


def process_rank() -> int:
    """This process's rank in a multi-process run: ``RANK`` (global), else ``LOCAL_RANK``, else 0.

    torchrun, Lightning, Accelerate and DeepSpeed set them; a single process has neither.
    """
    for variable in ("RANK", "LOCAL_RANK"):
        value = os.environ.get(variable, "").strip()
        if value.lstrip("-").isdigit():
            return int(value)
    return 0


class TrainingCallbacks:
    """Reports a training to trainops, and optionally to MLflow and the console, from any framework's loop.

    Call :meth:`on_train_begin` once, then :meth:`on_epoch_begin` / :meth:`on_batch_end` / :meth:`on_epoch_end`
    as the loop runs, and :meth:`on_train_end` once (or use the object as a context manager, which calls it
    exactly once whatever happens). Ask :meth:`should_stop` between batches or epochs and stop the loop when it
    answers a request.

    Args:
        ops: Where to report; ``trainops.connect()`` (``TRAINOPS_URL``, else the local database) by default.
        operation_id: Report into this existing operation instead of creating one.
        task: What the model does (``image_classification``, ``object_detection``, ...): recorded on the
            operation; its primary metric becomes the diagnosis's default monitor. One trainops does not know is
            a ``ValueError`` here, before training starts (it would leave the run untracked).
        config: The run's hyperparameters, recorded on the operation (and logged to MLflow).
        total_epochs: The planned number of epochs (progress, and the diagnosis's horizon).
        mlflow: Mirror to MLflow: ``True`` for the default tracking URI, a tracking URI, or a configured sink.
            Needs ``trainops[mlflow]``.
        console: Print one line per epoch on stderr.
        metadata: More operation metadata (``{"strategy": "resnet18-cifar"}``); ``task`` and ``config`` win.
        operation_type: The type of a new operation.
        rank: This process's rank; only rank 0 reports. Read from ``RANK``/``LOCAL_RANK`` when ``None``.
        stop_on_recommendation: Let the diagnosis stop the run: ``True`` with the default policy, or a
            :class:`MonitorPolicy`. After each epoch the recommendation is read; a ``stop`` or
            ``stop_and_restore_best`` is recorded as a cancel by ``diagnosis`` and :meth:`should_stop` answers it.
        system_metrics: Add the process's and the machine's CPU and memory to every epoch (``cpu_percent``,
            ``memory_rss_mb``, ...), and each GPU's utilisation and memory when NVML sees one. Needs
            ``trainops[system]`` (psutil); without it a warning says so and training goes on.
        log_every_n_steps: Record every n-th batch's metrics in the per-step series (Lightning's
            ``log_every_n_steps``); the others only move the progress bar. The series is downsampled by the server
            anyway (``TRAINOPS_MAX_STEP_POINTS``); a larger n saves converting GPU tensors on every batch.
        sinks: More sinks to mirror to.
        flush_interval: Seconds between background sends of epochs and steps (``"default"``: the transport's, or
            :data:`REPORT_INTERVAL` in-process; ``None``: each is stored before its hook returns).
        flush_timeout: Seconds the end of training waits for queued epochs before giving up on them.
        name: The run's name, what people find it by (``"resnet18 lr=3e-4"``).
        tags: Labels to filter runs by (``trainops ops list --tag baseline``).
        notes: Free text about the run.

    Attributes:
        operation_id: The operation reported into, once :meth:`on_train_begin` ran (``None`` before, on other
            ranks, or when trainops could not be reached).
        aliases: ``{canonical name: the framework's name}`` of every metric reported under another name.
        best_epoch: The best epoch by the diagnosis once training ended (``None`` before, or when unknown); read
            from trainops when first asked, so a training that never asks does not wait for it.
    """

    def __init__(
        self,
        ops: TrainOps | None = None,
        *,
        operation_id: str | None = None,
        task: str | None = None,
        config: Mapping[str, Any] | None = None,
        total_epochs: int | None = None,
        mlflow: bool | str | Sink | None = None,
        console: bool = False,
        metadata: Mapping[str, Any] | None = None,
        operation_type: str = "training",
        rank: int | None = None,
        stop_on_recommendation: bool | MonitorPolicy = False,
        system_metrics: bool = False,
        log_every_n_steps: int = 1,
        sinks: Sequence[Sink] = (),
        flush_interval: float | Literal["default"] | None = "default",
        flush_timeout: float = 30.0,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
    ) -> None:
        try:  # refused here, before training starts: later it would only leave the run untracked
            described = CreateOperationRequest.model_validate({"name": name, "tags": tags, "notes": notes})
        except ValidationError as error:
            raise ValueError(invalid_input(error).message) from None
        self.name, self.tags, self.notes = described.name, described.tags, described.notes
        self.ops = ops
        self._given_operation_id = operation_id
        if task is not None:
            try:
                parse_task(task)
            except InvalidInputError as error:
                raise ValueError(error.message) from None
        self.task = task
        self.config: dict[str, Any] = dict(config or {})
        self.total_epochs = total_epochs
        self.metadata = dict(metadata or {})
        self.operation_type = operation_type
        self.rank = process_rank() if rank is None else rank
        self.stop_policy = (
            stop_on_recommendation
            if isinstance(stop_on_recommendation, MonitorPolicy)
            else (MonitorPolicy() if stop_on_recommendation else None)
        )
        self.flush_interval = flush_interval
        self.flush_timeout = flush_timeout
        self.system_metrics = system_metrics
        if log_every_n_steps < 1:
            raise ValueError(f"log_every_n_steps must be 1 or more, got {log_every_n_steps}")
        self.log_every_n_steps = log_every_n_steps
        chosen: list[Sink] = list(sinks)
        if console:
            chosen.append(ConsoleSink())
        if mlflow:
            chosen.append(_mlflow_sink(mlflow))
        self._sinks = [GuardedSink(sink) for sink in chosen]
        self._owns_ops = ops is None
        self._reset()

    def _reset(self) -> None:
        """Forget the previous run, so one instance can report several trainings in turn (as Keras reuses)."""
        self.run: Run | None = None
        self.operation_id: str | None = self._given_operation_id
        self.aliases: dict[str, str] = {}
        self._best_epoch: int | None = None
        self._best_epoch_read = False
        self._began = False
        self._ended = False
        self._epoch: int | None = None
        self._epoch_started: float | None = None
        self._epochs_begun = 0
        self._last_reported: tuple[int, dict[str, Any]] | None = None  # the epoch reported last, and its values
        self._step = 0
        self._stop: StopRequest | None = None
        self._slow_since: float | None = None  # when the diagnosis last gave up waiting for an epoch to be stored
        self._warned: set[str] = set()
        self._system: SystemMonitor | None = None

    @property
    def running(self) -> bool:
        """Training began and has not ended yet (on any rank)."""
        return self._began and not self._ended

    @property
    def best_epoch(self) -> int | None:
        if not self._best_epoch_read and self._ended and self.run is not None:
            self._read_best_epoch()
        return self._best_epoch

    @property
    def is_reporting(self) -> bool:
        """Whether this process reports (rank 0) and trainops took the run."""
        return self.run is not None

    # -- the seven hooks --------------------------------------------------------------------------------------

    def on_train_begin(self, config: Mapping[str, Any] | None = None) -> None:
        """Training begins: create (or take over) the operation, start it, and tell the sinks.

        Args:
            config: Hyperparameters known only now (merged over the constructor's ``config``).
        """
        if self._began and not self._ended:
            return
        if self._ended:
            self._reset()
        self._began = True
        if config:
            self.config.update(config)
        if self.rank != 0:
            return
        if self.system_metrics:
            try:
                self._system = SystemMonitor.start()
            except Exception as error:
                self._warn_once("system", f"no system metrics: {error}")
        self._open_run()
        info = RunInfo(self.operation_id, task=self.task, config=redacted(self.config), total_epochs=self.total_epochs)
        recorded: dict[str, Any] = {}  # what the sinks ask to record on the operation (the MLflow run's ids)
        for sink in self._sinks:
            answer = sink.call("begin", info)
            if isinstance(answer, Mapping):
                recorded.update(answer)
        # a run that began offline sends them with its registration
        if recorded and self.run is not None and self.ops is not None and not self.run.amend_registration(recorded):
            try:
                self.ops.update_metadata(self.run.operation_id, recorded)
            except Exception as error:
                self._warn_once(
                    "metadata",
                    f"{', '.join(recorded)} could not be recorded on the operation ({type(error).__name__}: {error})",
                )

    def on_epoch_begin(self, epoch: int) -> None:
        """An epoch begins (numbered as the framework numbers it: from 0 or from 1, both are fine)."""
        self._epochs_begun += 1
        self._epoch = epoch
        self._epoch_started = time.monotonic()

    def on_batch_end(self, batch: int, metrics: Mapping[str, Any] | None = None, *, step: int | None = None) -> None:
        """A batch ended (``batch``: its index in the epoch); ``metrics`` such as the batch loss are optional.

        Cheap enough for every batch: progress is throttled, and every ``log_every_n_steps``-th batch's metrics
        join the run's per-step series (canonical names, at the global step) from a background thread. Values
        are converted (a tensor's ``.item()``, a device sync) only for the batches that are recorded.

        Args:
            batch: The batch's index in its epoch, from 0.
            metrics: Numbers by name.
            step: The framework's global step after this batch; counted from the calls when not given.
        """
        self._step = step if step is not None else self._step + 1
        if self.run is None:
            self._not_begun()
            return
        record = bool(metrics) and self._step % self.log_every_n_steps == 0
        values = normalize_metrics(self._numbers(metrics or {}, "batch"))[0] if record else {}
        try:
            # progress counts the epochs begun ("Epoch 1/5" in the first), whatever the framework's numbering
            progress_epoch = self._epochs_begun - 1 if self._epochs_begun else (self._epoch or 0)
            self.run.batch(progress_epoch, batch + 1, None, values or None)
            if values:
                self.run.step(self._step, values, epoch=self._epoch)
        except Exception as error:
            self._warn_once("batch", f"a batch could not be reported ({type(error).__name__}: {error})")

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        """An epoch ended with these metrics (any names, any number of them).

        Names are mapped to trainops' canonical ones (``eval_loss`` is ``val_loss``; the original is kept in
        :attr:`aliases`); ``step``/``global_step`` is taken as the framework's global step; values that are not
        numbers are skipped with a warning. Standard fields go to their columns, the rest are custom metrics.

        Called again for the epoch it last reported (the training metrics, then the validation's), it adds to
        that epoch: both calls' metrics are kept (the later value of a name wins).
        """
        self._not_begun()
        step = _global_step(metrics)
        if step is not None:
            self._step = step
        numbers = self._numbers(metrics, "epoch")
        values, aliases = normalize_metrics(numbers)
        for canonical, original in aliases.items():
            self.aliases.setdefault(canonical, original)
        kept = {*values, *aliases.values(), *INDEX_NAMES}
        lost = [name for name in numbers if name not in kept]  # "my metric" beside "my_metric": one name in trainops
        if lost:
            self._warn_once(
                f"collided:{','.join(lost)}",
                f"{', '.join(lost)} skipped: another metric of this epoch has the same name once cleaned up "
                "(letters, digits, '_'); rename one of them",
            )
        if "duration" not in values and self._epoch_started is not None and self._epoch == epoch:
            values["duration"] = time.monotonic() - self._epoch_started
        if self._system is not None:
            try:
                for name, value in self._system.sample().items():
                    values.setdefault(name, value)
            except Exception as error:
                self._warn_once("system_sample", f"system metrics could not be read ({type(error).__name__}: {error})")
        self._epoch_started = None
        if self._last_reported is not None and self._last_reported[0] == epoch:
            values = {**self._last_reported[1], **values}  # a second call adds to its epoch (a re-sent one replaces)
        self._last_reported = (epoch, values)
        record = self._record(epoch, values)
        if record is None:
            return
        if self.run is not None:
            try:
                self.run.epoch(record)
            except Exception as error:
                self._warn_once("epoch", f"epoch {epoch} could not be stored ({type(error).__name__}: {error})")
        for sink in self._sinks:
            sink.call("epoch", record)
        if self.stop_policy is not None:
            self._consult_diagnosis()

    def on_train_end(self, final_metrics: Mapping[str, Any] | None = None) -> None:
        """Training ended: record the final metrics, end the operation and the sinks.

        The operation ends ``completed``, or ``cancelled`` when a stop was requested and :meth:`should_stop`
        told the loop. Calling it again does nothing.
        """
        self._end(None, final_metrics)

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Store a file with the run (under ``artifact_path/`` in its artifacts), in trainops and the sinks."""
        file = Path(path)
        if self.run is not None and self.ops is not None and self.operation_id is not None:
            try:
                self.ops.log_artifact(self.operation_id, file, artifact_path)
            except Exception as error:
                self._warn_once("artifact", f"{file} could not be stored ({type(error).__name__}: {error})")
        for sink in self._sinks:
            sink.call("artifact", file, artifact_path)

    def log_artifacts(self, dir_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        """Store every file below a directory with the run, keeping their relative paths."""
        root = Path(dir_path)
        for file in sorted(item for item in root.rglob("*") if item.is_file()):
            relative = file.parent.relative_to(root).as_posix()
            inner = "/".join(part for part in (artifact_path, relative) if part and part != ".") or None
            self.log_artifact(file, inner)

    def should_stop(self) -> StopRequest | None:
        """The stop request when someone (a person, an agent, the diagnosis) asked this run to stop, else None.

        Cheap enough to ask every batch. Once it has answered a request, the run ends ``cancelled``.
        """
        if self._stop is not None:
            return self._stop
        if self.run is None:
            return None
        try:
            self._stop = self.run.should_stop()
        except Exception as error:
            self._warn_once("stop", f"could not ask whether to stop ({type(error).__name__}: {error})")
        return self._stop

    # -- context manager ------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.on_train_begin()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._end(exc, None)

    # -- internals ------------------------------------------------------------------------------------------

    def _open_run(self) -> None:
        try:
            if self.ops is None:
                from trainops.client.connect import connect

                self.ops = connect()
            interval = (
                self.ops.default_flush_interval or REPORT_INTERVAL
                if self.flush_interval == "default"
                else self.flush_interval
            )
            if self.operation_id is None:  # a server away now: the run begins offline (see open_run)
                request = CreateOperationRequest(
                    operation_type=self.operation_type,
                    metadata=OperationMetadata.model_validate(self._operation_metadata()),
                    total_epochs=self.total_epochs,
                    name=self.name,
                    tags=self.tags,
                    notes=self.notes,
                )
                run = open_run(self.ops, request, flush_interval=interval, flush_timeout=self.flush_timeout)
            else:
                operation = self.ops.get_operation(self.operation_id)
                run = Run(self.ops, operation, flush_interval=interval, flush_timeout=self.flush_timeout)
            self.operation_id = run.operation_id
            run.start()
            self.run = run
        except Exception as error:  # trainops unreachable or refusing: train anyway, untracked
            self.run = None
            self._warn_once(
                "begin",
                f"the run is not tracked: trainops could not start it ({type(error).__name__}: {error}); "
                "training goes on",
            )

    def _operation_metadata(self) -> dict[str, Any]:
        metadata = dict(self.metadata)
        parameters = dict(metadata.get("parameters") or {})
        if self.config:
            parameters.update(_jsonable(self.config))
        if parameters:
            metadata["parameters"] = redacted(parameters)  # stored, listed and shown: never a password with them
        if self.task is not None:
            metadata["task"] = self.task
        metadata.setdefault("executor", "external")
        return metadata

    def _end(self, exc: BaseException | None, final_metrics: Mapping[str, Any] | None) -> None:
        if self._ended or not self._began:
            return
        self._ended = True
        final = normalize_metrics(self._numbers(final_metrics or {}, "final"))[0]
        if exited_cleanly(exc):
            exc = None
        status = _status(exc, self._stop)
        error = None if exc is None else ending_message(exc)
        if self.run is not None:
            if final:
                self.run.result["final_metrics"] = final
            if self.aliases:
                self.run.result["metric_aliases"] = dict(self.aliases)
            try:
                if exc is None and self._stop is not None:
                    # the loop was told (a stop the run learnt itself, or the diagnosis's): the run was cancelled
                    self.run.finish(OperationStatus.CANCELLED)
                else:
                    self.run.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)
                status = self.run.operation.status
            except Exception as problem:
                self._warn_once("end", f"the run's end could not be recorded ({type(problem).__name__}: {problem})")
        for sink in self._sinks:
            sink.call("end", status, final, error)
        if self._owns_ops and self.ops is not None:
            if self.run is not None and self.run.reachable and self.run.unsent is None:
                self._read_best_epoch()  # the connection closes now: read it while it is open (not from a server away)
            self.ops.close()
            self.ops = None

    def _read_best_epoch(self) -> None:
        self._best_epoch_read = True
        if self.ops is None or self.operation_id is None:
            return
        try:
            self._best_epoch = self.ops.get_metrics(self.operation_id).metrics.best_epoch
        except Exception as error:
            self._warn_once("best", f"the best epoch could not be read ({type(error).__name__}: {error})")

    def _consult_diagnosis(self) -> None:
        if self.run is None or self.ops is None or self.operation_id is None or self._stop is not None:
            return
        if not self.run.reachable:
            return  # the server is away: asking would hold the training thread; ask again at a later epoch
        if self._slow_since is not None and self.run.last_answer <= self._slow_since:
            return  # it took too long last time, and has not answered anything since: a stuck server
        self._slow_since = None
        try:
            self.run.flush(min(self.flush_timeout, CONSULT_WAIT))
        except ServiceUnavailableError:
            # slow or hung: the epoch stays queued, and the diagnosis is asked again once the server answers
            self._slow_since = time.monotonic()
            self._warn_once(
                "diagnosis_wait",
                f"the server did not store an epoch within {CONSULT_WAIT:g} s; the diagnosis is asked again once "
                "it answers",
            )
            return
        except Exception as error:
            self._warn_once("diagnosis", f"the diagnosis could not be read ({type(error).__name__}: {error})")
            return
        try:
            recommendation = self.ops.get_metrics(self.operation_id, policy=self.stop_policy).metrics.recommendation
            if recommendation.action is Action.CONTINUE:
                return
            operation = self.ops.cancel_operation(self.operation_id, recommendation.reason, requested_by=DIAGNOSIS)
            self._stop = operation.cancel_request
        except Exception as error:
            self._warn_once("diagnosis", f"the diagnosis could not be read ({type(error).__name__}: {error})")

    def _record(self, epoch: int, values: Mapping[str, Any]) -> EpochRecord | None:
        fields = {name: value for name, value in values.items() if name in FIELD_METRICS}
        # "step" is the record's own field (the global step); normalize_metrics already set it aside
        custom = {name: value for name, value in values.items() if name not in FIELD_METRICS and name != "step"}
        reserved = [name for name in custom if name in RESERVED_NAMES]  # "timestamp", "metrics": a record's fields
        if reserved:
            self._warn_once(
                f"reserved:{','.join(reserved)}",
                f"{', '.join(reserved)} skipped: the name of a standard field, not of a metric (rename it)",
            )
            custom = {name: value for name, value in custom.items() if name not in RESERVED_NAMES}
        if len(custom) > EpochRecord.MAX_CUSTOM_METRICS:
            self._warn_once(
                "too_many",
                f"{len(custom)} custom metrics in one epoch: the first {EpochRecord.MAX_CUSTOM_METRICS} are kept",
            )
            custom = dict(list(custom.items())[: EpochRecord.MAX_CUSTOM_METRICS])
        if "duration" in fields and not (isinstance(fields["duration"], float | int) and fields["duration"] >= 0):
            fields.pop("duration")
        step = {"step": self._step} if self._step else {}
        try:
            return EpochRecord.model_validate({"epoch": epoch, **fields, **step, "metrics": custom})
        except Exception as error:
            self._warn_once("record", f"epoch {epoch} was not reported: {error}")
            return None

    def _numbers(self, metrics: Mapping[str, Any], where: str) -> dict[str, float]:
        """The values that are numbers (Python, numpy, one-element tensors), as floats; others warned of once."""
        values: dict[str, float] = {}
        skipped = []
        for name, value in metrics.items():
            number = _as_number(value)
            if number is None:
                skipped.append(str(name))
            else:
                values[str(name)] = number
        if skipped:
            self._warn_once(
                f"not_numbers:{where}:{','.join(skipped)}",
                f"{', '.join(skipped)} skipped: only numbers are tracked (text belongs in the config or the result)",
            )
        return values

    def _not_begun(self) -> None:
        if not self._began:
            self._warn_once(
                "not_begun",
                "on_train_begin() was not called, so nothing is tracked: call it before the loop (or use the "
                "callbacks as a context manager: `with TrainingCallbacks(...) as callbacks:`)",
            )

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("trainops: %s", message)


def _as_number(value: Any) -> float | None:
    """A Python or numpy number, or a one-element tensor or array, as a float; ``None`` for anything else.

    What counts as a metric value is :func:`~trainops.core.numbers.parse_metric`'s rule (a number too large for a
    float is none), except that text is never one here and a boolean counts as 0 or 1.
    """
    if isinstance(value, str | bytes):  # a framework's text ("0.5" included) is not a metric it computed
        return None
    if isinstance(value, bool):
        return float(value)
    item = getattr(value, "item", None)
    if not isinstance(value, numbers.Real) and callable(item) and _one(value):
        try:  # its one element: float() of an array with dimensions is deprecated in numpy
            value = item()
        except (TypeError, ValueError, RuntimeError):
            return None
    if isinstance(value, str | bytes):
        return None
    if isinstance(value, bool):  # numpy's bool_ and a boolean tensor, as Python's bool above
        return float(value)
    try:
        return parse_metric(value)
    except ValueError:
        return None


def _one(value: Any) -> bool:
    """Whether an array-like holds exactly one element (``numel()`` for tensors, ``size`` for arrays)."""
    numel = getattr(value, "numel", None)
    if callable(numel):
        try:
            return bool(numel() == 1)
        except Exception:
            return False
    return bool(getattr(value, "size", None) == 1)


def _status(exc: BaseException | None, stop: StopRequest | None) -> OperationStatus:
    """How a run ends, as :class:`~trainops.client.run.Run` decides it: failed on an error, cancelled when a stop
    was requested and honoured (the loop was told) or a person interrupted it (Ctrl-C), else completed."""
    if exc is None:
        return OperationStatus.CANCELLED if stop is not None else OperationStatus.COMPLETED
    if isinstance(exc, OperationCancelledError | KeyboardInterrupt):  # Ctrl-C: a person stopped it
        return OperationStatus.CANCELLED
    return OperationStatus.FAILED


def _global_step(metrics: Mapping[str, Any]) -> int | None:
    for name in ("global_step", "step"):
        number = _as_number(metrics.get(name)) if name in metrics else None
        if number is not None and math.isfinite(number) and number >= 0:
            return int(number)
    return None


def _jsonable(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config as JSON can hold it: numbers, strings, booleans, None, lists and mappings; anything else as text."""

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, numbers.Real):  # numpy's numbers
            return convert(int(value) if isinstance(value, numbers.Integral) else float(value))
        if callable(getattr(value, "tolist", None)) and not isinstance(value, Mapping):
            listed = detached(value).tolist()  # an array or a tensor: its values, not its repr
            return str(value) if listed is value else convert(listed)
        if isinstance(value, Mapping):
            return {str(key): convert(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [convert(item) for item in value]
        return str(value)

    return {str(key): convert(value) for key, value in config.items()}


def _mlflow_sink(mlflow: bool | str | Sink) -> Sink:
    if not isinstance(mlflow, bool | str):
        return mlflow
    from trainops.callbacks.mlflow import MlflowSink  # the trainops[mlflow] extra, imported when asked for

    return MlflowSink(tracking_uri=None if isinstance(mlflow, bool) else mlflow)
