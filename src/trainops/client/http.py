"""TrainOps over HTTP: the same interface, talking to a trainops server with httpx.

Every method has the same shape: build the request, call the endpoint, parse the domain object. Server errors
come back as the same exception types the service raises in-process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from trainops.client.base import (
    TrainOps,
    cached_data_files,
    data_directory,
    data_file_target,
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
from trainops.core.lru import LRUCache
from trainops.core.metric_definitions import TaskType
from trainops.core.operation import (
    MAX_OPERATION_ID_LENGTH,
    UNSET,
    Operation,
    OperationMetadata,
    OperationStatus,
    WriteAck,
    operation_not_found,
)
from trainops.core.payload import storable
from trainops.core.policy import MonitorPolicy
from trainops.core.progress import ProgressState
from trainops.core.replay import Replay
from trainops.core.steps import StepRecord, StepSeries
from trainops.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    TrainOpsError,
    error_from_dict,
)
from trainops.schemas.artifacts import ArtifactInfo, check_artifact_path
from trainops.schemas.data import DataFile, data_format_of
from trainops.schemas.events import OPERATION_EVENT, OperationEvent
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
    CancelRequestBody,
    CompleteRequest,
    CreateOperationRequest,
    DeletedOperation,
    DiagnoseRequest,
    EpochBatch,
    ExecutorJob,
    ListedOperationPage,
    OperationDetail,
    OperationResults,
    StartRequest,
    UpdateOperationRequest,
)
from trainops.schemas.steps import StepBatch
from trainops.schemas.strategies import StrategySummary, StrategyValidation, ValidateRequest
from trainops.schemas.training import TrainingPerformance, TrainingRequest, TrainingStarted, TrainingStatus

_RETRY_STATUSES = frozenset({502, 503, 504})
# A request that may have reached the server is retried only when repeating it is harmless. Creating an operation
# or finishing one is not: a retry after a read timeout could create a twin or answer "already completed". Those
# are retried only when the request surely never arrived: no connection, or our server's own 503 (refused before
# doing anything).
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
_HUNG = (httpx.ReadTimeout, httpx.WriteTimeout)
"""A server that took the connection and did not answer within the timeout is hung, not away: trying again costs
another whole timeout each time (four of them held a training's end for two minutes), so it is not retried; a
run's background sender keeps the records and tries again later."""
_WITHOUT_JSON: dict[int, type[TrainOpsError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    408: ServiceUnavailableError,
    413: PayloadTooLargeError,
    429: ServiceUnavailableError,
}
"""What an answer without trainops' JSON means by its status alone (a proxy's HTML page in front of the server):
an nginx 413 is a batch too large, to be split, not an outage to retry for ever. Any other status reads as the
server failing, and the records wait."""


_API_PREFIX = "/api/v1"
_CHUNK_BYTES = 1024 * 1024


def _checked_url(url: str) -> str:
    """The server's base URL, under which the client adds ``/api/v1`` itself.

    Both the origin (``http://127.0.0.1:8000``) and the API's URL that ``trainops serve`` prints
    (``http://127.0.0.1:8000/api/v1``, a trailing slash or not) name the same server; any other path is kept, for
    a server mounted under a prefix (``http://host/trainops`` or ``http://host/trainops/api/v1``).
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        problem = str(error)
    else:
        usable = parsed.scheme in {"http", "https"} and parsed.host
        problem = "" if usable else "it needs http:// or https:// and a host"
    if problem:
        raise ConfigurationError(
            f"the trainops server URL {url!r} is not usable ({problem}); give one like http://127.0.0.1:8000 "
            "(--url or TRAINOPS_URL)"
        )
    return url.rstrip("/").removesuffix(_API_PREFIX)


_Request = TypeVar("_Request", bound=BaseModel)


def _request(model: type[_Request], **fields: Any) -> _Request:
    """A request body, checked here: a bad argument is an :class:`InvalidInputError` naming the field, as the
    server would answer, without the round trip."""
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        raise invalid_input(error) from None


def _chosen(policy: MonitorPolicy) -> dict[str, Any]:
    """The policy fields to send: those chosen or not at their defaults. A ``monitor`` chosen at its default
    (``val_loss``) is sent too: left out, a run with a task would be judged on the task's primary metric."""
    chosen: dict[str, Any] = policy.model_dump(mode="json", exclude_defaults=True)
    chosen.update(policy.model_dump(mode="json", include=policy.model_fields_set))
    return chosen


def _free_form(value: dict[str, Any] | None, where: str) -> dict[str, Any] | None:
    """A caller's free-form mapping as JSON can carry it (non-finite numbers spelled ``"NaN"``, ... as metrics
    are); a value JSON cannot hold is an :class:`InvalidInputError` naming where it was found."""
    try:
        cleaned: dict[str, Any] | None = storable(value, where)
    except ValueError as problem:
        raise InvalidInputError(str(problem)) from None
    return cleaned


class HttpTrainOps(TrainOps):
    """The :class:`TrainOps` interface against a trainops server.

    Args:
        url: The server, e.g. ``http://127.0.0.1:8000``, or the API's URL that ``trainops serve`` prints
            (``http://127.0.0.1:8000/api/v1``).
        token: Bearer token, when the server requires one.
        timeout: Seconds per request.
        connect_timeout: Seconds to wait for a connection (at most ``timeout``): a server that does not accept one
            this soon is down, and a run reporting to it keeps its records and tries again later.
        retries: Extra attempts on connection errors and 502/503/504, with exponential back-off. Every call is
            safe to repeat: epoch writes are upserts.
        transport: An httpx transport (tests plug fakes in here).
    """

    default_flush_interval: float | None = 0.5

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = _checked_url(url)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        token = _header_token(token)
        self._token, self._connect_timeout, self._transport = token, connect_timeout, transport  # to pickle it
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=f"{self.url}{_API_PREFIX}",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, connect_timeout)),
            transport=transport,
        )
        # (operation, query) -> (ETag, the answer it names): the last 256 metric queries polled
        self._etags: LRUCache[tuple[str, str], tuple[str, OperationMetrics]] = LRUCache(256)
        self._streams: set[httpx.Response] = set()  # the event streams being read, ended by close()
        self._streams_lock = threading.Lock()
        self._closing = threading.Event()

    def __reduce__(self) -> Any:
        """A client pickles as its URL and settings (a DataLoader worker, a process pool): the copy opens its own
        connections."""
        if self._transport is not None:
            raise TypeError("an HttpTrainOps with a transport of its own cannot be pickled; pickle one without")
        copy = functools.partial(
            HttpTrainOps,
            self.url,
            token=self._token,
            timeout=self.timeout,
            connect_timeout=self._connect_timeout,
            retries=self.retries,
            backoff=self.backoff,
        )
        return (copy, ())

    # -- transport ------------------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        exclude_none: bool = False,
        exclude_defaults: bool = False,
        exclude_unset: bool = False,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = True,
        upload: BinaryIO | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One request, retried as :attr:`retries` says; ``body`` is sent as its JSON (``exclude_none``,
        ``exclude_defaults`` and ``exclude_unset`` as in ``model_dump_json``). ``upload`` is a file sent as the raw
        body, streamed from its start by every attempt: its first bytes up to the size it has now, a snapshot, as
        the in-process client stores one (a log still being written grows meanwhile); with ``stream`` the answer's
        body is left for the caller to read (and the response to close).

        Raises:
            InvalidInputError: ``upload`` shrank while it was sent (nothing was stored).
        """
        content = None
        request_headers = dict(headers or {})
        if body is not None:
            content = body.model_dump_json(
                exclude_none=exclude_none, exclude_defaults=exclude_defaults, exclude_unset=exclude_unset
            )
            request_headers["Content-Type"] = "application/json"
        query = {key: value for key, value in (params or {}).items() if value is not None}
        size = 0
        if upload is not None:
            request_headers["Content-Type"] = "application/octet-stream"
            # measured once, declared, and sent exactly: httpx declares the size it finds when it builds the request
            # and then sends the file to its end, which breaks the request of a file that grows meanwhile
            size = os.fstat(upload.fileno()).st_size
            request_headers["Content-Length"] = str(size)
        if self._http.is_closed:
            raise ConfigurationError(
                f"this client of {self.url} was closed (its `with` block ended, or close() was called); keep it "
                "open as long as anything reports through it, or connect again"
            )
        attempt = 0
        while True:
            if upload is not None:  # every attempt sends the file from its start
                upload.seek(0)
            try:
                sent = content if upload is None else _first_bytes(upload, size)
                request = self._http.build_request(method, path, content=sent, params=query, headers=request_headers)
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as error:
                if isinstance(error, _HUNG):
                    raise ServiceUnavailableError(
                        f"the trainops server at {self.url} took the connection but did not answer within "
                        f"{self.timeout:g} s ({type(error).__name__}); is it overloaded or stuck?",
                        details={"url": self.url},
                    ) from None
                if attempt >= self.retries or not (idempotent or isinstance(error, _NEVER_SENT)):
                    raise ServiceUnavailableError(
                        f"cannot reach the trainops server at {self.url} ({type(error).__name__}: {error}); "
                        "is `trainops serve` running, and is TRAINOPS_URL right?",
                        details={"url": self.url},
                    ) from None
            else:
                retry_status = _RETRY_STATUSES if idempotent else {503}
                if response.status_code not in retry_status or attempt >= self.retries:
                    return response
                response.close()
            time.sleep(self.backoff * 2**attempt)
            attempt += 1

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        return self._data(response)

    def _data(self, response: httpx.Response) -> Any:
        try:
            payload = response.json()
        except ValueError:
            kind = TrainOpsError if response.is_success else _WITHOUT_JSON.get(response.status_code, TrainOpsError)
            raise kind(
                f"the server at {self.url} answered HTTP {response.status_code} without JSON: "
                f"{response.text[:200]!r}; is it a trainops server (or a proxy in front of one)?",
                details={"url": self.url, "status": response.status_code},
            ) from None
        if response.is_success and isinstance(payload, dict) and payload.get("success"):
            if payload.get("data") is None:  # every route of a trainops server answers data
                raise TrainOpsError(
                    f"the server at {self.url} answered HTTP {response.status_code} with no data: "
                    f"{response.text[:200]!r}; is it a trainops server?"
                )
            return payload["data"]
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            raise error_from_dict(error)
        raise TrainOpsError(f"HTTP {response.status_code} from {self.url}: {response.text[:200]}")

    # -- operations -----------------------------------------------------------------------------------------

    def health(self) -> Health:
        return Health.model_validate(self._call("GET", "/health"))

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
        body = _request(
            CreateOperationRequest,
            operation_type=operation_type,
            metadata=metadata if metadata is not None else OperationMetadata(),
            total_epochs=total_epochs,
            name=name,
            tags=tags,
            notes=notes,
            operation_id=operation_id,
            started_at=started_at,
        )
        # with an id of the caller's, a retry cannot register the run twice (it answers 409)
        idempotent = operation_id is not None
        return Operation.model_validate(
            self._call("POST", "/operations", body=body, idempotent=idempotent, exclude_unset=True)
        )

    def get_operation(self, operation_id: str) -> Operation:
        return Operation.model_validate(self._call("GET", f"/operations/{_id_segment(operation_id)}"))

    def get_job(self, operation_id: str) -> ExecutorJob | None:
        return OperationDetail.model_validate(self._call("GET", f"/operations/{_id_segment(operation_id)}")).job

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
        statuses = None
        if isinstance(status, str):
            statuses = [OperationStatus(status).value]
        elif status is not None:
            statuses = [OperationStatus(s).value for s in status]
        for moment, label in ((created_after, "created_after"), (created_before, "created_before")):
            if moment is not None and moment.tzinfo is None:  # as the service says it, without the round trip
                raise InvalidInputError(
                    f"{label} {moment.isoformat()} has no time zone: add one, e.g. {moment.isoformat()}Z (UTC)",
                    details={label: moment.isoformat()},
                )
        params = {
            "status": statuses,
            "operation_type": operation_type,
            "active_only": "true" if active_only else None,
            "limit": limit,
            "offset": offset or None,
            "name": name,
            "tag": [tags] if isinstance(tags, str) else (list(tags) if tags else None),
            "q": q,
            "strategy": strategy,
            "symbol": symbol,
            "timeframe": timeframe,
            "created_after": created_after.isoformat() if created_after else None,
            "created_before": created_before.isoformat() if created_before else None,
            "sort": sort if sort != "created" else None,
            "order": order,
            "cursor": cursor,
            "include": "best" if include_best else None,
        }
        return ListedOperationPage.model_validate(self._call("GET", "/operations", params=params))

    def start_operation(self, operation_id: str, *, worker: str | None = None) -> Operation:
        data = self._call(
            "POST", f"/operations/{_id_segment(operation_id)}/start", body=_request(StartRequest, worker=worker)
        )
        return Operation.model_validate(data)

    def report_progress(self, operation_id: str, state: ProgressState) -> WriteAck:
        return WriteAck.model_validate(
            self._call("POST", f"/operations/{_id_segment(operation_id)}/progress", body=state)
        )

    def add_epochs(self, operation_id: str, records: Sequence[EpochRecord]) -> WriteAck:
        path = f"/operations/{_id_segment(operation_id)}/metrics"
        if len(records) == 1:  # the common case of an unbuffered run: the record posted bare
            return WriteAck.model_validate(self._call("POST", path, body=records[0]))
        batch = _request(EpochBatch, epochs=list(records))
        return WriteAck.model_validate(self._call("POST", path, body=batch, exclude_none=True))

    def add_steps(self, operation_id: str, records: Sequence[StepRecord]) -> WriteAck:
        path = f"/operations/{_id_segment(operation_id)}/steps"
        if len(records) == 1:
            return WriteAck.model_validate(self._call("POST", path, body=records[0], exclude_none=True))
        batch = _request(StepBatch, steps=list(records))
        return WriteAck.model_validate(self._call("POST", path, body=batch, exclude_none=True))

    def get_steps(self, operation_id: str, *, since_step: int | None = None, metric: str | None = None) -> StepSeries:
        params = {"since_step": since_step, "metric": metric}
        return StepSeries.model_validate(
            self._call("GET", f"/operations/{_id_segment(operation_id)}/steps", params=params)
        )

    def heartbeat(self, operation_id: str) -> WriteAck:
        return WriteAck.model_validate(self._call("POST", f"/operations/{_id_segment(operation_id)}/heartbeat"))

    def finish_operation(
        self,
        operation_id: str,
        status: OperationStatus | str = OperationStatus.COMPLETED,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> Operation:
        body = _request(CompleteRequest, status=str(status), result=_free_form(result, "result"), error=error)
        return Operation.model_validate(
            self._call("POST", f"/operations/{_id_segment(operation_id)}/complete", body=body, idempotent=False)
        )

    def cancel_operation(self, operation_id: str, reason: str, *, requested_by: str = "user") -> Operation:
        body = _request(CancelRequestBody, reason=reason, requested_by=requested_by)
        return Operation.model_validate(self._call("DELETE", f"/operations/{_id_segment(operation_id)}", body=body))

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
        fields: dict[str, Any] = {
            key: value for key, value in (("name", name), ("tags", tags), ("notes", notes)) if value is not UNSET
        }
        if add_tags:
            fields["add_tags"] = add_tags
        if remove_tags:
            fields["remove_tags"] = remove_tags
        if metadata is not None:
            fields["metadata"] = _free_form(dict(metadata), "metadata")
        if not fields:
            raise InvalidInputError(
                "nothing to change: send name, tags, add_tags, remove_tags, notes or metadata, "
                'e.g. {"name": "lr sweep"}'
            )
        body = _request(UpdateOperationRequest, **fields)
        data = self._call("PATCH", f"/operations/{_id_segment(operation_id)}", body=body, exclude_unset=True)
        return Operation.model_validate(data)

    def update_metadata(self, operation_id: str, fields: Mapping[str, Any]) -> Operation:
        body = _request(UpdateOperationRequest, metadata=_free_form(dict(fields), "metadata"))
        data = self._call("PATCH", f"/operations/{_id_segment(operation_id)}", body=body, exclude_unset=True)
        return Operation.model_validate(data)

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
        """As :meth:`TrainOps.get_metrics`; repeated polls send the last ETag, so an unchanged history costs
        the server one tiny query and no body."""
        params: dict[str, Any] = {
            "since_epoch": since_epoch,
            "points": points,
            "from_epoch": from_epoch,
            "to_epoch": to_epoch,
        }
        if policy is not None:
            params.update(_chosen(policy))
        cache_key = (operation_id, json.dumps(params, sort_keys=True, default=str))
        cached = self._etags.get(cache_key)
        headers = {"If-None-Match": cached[0]} if cached else None
        response = self._send("GET", f"/operations/{_id_segment(operation_id)}/metrics", params=params, headers=headers)
        if response.status_code == 304 and cached:
            return cached[1]
        metrics = OperationMetrics.model_validate(self._data(response))
        etag = response.headers.get("etag")
        if etag:
            self._etags.put(cache_key, (etag, metrics))
        return metrics

    def _metrics_csv(
        self, operation_id: str, since_epoch: int | None, from_epoch: int | None, to_epoch: int | None
    ) -> str:
        params = {"format": "csv", "since_epoch": since_epoch, "from_epoch": from_epoch, "to_epoch": to_epoch}
        response = self._send("GET", f"/operations/{_id_segment(operation_id)}/metrics", params=params)
        if not response.is_success or not response.headers.get("content-type", "").startswith("text/csv"):
            self._data(response)  # raises the error the server answered
        return response.text

    def delete_operation(self, operation_id: str) -> DeletedOperation:
        # not retried once it may have arrived: a repeat after a lost answer would say 404 for a run it deleted
        data = self._call(
            "DELETE", f"/operations/{_id_segment(operation_id)}", params={"purge": "true"}, idempotent=False
        )
        return DeletedOperation.model_validate(data)

    def events(
        self, operation_id: str, *, last_event_id: str | None = None, points: int | None = None
    ) -> Iterator[OperationEvent]:
        """As :meth:`TrainOps.events`, read from the server-sent events stream. A connection that drops (or a
        server that closes the stream before the end, as a restarting one does) is reopened with the last event's
        id after the usual back-off, up to :attr:`retries` times in a row."""
        last = last_event_id
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last} if last else {})}
            params = {"points": points} if points is not None else None
            response = self._send(
                "GET", f"/operations/{_id_segment(operation_id)}/events", params=params, headers=headers, stream=True
            )
            with self._streams_lock:
                self._streams.add(response)
            try:
                if response.status_code == 204 or self._closing.is_set():  # 204: the operation ended, all seen
                    return
                if not response.is_success:
                    response.read()
                    self._data(response)  # raises the server's error
                for event in _server_sent_events(response.iter_lines()):
                    last, failures = event.id, 0
                    yield event
                    if event.event == "diagnosis":
                        return
                problem = "the server closed the event stream before the operation ended"
            except (httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError) as error:
                problem = f"the event stream broke ({type(error).__name__}: {error})"
            finally:
                with self._streams_lock:
                    self._streams.discard(response)
                response.close()
            if self._closing.is_set():  # close() on another thread ended the stream: so ends its reader
                return
            if failures >= self.retries:
                raise ServiceUnavailableError(
                    f"{problem}; follow operation {operation_id} again with events(last_event_id={last!r})",
                    details={"operation_id": operation_id, "last_event_id": last},
                )
            time.sleep(self.backoff * 2**failures)
            failures += 1

    def diagnose(
        self,
        operation_id: str,
        policy: MonitorPolicy | dict[str, Any] | None = None,
        *,
        total_epochs_planned: int | None = None,
    ) -> Replay:
        checked = policy_of(policy)
        given = {"policy": checked, "total_epochs_planned": total_epochs_planned}
        body = _request(DiagnoseRequest, **{name: value for name, value in given.items() if value is not None})
        # only the fields the caller chose: a server of another version fills in the rest. Not "those off their
        # defaults": a monitor chosen at its default (val_loss) left out would read as "the task's primary metric"
        data = self._call("POST", f"/operations/{_id_segment(operation_id)}/diagnose", body=body, exclude_unset=True)
        return Replay.model_validate(data)

    def get_results(self, operation_id: str) -> OperationResults:
        return OperationResults.model_validate(self._call("GET", f"/operations/{_id_segment(operation_id)}/results"))

    def get_metric_definitions(self, task: TaskType | str | None = None) -> MetricDefinitions:
        return MetricDefinitions.model_validate(self._call("GET", "/metrics/definitions", params={"task": task}))

    def close(self) -> None:
        """Close the connections; an events iterator another thread is reading ends (its blocked read is woken
        by shutting its socket down)."""
        self._closing.set()
        with self._streams_lock:
            streams = list(self._streams)
        for response in streams:
            network = response.extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._http.close()

    # -- strategy training ----------------------------------------------------------------------------------

    def start_training(self, request: TrainingRequest) -> TrainingStarted:
        data = self._call("POST", "/training/start", body=request, exclude_none=True, idempotent=False)
        return TrainingStarted.model_validate(data)

    def get_training_status(self, task_id: str) -> TrainingStatus:
        return TrainingStatus.model_validate(self._call("GET", f"/training/{_id_segment(task_id)}"))

    def get_training_performance(self, task_id: str) -> TrainingPerformance:
        return TrainingPerformance.model_validate(self._call("GET", f"/training/{_id_segment(task_id)}/performance"))

    def list_data(self) -> list[DataFile]:
        return [DataFile.model_validate(item) for item in self._call("GET", "/data")]

    def list_strategies(self) -> list[StrategySummary]:
        return [StrategySummary.model_validate(item) for item in self._call("GET", "/strategies")]

    def validate_strategy(self, strategy: dict[str, Any] | str) -> StrategyValidation:
        if isinstance(strategy, str):
            body = _request(ValidateRequest, yaml=strategy)
        else:
            body = _request(ValidateRequest, config=_free_form(strategy, "config"))
        data = self._call("POST", "/strategies/validate", body=body, exclude_none=True)
        return StrategyValidation.model_validate(data)

    def download_data(self, symbol: str, timeframe: str, destination: str | os.PathLike[str]) -> Path:
        """As :meth:`TrainOps.download_data`: the SHA-256 of a copy already in ``destination`` goes as
        ``If-None-Match``, so an unchanged file costs a 304; a changed one is streamed to disk and checked against
        the ETag."""
        base = data_directory(destination)
        cached = {f'"{file_sha256(path)}"': path for path in cached_data_files(base, symbol, timeframe)}
        headers = {"If-None-Match": ", ".join(cached)} if cached else None
        path = f"/data/{_segment(symbol)}/{_segment(timeframe)}"
        response = self._send("GET", path, headers=headers, stream=True)
        try:
            if response.status_code == 304 and response.headers.get("etag") in cached:
                kept = cached[response.headers["etag"]]
                drop_other_formats(kept)
                return kept
            if not response.is_success:
                response.read()
                self._data(response)  # raises the error the server answered
            disposition = response.headers.get("content-disposition", "")
            name = disposition.partition('filename="')[2].partition('"')[0]
            target = data_file_target(base, name)
            fmt = data_format_of(response.headers.get("content-type", ""))
            if fmt is None or target.suffix != f".{fmt}":
                raise TrainOpsError(
                    f"the server at {self.url} sent {name!r} as {response.headers.get('content-type')!r}, not a "
                    "market data file; is it a trainops server?"
                )
            etag = response.headers.get("etag", "").strip('"')
            length = response.headers.get("content-length")
            chunks = response.iter_bytes(_CHUNK_BYTES)
            write_verified(
                target, chunks, name, sha256=etag if len(etag) == 64 else None, size=int(length) if length else None
            )
            drop_other_formats(target)
            return target
        except httpx.TransportError as error:
            raise ServiceUnavailableError(
                f"the download of {symbol} {timeframe} from {self.url} broke off ({type(error).__name__}: {error}); "
                "nothing was written, try again",
                details={"url": self.url},
            ) from None
        finally:
            response.close()

    # -- model registry -------------------------------------------------------------------------------------

    def upload_model_version(self, task_id: str, version_dir: str | os.PathLike[str]) -> StoredModelVersion:
        """As :meth:`TrainOps.upload_model_version`: the version goes as one tar archive streamed from a temporary
        file, sent again from its start when a retry is needed (the server stores a training's version once)."""
        with packed_version(version_dir) as archive, archive.open("rb") as handle:
            data = self._call("POST", "/models/versions", params={"task_id": task_id}, upload=handle)
        return StoredModelVersion.model_validate(data)

    def save_model(self, request: SaveModelRequest) -> SavedModel:
        data = self._call("POST", "/models/save", body=request, idempotent=False)
        return SavedModel.model_validate(data)

    def list_models_page(
        self,
        *,
        symbol: str | None = None,
        timeframe: str | None = None,
        strategy: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ModelList:
        params = {"symbol": symbol, "timeframe": timeframe, "strategy": strategy, "limit": limit, "cursor": cursor}
        return ModelList.model_validate(self._call("GET", "/models", params=params))

    def get_model(self, model_name: str) -> ModelSummary:
        return ModelSummary.model_validate(self._call("GET", f"/models/{_segment(model_name)}"))

    def load_model(self, model_name: str) -> LoadedModel:
        return LoadedModel.model_validate(self._call("POST", f"/models/{_segment(model_name)}/load"))

    def predict(self, request: PredictRequest) -> PredictionAnswer | RangePredictionAnswer:
        data = self._call("POST", "/models/predict", body=request, exclude_none=True)
        if "predictions" in data:
            return RangePredictionAnswer.model_validate(data)
        return PredictionAnswer.model_validate(data)

    def delete_model(self, model_name: str) -> ModelSummary:
        data = self._call("DELETE", f"/models/{_segment(model_name)}")
        return ModelSummary.model_validate(data)

    # -- artifacts ------------------------------------------------------------------------------------------

    def upload_artifact(self, operation_id: str, artifact_path: str, source: str | os.PathLike[str]) -> ArtifactInfo:
        """As :meth:`TrainOps.upload_artifact`: the file is streamed from disk as the request body (never read
        whole into memory), and sent again from its start when a retry is needed (storing it twice is harmless:
        the second replaces the first). A bad name is refused here, before a byte is sent. A file still being
        written (a log) is sent as far as it reached when the upload began, its size then declared as the
        request's Content-Length; one that shrinks meanwhile is an :class:`InvalidInputError`, and nothing is
        stored."""
        checked = check_artifact_path(artifact_path)
        path = f"/operations/{_id_segment(operation_id)}/artifacts"
        with local_file(source).open("rb") as handle:
            data = self._call("POST", path, params={"path": checked}, upload=handle)
        return ArtifactInfo.model_validate(data)

    def list_artifacts(self, operation_id: str) -> list[ArtifactInfo]:
        data = self._call("GET", f"/operations/{_id_segment(operation_id)}/artifacts")
        return [ArtifactInfo.model_validate(item) for item in data]

    def download_artifact(self, operation_id: str, artifact_path: str, destination: str | os.PathLike[str]) -> Path:
        """As :meth:`TrainOps.download_artifact`: streamed to disk, checked against the ETag (the SHA-256)."""
        target = download_target(destination, artifact_path)
        path = f"/operations/{_id_segment(operation_id)}/artifacts/{quote(artifact_path, safe='/')}"
        response = self._send("GET", path, stream=True)
        try:
            if not response.is_success:
                response.read()
                self._data(response)  # raises the error the server answered
            etag = response.headers.get("etag", "").removeprefix("W/").strip('"')
            length = response.headers.get("content-length")
            chunks = response.iter_bytes(_CHUNK_BYTES)
            sha256 = etag if len(etag) == 64 else None
            return write_verified(target, chunks, artifact_path, sha256=sha256, size=int(length) if length else None)
        except httpx.TransportError as error:
            raise ServiceUnavailableError(
                f"the download of artifact {artifact_path!r} from {self.url} broke off ({type(error).__name__}: "
                f"{error}); nothing was written, try again",
                details={"url": self.url},
            ) from None
        finally:
            response.close()


def _first_bytes(handle: BinaryIO, size: int) -> Iterator[bytes]:
    """The next ``size`` bytes of ``handle``, a chunk at a time; what the file gains meanwhile is left out.

    Raises:
        InvalidInputError: the file ends before: it shrank (was rewritten) while it was sent. The request breaks
            off unfinished, so the server stores nothing.
    """
    left = size
    while left:
        chunk = handle.read(min(_CHUNK_BYTES, left))
        if not chunk:
            name = getattr(handle, "name", "the file")
            raise InvalidInputError(
                f"{str(name)!r} shrank while it was being sent: it ended after {size - left:,} of the {size:,} "
                "bytes it had when the upload began (rewritten meanwhile?); nothing was stored: send it again once "
                "it is written",
                details={"path": str(name), "size": size, "sent": size - left},
            )
        left -= len(chunk)
        yield chunk


def _header_token(token: str | None) -> str | None:
    """The API token as an ``Authorization`` header carries it: without the spaces and line end around it (a token
    read from a file keeps its newline).

    Raises:
        ConfigurationError: a character no header can carry; the message does not repeat the token.
    """
    if token is None:
        return None
    token = token.strip()
    if not (token.isascii() and token.isprintable()):
        raise ConfigurationError(
            "the API token holds a character an HTTP header cannot carry (beyond ASCII, or a control character); "
            "give the token exactly as the server's TRAINOPS_API_TOKEN is set"
        )
    return token


def _id_segment(operation_id: str) -> str:
    """An operation id as one path segment. No URL can carry an id holding ``/`` (the server reads ``%2F`` as
    ``/``) or a dot segment, nor one of megabytes, and no operation has one: not found, as the local database
    answers."""
    if "/" in operation_id or operation_id in ("", ".", "..") or len(operation_id) > MAX_OPERATION_ID_LENGTH:
        raise operation_not_found(operation_id)
    return _segment(operation_id)


def _segment(value: str) -> str:
    """One path segment: a name like ``../x`` stays a (refused) name instead of moving up the URL."""
    return quote(value, safe="")


def _server_sent_events(lines: Iterable[str]) -> Iterator[OperationEvent]:
    """The events of an SSE stream's lines, parsed as the HTML standard says (9.2.6): ``field: value`` lines
    (one optional space after the colon), comments starting with ``:`` ignored, ``data`` lines joined by newlines,
    an event dispatched at a blank line; an unfinished event at the end is dropped."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield OPERATION_EVENT.validate_json("\n".join(data))
            data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value.removeprefix(" "))
