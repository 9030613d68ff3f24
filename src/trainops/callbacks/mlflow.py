"""Mirroring a training to MLflow: ``TrainingCallbacks(mlflow=...)`` reports every epoch to an MLflow run as well.

Needs ``trainops[mlflow]`` (the ``mlflow-skinny`` client) and a tracking store: a server (``http://host:5000``), a
database (``sqlite:///mlflow.db``, MLflow's default) or a folder (``file:///path/mlruns``, which MLflow 3 accepts
only with ``MLFLOW_ALLOW_FILE_STORE=true``).

>>> from trainops.callbacks import TrainingCallbacks
>>> tracker = TrainingCallbacks(config={"lr": 3e-4}, mlflow="http://127.0.0.1:5000")  # doctest: +SKIP
>>> with tracker:  # doctest: +SKIP
...     for epoch in range(10):
...         tracker.on_epoch_end(epoch, {"train_loss": 0.5, "val_loss": 0.6})
>>> tracker.ops.get_operation(tracker.operation_id).metadata.mlflow_run_id  # doctest: +SKIP
'6f1c2d...'

What lands in MLflow: one run per training, in the experiment ``job_{operation_id}`` unless named; the config as
parameters (nested keys flattened to ``a.b``); every metric of every epoch at ``step=epoch``, under trainops'
canonical names (``val_loss``, ``mAP50``, ``duration``); the final metrics as ``final_<name>``; the run ended
``FINISHED``, ``FAILED`` or ``KILLED`` as the operation ended completed, failed or cancelled; the artifacts logged.

The training never waits on MLflow for an epoch: metrics are queued and sent in batches by a background thread,
drained when the training ends (at most ``drain_timeout`` seconds; what is left is dropped with a warning). A
tracking server that cannot be reached costs the start of the training a few seconds at most, then mirroring is
switched off with one warning and the training goes on.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import posixpath
import re
import socket
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from trainops.callbacks.sinks import RunInfo
from trainops.core.epoch import EpochRecord
from trainops.core.operation import OperationStatus
from trainops.core.redaction import url_without_secrets
from trainops.errors import InvalidInputError, MissingExtraError


def require_mlflow() -> None:
    """Raise :class:`MissingExtraError` naming ``trainops[mlflow]`` unless the MLflow client is importable."""
    if importlib.util.find_spec("mlflow") is None:
        raise MissingExtraError(
            "mirroring to MLflow needs the trainops[mlflow] extra, which is not installed here (missing: mlflow); "
            "install it with: pip install 'trainops[mlflow]'",
            details={"extra": "mlflow", "missing": ["mlflow"], "install": "pip install 'trainops[mlflow]'"},
        )


require_mlflow()  # this module is imported only when mirroring is asked for: say which extra is missing

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

logger = logging.getLogger("trainops.callbacks")

# MLflow's limits (mlflow/utils/validation.py): what one log_batch call and one value may hold
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_KEY_LENGTH = 250
MAX_EXPERIMENT_NAME_LENGTH = 500

RUN_STATUS: dict[OperationStatus, str] = {
    OperationStatus.COMPLETED: "FINISHED",
    OperationStatus.FAILED: "FAILED",
    OperationStatus.CANCELLED: "KILLED",
}
"""The MLflow run status an ended operation's run gets."""

OPERATION_TAG = "trainops.operation_id"
TASK_TAG = "trainops.task"
ERROR_TAG = "trainops.error"

# MLflow accepts letters, digits, '_', '-', '.', ' ', '/' (and ':' except on Windows) in keys
_BAD_KEY_CHARACTERS = re.compile(r"[^\w./\- ]")

_T = TypeVar("_T")


class MlflowMirrorError(RuntimeError):
    """MLflow could not be reached or refused what was sent (the sink is switched off; the training goes on)."""


class MlflowSink:
    """Mirrors a training to one MLflow run per training (a :class:`~trainops.callbacks.sinks.Sink`).

    Usually made by ``TrainingCallbacks(mlflow=True | "<tracking uri>")``; build one to choose the options and pass
    it as ``mlflow=MlflowSink(...)``. The run is driven through an ``MlflowClient`` and its run id, never through
    MLflow's global active run, so two trainings in one process (or a script that uses ``mlflow.start_run`` itself)
    never mix.

    Args:
        tracking_uri: Where MLflow keeps runs; MLflow's own default when ``None`` (``MLFLOW_TRACKING_URI``, else
            ``sqlite:///mlflow.db``).
        experiment_name: The experiment to log into, created when missing; ``job_{operation_id}`` by default
            (``trainops`` for a run trainops itself could not track).
        run_name: The run's name; the operation id by default.
        log_every_epoch: Mirror each epoch's metrics; ``False`` sends only the parameters and the final metrics.
        tags: More tags for the run (``trainops.operation_id`` and ``trainops.task`` are always set).
        connect_timeout: Seconds to wait for a tracking server's TCP connection before giving up on MLflow
            (checked first, so a server that is down costs this at most, not MLflow's minutes of retries).
        begin_timeout: Seconds the start (creating the experiment and the run) may take; a fresh ``sqlite://``
            store creates its tables then (a few seconds).
        drain_timeout: Seconds the end of training waits for queued metrics and the run's end to be sent.

    Attributes:
        experiment_id: The MLflow experiment, once the run started.
        run_id: The MLflow run, once started (``None`` before, or when MLflow could not be reached).
        tracking_uri: The tracking URI in use, once started (credentials in it removed).

    Raises:
        MissingExtraError: the MLflow client is not installed (``pip install 'trainops[mlflow]'``).
        InvalidInputError: a timeout that is not a positive number, or an empty or over-long experiment name.
    """

    name = "mlflow"

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        experiment_name: str | None = None,
        run_name: str | None = None,
        log_every_epoch: bool = True,
        tags: Mapping[str, str] | None = None,
        connect_timeout: float = 5.0,
        begin_timeout: float = 30.0,
        drain_timeout: float = 30.0,
    ) -> None:
        for option, seconds in (
            ("connect_timeout", connect_timeout),
            ("begin_timeout", begin_timeout),
            ("drain_timeout", drain_timeout),
        ):
            if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
                raise InvalidInputError(f"MlflowSink {option} must be a positive number of seconds, got {seconds!r}")
        if tracking_uri is not None and not (isinstance(tracking_uri, str) and tracking_uri.strip()):
            raise InvalidInputError(
                f"MlflowSink tracking_uri {tracking_uri!r} is empty: give one such as http://127.0.0.1:5000 or "
                "sqlite:///mlflow.db, or None for MLflow's default"
            )
        if experiment_name is not None and not 0 < len(experiment_name.strip()) <= MAX_EXPERIMENT_NAME_LENGTH:
            raise InvalidInputError(
                f"MlflowSink experiment_name {experiment_name!r} must be between 1 and {MAX_EXPERIMENT_NAME_LENGTH} "
                "characters (None names it job_<operation id>)"
            )
        self.requested_uri = tracking_uri
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.log_every_epoch = log_every_epoch
        self.tags = {str(key): str(value) for key, value in (tags or {}).items()}
        self.connect_timeout = float(connect_timeout)
        self.begin_timeout = float(begin_timeout)
        self.drain_timeout = float(drain_timeout)
        self.experiment_id: str | None = None
        self.run_id: str | None = None
        self.tracking_uri: str | None = None
        self._client: MlflowClient | None = None
        self._sender: _Sender | None = None
        self._last_epoch = 0

    # -- the Sink protocol ----------------------------------------------------------------------------------

    def begin(self, run: RunInfo) -> dict[str, str]:
        """Create (or reuse) the experiment, start the run, queue the parameters and tags; answer the ids to
        record on the operation."""
        self._close_previous()
        self._last_epoch = 0
        uri = self.requested_uri or mlflow.get_tracking_uri()
        shown = url_without_secrets(uri)  # recorded on the operation, and in messages
        _check_reachable(uri, shown, self.connect_timeout)
        abandoned = threading.Event()
        client, experiment_id, run_id = _within(
            self.begin_timeout,
            f"starting the MLflow run at {shown}",
            lambda: self._start(uri, run, abandoned),
            abandoned,
        )
        self._client, self.experiment_id, self.run_id, self.tracking_uri = client, experiment_id, run_id, shown
        self._sender = _Sender(client, run_id, shown)
        self._sender.put(params=self._params(run.config))
        return {"mlflow_experiment_id": experiment_id, "mlflow_run_id": run_id, "mlflow_tracking_uri": shown}

    def epoch(self, record: EpochRecord) -> None:
        """Queue the epoch's metrics (standard fields, custom ones and its duration) at ``step=epoch``."""
        sender = self._running()
        self._last_epoch = max(self._last_epoch, record.epoch)
        if not self.log_every_epoch:
            sender.check()
            return
        moment = record.timestamp.timestamp() if record.timestamp is not None else time.time()
        stamp = int(moment * 1000)
        sender.put(metrics=[Metric(name, value, stamp, record.epoch) for name, value in _epoch_values(record).items()])

    def artifact(self, path: Path, artifact_path: str | None) -> None:
        """Upload the file to the run's artifacts (under ``artifact_path/``).

        Uploaded now, in the caller's thread, as ``mlflow.log_artifact`` does: a training often overwrites a
        checkpoint right after logging it, and a copy sent later would not be the file that was logged.
        """
        sender = self._running()
        sender.check()
        assert self._client is not None and self.run_id is not None
        with sender.talking:  # never beside a batch: MLflow's file store reads a metric file half written
            self._client.log_artifact(self.run_id, str(path), artifact_path)

    def end(self, status: OperationStatus, final_metrics: Mapping[str, float], error: str | None) -> None:
        """Send what is queued, the final metrics (``final_<name>``) and the error (tag ``trainops.error``), and
        end the run ``FINISHED``, ``FAILED`` or ``KILLED``; wait at most ``drain_timeout`` seconds.

        Raises:
            MlflowMirrorError: MLflow refused or did not take everything in time (what was left is dropped).
        """
        sender, self._sender = self._running(), None
        stamp = int(time.time() * 1000)
        finals = [
            Metric(f"final_{name}", float(value), stamp, self._last_epoch) for name, value in final_metrics.items()
        ]
        tags = [RunTag(ERROR_TAG, error[:MAX_TAG_VALUE_LENGTH])] if error else []
        sender.put(metrics=finals, tags=tags)
        sender.close(RUN_STATUS.get(status, "FAILED"), self.drain_timeout)

    # -- internals ------------------------------------------------------------------------------------------

    def _start(self, uri: str, run: RunInfo, abandoned: threading.Event) -> tuple[MlflowClient, str, str]:
        client = MlflowClient(tracking_uri=uri)
        name = self.experiment_name or (f"job_{run.operation_id}" if run.operation_id else "trainops")
        experiment_id = _experiment(client, name)
        tags = dict(self.tags)
        if run.operation_id:
            tags[OPERATION_TAG] = run.operation_id
        if run.task:
            tags[TASK_TAG] = str(run.task)
        created = client.create_run(experiment_id, tags=tags, run_name=self.run_name or run.operation_id)
        run_id: str = created.info.run_id
        if abandoned.is_set():  # the training gave up waiting and goes on without MLflow: leave no run "running"
            client.set_terminated(run_id, "FAILED")
        return client, experiment_id, run_id

    def _params(self, config: Mapping[str, Any]) -> list[Param]:
        """The config as MLflow parameters: nested keys flattened to ``a.b``, keys made valid, long values cut."""
        params: dict[str, str] = {}
        renamed: list[str] = []
        cut: list[str] = []
        for name, value in _flatten(config):
            key = _mlflow_key(name)
            if key in params:
                renamed.append(name)
                continue
            text = value if isinstance(value, str) else str(value)
            if len(text) > MAX_PARAM_VALUE_LENGTH:
                cut.append(key)
                text = text[:MAX_PARAM_VALUE_LENGTH]
            params[key] = text
        if cut:
            logger.warning(
                "trainops: MLflow keeps at most %d characters of a parameter: %s cut to that length",
                MAX_PARAM_VALUE_LENGTH,
                ", ".join(cut),
            )
        if renamed:
            logger.warning(
                "trainops: %s not logged to MLflow: another parameter has the same MLflow name", ", ".join(renamed)
            )
        return [Param(key, text) for key, text in params.items()]

    def _running(self) -> _Sender:
        if self._sender is None:
            raise MlflowMirrorError("the MLflow run was not started (begin was not called or failed)")
        return self._sender

    def _close_previous(self) -> None:
        """A sink reused for another training without an end: stop sending for the old run."""
        if self._sender is not None:
            self._sender.abandon()
            self._sender = None


class _Sender:
    """Sends queued metrics, parameters and tags to one MLflow run from a background thread, in batches within
    MLflow's limits, and ends the run when closed. The first failure stops it: what is queued is dropped and the
    next call on it raises."""

    def __init__(self, client: MlflowClient, run_id: str, where: str) -> None:
        self.client = client
        self.run_id = run_id
        self.where = where
        self.error: BaseException | None = None
        self.talking = threading.Lock()
        """Held while a request is with MLflow: other threads' requests for the run wait for it."""
        self._condition = threading.Condition()
        self._metrics: deque[Metric] = deque()
        self._params: deque[Param] = deque()
        self._tags: deque[RunTag] = deque()
        self._end_status: str | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._loop, name="trainops-mlflow", daemon=True)
        self._thread.start()

    def put(self, *, metrics: Sequence[Metric] = (), params: Sequence[Param] = (), tags: Sequence[RunTag] = ()) -> None:
        with self._condition:
            self._raise_failure()
            self._metrics.extend(metrics)
            self._params.extend(params)
            self._tags.extend(tags)
            self._condition.notify()

    def check(self) -> None:
        with self._condition:
            self._raise_failure()

    def close(self, status: str, timeout: float) -> None:
        """Send everything queued, end the run with ``status``, and wait at most ``timeout`` seconds for it."""
        with self._condition:
            self._raise_failure()
            self._end_status = status
            self._condition.notify()
        self._thread.join(timeout)
        with self._condition:
            if self._thread.is_alive():
                left = len(self._metrics) + len(self._params) + len(self._tags)
                self._drop()
                raise MlflowMirrorError(
                    f"MLflow at {self.where} did not take the run's end within {timeout:g} s: {left} queued values "
                    f"dropped, and run {self.run_id} may be left unfinished there"
                )
            self._raise_failure()

    def abandon(self) -> None:
        with self._condition:
            self._drop()

    def _drop(self) -> None:
        self._abandoned = True
        self._metrics.clear()
        self._params.clear()
        self._tags.clear()
        self._condition.notify()

    def _raise_failure(self) -> None:
        if self.error is not None:
            raise MlflowMirrorError(
                f"sending to MLflow at {self.where} failed ({type(self.error).__name__}: {self.error})"
            ) from self.error

    def _loop(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(
                    lambda: (
                        bool(self._metrics or self._params or self._tags)
                        or self._end_status is not None
                        or self._abandoned
                    )
                )
                if self._abandoned:
                    return
                params = _take(self._params, MAX_PARAMS_TAGS_PER_BATCH)
                tags = _take(self._tags, MAX_PARAMS_TAGS_PER_BATCH)
                metrics = _take(
                    self._metrics, min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(params) - len(tags))
                )
                status = self._end_status if not (params or tags or metrics) else None
            try:
                with self.talking:
                    if status is not None:
                        self.client.set_terminated(self.run_id, status, end_time=int(time.time() * 1000))
                        return
                    self.client.log_batch(self.run_id, metrics=metrics, params=params, tags=tags)
            except Exception as error:  # reported by the next call on the sink, which GuardedSink then switches off
                with self._condition:
                    self.error = error
                    self._metrics.clear()
                    self._params.clear()
                    self._tags.clear()
                return


def _experiment(client: MlflowClient, name: str) -> str:
    """The id of the experiment called ``name``, created when missing (another process creating it at the same
    moment is fine)."""
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return str(client.create_experiment(name))
        except MlflowException:
            found = client.get_experiment_by_name(name)  # created meanwhile by another training
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        raise MlflowMirrorError(
            f"the MLflow experiment {name!r} is deleted: restore it (mlflow experiments restore --experiment-id "
            f"{found.experiment_id}) or choose another experiment_name"
        )
    return str(found.experiment_id)


def _epoch_values(record: EpochRecord) -> dict[str, float]:
    """Every metric of an epoch, standard fields first, and its duration."""
    values: dict[str, float] = {}
    for name in record.metric_names():
        value = record.value(name)
        if value is not None:
            values[name] = float(value)
    if record.duration is not None:
        values["duration"] = float(record.duration)
    return values


def _flatten(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{"optimizer": {"lr": 0.1}}`` as ``("optimizer.lr", 0.1)``; an empty mapping is kept as a value."""
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def _mlflow_key(name: str) -> str:
    """A key MLflow accepts: other characters become ``_``, at most 250 characters, not a path that normalises
    to something else (``a//b``, ``../x``)."""
    key = _BAD_KEY_CHARACTERS.sub("_", name)[:MAX_KEY_LENGTH] or "_"
    if posixpath.normpath(key) != key or key.startswith("/"):
        key = key.replace("/", "_")
    if key == "." or key.startswith(".."):
        key = f"_{key}"[:MAX_KEY_LENGTH]
    return key


def _take(queue: deque[_T], limit: int) -> list[_T]:
    return [queue.popleft() for _ in range(min(limit, len(queue)))]


def _check_reachable(uri: str, shown: str, timeout: float) -> None:
    """Fail at once when a tracking server's port does not answer: MLflow itself would retry a refused connection
    for minutes. Skipped for stores that are not servers, and behind a proxy (which the probe could not use)."""
    parts = urlsplit(uri)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return
    host = parts.hostname
    if parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(host):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as error:
        raise MlflowMirrorError(
            f"the MLflow tracking server at {shown} cannot be reached ({type(error).__name__}: {error}); is it "
            "running, and is the tracking URI (mlflow=... or MLFLOW_TRACKING_URI) right?"
        ) from None


def _within(seconds: float, what: str, work: Callable[[], _T], abandoned: threading.Event) -> _T:
    """``work()`` run in a helper thread, its answer or its error; a :class:`MlflowMirrorError` when it takes
    longer than ``seconds`` (``abandoned`` is then set and the thread left to finish on its own)."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:
            outcome["error"] = error
        finally:
            done.set()

    threading.Thread(target=run, name="trainops-mlflow-begin", daemon=True).start()
    if not done.wait(seconds):
        abandoned.set()
        raise MlflowMirrorError(f"{what} took longer than {seconds:g} s (begin_timeout)")
    if "error" in outcome:
        raise outcome["error"]
    value: _T = outcome["value"]
    return value
