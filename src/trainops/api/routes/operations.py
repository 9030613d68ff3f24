"""``/operations``: register, list, inspect, report into, cancel and finish operations."""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ConfigDict

from trainops.api.deps import ExecutorDep, JsonBody, ServiceDep, SettingsDep, call_blocking, call_service
from trainops.api.etags import if_none_match_matches
from trainops.api.openapi import DATABASE_ERRORS, errors
from trainops.api.responses import Envelope, ErrorEnvelope, WriteEnvelope, envelope
from trainops.api.routes.artifacts import ArtifactsDep
from trainops.core.diagnosis import OperationMetrics
from trainops.core.epoch import MAX_EPOCH, MAX_STEP, EpochRecord
from trainops.core.listing import MAX_SEARCH_LENGTH
from trainops.core.operation import (
    MAX_OPERATION_ID_LENGTH,
    OPERATION_TYPE_PATTERN,
    UNSET,
    Operation,
    OperationStatus,
    WriteAck,
)
from trainops.core.policy import MonitorPolicy, PolicyText
from trainops.core.progress import ProgressState
from trainops.core.replay import Replay
from trainops.core.steps import StepRecord, StepSeries
from trainops.core.thinning import MAX_DISPLAY_POINTS, MIN_DISPLAY_POINTS
from trainops.errors import InvalidInputError
from trainops.executors.base import Executor
from trainops.schemas.operations import (
    MAX_EPOCHS_PER_WRITE,
    MAX_LIST_OFFSET,
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
from trainops.schemas.steps import MAX_STEPS_PER_WRITE, StepBatch
from trainops.service.deletion import delete_operation
from trainops.service.export import CSV_MEDIA_TYPE, ExportFormat, epochs_csv
from trainops.service.operations import (
    ListFilters,
    OperationsService,
    check_epoch_range,
    epochs_in_range,
    policy_key,
)

router = APIRouter(prefix="/operations", tags=["operations"], responses=DATABASE_ERRORS)

OperationId = Annotated[
    str,
    Path(description="operation id, e.g. op_training_20250610_123456_ab12cd34", max_length=MAX_OPERATION_ID_LENGTH),
]


def _one_or_batch_body(item: str, batch: str, field: str, most: int, examples: dict[str, object]) -> dict[str, object]:
    """The OpenAPI request body of a route that takes one ``item`` or ``{field: [item, ...]}``, written out: the
    batch models appear in no route's signature (the body is parsed by hand, to accept either), so OpenAPI has no
    component to point to."""
    items = {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}, "maxItems": most}
    batch_schema = {
        "title": batch,
        "type": "object",
        "properties": {field: items},
        "required": [field],
        "additionalProperties": False,
    }
    schema = {"oneOf": [{"$ref": f"#/components/schemas/{item}"}, batch_schema]}
    named = {name: {"value": value} for name, value in examples.items()}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema, "examples": named}}}}


_EPOCH_BODY_SCHEMA = _one_or_batch_body(
    "EpochRecord",
    "EpochBatch",
    "epochs",
    MAX_EPOCHS_PER_WRITE,
    {
        "one epoch": {"epoch": 3, "train_loss": 0.52, "val_loss": 0.59, "f1": 0.71},
        "a batch": {"epochs": [{"epoch": 0, "val_loss": 0.9}, {"epoch": 1, "val_loss": 0.8}]},
        "diverged": {"epoch": 7, "train_loss": "NaN", "val_loss": "Infinity"},
    },
)
_STEP_BODY_SCHEMA = _one_or_batch_body(
    "StepRecord",
    "StepBatch",
    "steps",
    MAX_STEPS_PER_WRITE,
    {
        "one step": {"step": 1200, "epoch": 3, "loss": 0.41, "lr": 0.001},
        "a batch": {"steps": [{"step": 10, "loss": 0.9}, {"step": 20, "loss": 0.8}]},
    },
)

_ENDED = "the operation already ended (completed, failed or cancelled)"

SinceStep = Annotated[int | None, Query(ge=-1, le=MAX_STEP, description="only steps after this one")]
DisplayPoints = Annotated[
    int | None,
    Query(
        ge=MIN_DISPLAY_POINTS,
        le=MAX_DISPLAY_POINTS,
        description="thin the epochs for display to at most this many (first, last, best epoch and every metric's "
        "min and max per bucket kept); the stored history and the diagnosis stay whole",
    ),
]
FromEpoch = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_EPOCH,
        description="only epochs from this one on (inclusive; at most to_epoch): with to_epoch, a range of the "
        "history, e.g. the one a chart zoomed into; points then thins within it",
    ),
]
ToEpoch = Annotated[
    int | None,
    Query(ge=0, le=MAX_EPOCH, description="only epochs up to this one (inclusive; at least from_epoch)"),
]
StepMetric = Annotated[
    str | None, Query(max_length=128, description="only the points that report this metric, with it alone")
]


class PolicyQuery(PolicyText):
    """:class:`MonitorPolicy` read from the query string: every field is a query parameter with its description,
    bounds and default. Query parameters that are not the policy's (``since_epoch``, a cache buster) are left to
    others instead of refused."""

    model_config = ConfigDict(frozen=True, extra="ignore")


async def monitor_policy(query: Annotated[PolicyQuery, Query()]) -> MonitorPolicy:
    """Diagnosis parameters from the query string; any left out keep their defaults (and stay unset, so
    :func:`~trainops.core.policy.check_monitor` knows a ``monitor`` chosen from one left to its default)."""
    return query.policy()


PolicyDep = Annotated[MonitorPolicy, Depends(monitor_policy)]


@router.post(
    "",
    status_code=201,
    response_model=Envelope[Operation],
    responses=errors(409, s409="an operation with the operation_id asked for exists"),
)
async def create_operation(request: CreateOperationRequest, service: ServiceDep) -> Response:
    """Register an operation that a training script outside trainops runs (it then posts progress and
    metrics here). Answers 201 with the pending operation; 409 when the ``operation_id`` asked for is taken (by
    an earlier try of the same request whose answer was lost, or by another run)."""
    # Operations registered over the API are run by whoever registered them; only trainops' own executors
    # may claim "local" or "ray" (whose runs are failed when their worker process is found gone).
    metadata = request.metadata.model_copy(update={"executor": "external"})
    create = partial(
        service.create,
        request.operation_type,
        metadata=metadata,
        total_epochs=request.total_epochs,
        name=request.name,
        tags=request.tags,
        notes=request.notes,
        operation_id=request.operation_id,
        started_at=request.started_at,
    )
    operation = await call_blocking(create)
    return envelope(operation, status_code=201)


LIST_PARAMETERS = (
    "status",
    "operation_type",
    "active_only",
    "name",
    "tag",
    "q",
    "strategy",
    "symbol",
    "timeframe",
    "created_after",
    "created_before",
    "sort",
    "order",
    "limit",
    "offset",
    "cursor",
    "include",
)
"""The query parameters ``GET /operations`` takes: any other is refused, never silently ignored."""


def _known_parameters(request: Request) -> None:
    unknown = sorted({name for name in request.query_params if name not in LIST_PARAMETERS})
    if unknown:
        raise InvalidInputError(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(repr(n[:64]) for n in unknown)} "
            f"for GET /operations; it takes: {', '.join(LIST_PARAMETERS)}",
            details={"unknown": [name[:64] for name in unknown], "accepted": list(LIST_PARAMETERS)},
        )


@router.get(
    "",
    response_model=Envelope[ListedOperationPage],
    dependencies=[Depends(_known_parameters)],
    responses={304: {"description": "nothing the query lists changed since the ETag sent in If-None-Match"}},
)
async def list_operations(
    request: Request,
    service: ServiceDep,
    *,  # the list filters have a factory, not a default, so they may follow those that have one
    status: Annotated[list[OperationStatus], Query(default_factory=list, description="repeat to match several")],
    operation_type: Annotated[str | None, Query(pattern=OPERATION_TYPE_PATTERN, description="e.g. training")] = None,
    active_only: Annotated[bool, Query(description="only pending and running")] = False,
    name: Annotated[str | None, Query(max_length=512, description="the run's name, whole, ignoring case")] = None,
    tag: Annotated[
        list[str], Query(default_factory=list, description="runs having this tag; repeat it for runs having all")
    ],
    q: Annotated[
        str | None,
        Query(
            max_length=MAX_SEARCH_LENGTH,
            description="text found (ignoring case) in the name, id, notes, strategy, task, symbol or a tag",
        ),
    ] = None,
    strategy: Annotated[str | None, Query(max_length=1024, description="metadata.strategy, exactly")] = None,
    symbol: Annotated[str | None, Query(max_length=256, description="metadata.symbol, exactly")] = None,
    timeframe: Annotated[str | None, Query(max_length=64, description="metadata.timeframe, exactly")] = None,
    created_after: Annotated[
        datetime | None, Query(description="created at or after this time (ISO 8601 with a time zone)")
    ] = None,
    created_before: Annotated[
        datetime | None, Query(description="created before this time (ISO 8601 with a time zone)")
    ] = None,
    sort: Annotated[
        str,
        Query(
            max_length=256,
            description="created (newest first), duration (longest first) or best:<metric> (each run's best value "
            "of the metric, best first: lowest for a loss, highest for a score, per its definition); runs without "
            "the value come last",
        ),
    ] = "created",
    order: Annotated[Literal["asc", "desc"] | None, Query(description="overrides the sort's direction")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_LIST_OFFSET)] = 0,
    cursor: Annotated[
        str | None,
        Query(max_length=2048, description="the next_cursor of the previous page (same filters and sort)"),
    ] = None,
    include: Annotated[
        list[Literal["best"]],
        Query(
            default_factory=list,
            description="best: add each operation's best value of its primary metric (`best`, one query)",
        ),
    ],
) -> Response:
    """Operations matching every filter given, newest first (or as ``sort`` and ``order`` say), with the total and
    active counts of everything that matches, and ``next_cursor``: pass it as ``cursor`` for the next page (null
    on the last), which never skips nor repeats a run while others are created. An unknown query parameter is a
    422 listing those accepted. With ``include=best`` each one also has ``best``: ``{"metric", "mode", "value",
    "epoch"}``, the best value of the metric it is judged by (the task's primary metric, else ``val_loss``), or
    null before it reported one.

    Poll with ``If-None-Match`` and the last (weak) ETag: while no run the query matches was added, deleted or
    written (a heartbeat alone is not a change), the answer is a 304 with no body, read from one aggregate query."""
    filters: ListFilters = {
        "status": status,
        "operation_type": operation_type,
        "active_only": active_only,
        "name": name,
        "tags": tag,
        "q": q,
        "strategy": strategy,
        "symbol": symbol,
        "timeframe": timeframe,
        "created_after": created_after,
        "created_before": created_before,
    }
    # Read before the page: a write between the two gives a page newer than its tag, so the next poll gets the
    # page again (never the reverse: a tag that claims a page it does not hold)
    tag_ = _list_etag(request, (await call_service(service, partial(service.list_version, **filters))).key)
    headers = {"ETag": tag_, "Cache-Control": "no-cache"}
    if if_none_match_matches(request.headers.get("if-none-match"), tag_):
        return Response(status_code=304, headers=headers)
    query = partial(
        service.list_operations,
        **filters,
        limit=limit,
        offset=offset,
        sort=sort,
        order=order,
        cursor=cursor,
    )
    if not include:
        if sort.startswith("best:"):  # ranks the matching runs' epochs: not a quick read
            return envelope(await call_blocking(query), headers=headers)
        return envelope(await call_service(service, query), headers=headers)

    def with_best() -> dict[str, object]:
        page = query()
        best = service.best_values(page.items)
        payload = page.model_dump(mode="json")
        for item in payload["items"]:
            found = best.get(item["operation_id"])
            item["best"] = found.model_dump(mode="json") if found is not None else None
        return payload

    # on a poll, one cheap read of the versions; ranking the epochs of runs that changed is not a quick read
    return envelope(await call_blocking(with_best), headers=headers)


def _list_etag(request: Request, version: str) -> str:
    """A weak ETag of one list query: its parameters (in any order) and what its matching runs are now. Weak: a
    heartbeat changes a run's ``last_heartbeat`` and not the tag, the list is the same for anyone reading it."""
    parameters = "&".join(sorted(f"{key}={value}" for key, value in request.query_params.multi_items()))
    digest = hashlib.blake2b(f"list|{parameters}|{version}".encode(), digest_size=12).hexdigest()
    return f'W/"{digest}"'


@router.get("/{operation_id}", response_model=Envelope[OperationDetail])
async def get_operation(
    operation_id: OperationId,
    service: ServiceDep,
    executor: ExecutorDep,
    include_metrics: Annotated[bool, Query(description="add the metrics block")] = False,
) -> Response:
    """One operation: status, progress, metadata, cancel request, result or error; and ``job``, what the executor
    running it knows when that says more (a Ray job pending for resources, or failed before it reported)."""
    operation = await call_service(service, partial(service.get, operation_id))
    job = await _job_of(operation, executor)
    if not include_metrics and job is None:
        return envelope(operation)
    payload = operation.model_dump(mode="json")
    if job is not None:
        payload["job"] = job.model_dump(mode="json")
    if not include_metrics:
        return envelope(payload)
    metrics = await call_blocking(partial(service.metrics, operation_id))
    payload["metrics"] = metrics.metrics.model_dump(mode="json")
    return envelope(payload)


@router.patch("/{operation_id}", response_model=WriteEnvelope[Operation])
async def update_operation(operation_id: OperationId, body: UpdateOperationRequest, service: ServiceDep) -> Response:
    """Rename, tag, annotate a run or change its metadata, in any status: ``{"name": "lr sweep", "tags": ["a"],
    "notes": "...", "metadata": {"mlflow_run_id": "6f1c..."}}``; fields left out stay as they are. ``name``,
    ``tags`` or ``notes`` sent as ``null`` are cleared; ``tags`` replaces them all, ``add_tags`` and
    ``remove_tags`` change some. Each ``metadata`` field replaces the stored value of its name (a mapping such as
    ``parameters`` is replaced whole); ``null`` removes a field; ``executor`` and ``worker`` are trainops' own and
    refused (422), as is an update that would grow a run's metadata past 8 MiB of JSON."""
    sent = body.model_fields_set
    update = partial(
        service.update_operation,
        operation_id,
        metadata=body.metadata,
        name=body.name if "name" in sent else UNSET,
        tags=body.tags if "tags" in sent else UNSET,
        add_tags=body.add_tags or (),
        remove_tags=body.remove_tags or (),
        notes=body.notes if "notes" in sent else UNSET,
    )
    operation = await call_blocking(update)
    return envelope(operation, cancel=_ack_of(operation))


@router.delete(
    "/{operation_id}",
    response_model=WriteEnvelope[Operation] | Envelope[DeletedOperation],
    responses={
        200: {"description": "without purge: the operation with its cancel request; with purge=true: what was removed"},
        404: {"description": "no such operation (a second purge included)", "model": ErrorEnvelope},
        409: {
            "description": "without purge: it already ended; with purge=true: it is still pending or running "
            "(cancel it first)",
            "model": ErrorEnvelope,
        },
    },
)
async def cancel_operation(
    operation_id: OperationId,
    service: ServiceDep,
    executor: ExecutorDep,
    settings: SettingsDep,
    artifacts: ArtifactsDep,
    body: Annotated[CancelRequestBody | None, Body()] = None,
    reason: Annotated[str | None, Query(description="for clients that cannot send a DELETE body")] = None,
    purge: Annotated[
        bool,
        Query(
            description="delete the ended run for good instead of cancelling: its history, artifacts, worker log "
            "and unnamed model version (named models made from it stay, marked source_deleted); send no reason"
        ),
    ] = False,
) -> Response:
    """Without ``purge``: ask an operation to stop, with a reason (``{"reason": "..."}`` or ``?reason=``). A
    pending one is cancelled at once; a running one stops at its trainer's next check and ends ``cancelled``. 409
    if it already ended.

    With ``purge=true``: delete an ended run (completed, failed or cancelled) with everything only it holds, and
    answer what was removed (``DeletedOperation``). A pending or running one is refused with 409 and nothing is
    lost: cancel it first, then delete it once it ended. Named models saved from the run stay and report
    ``source_deleted: true``. A second delete is a 404."""
    if purge:
        if body is not None or reason is not None:
            raise InvalidInputError(
                "purge=true deletes the run and takes no reason: send no body and no ?reason= "
                "(or leave purge out to cancel the run with that reason)",
                details={"purge": True},
            )
        removal = partial(delete_operation, operation_id, operations=service, artifacts=artifacts, settings=settings)
        return envelope(await call_blocking(removal))
    if body is not None and reason is not None:
        raise InvalidInputError(
            'send the reason once: in the body ({"reason": "..."}) or as ?reason=, not both',
            details={"reason": reason[:200]},
        )
    given = body.reason if body else reason
    if not given:
        raise InvalidInputError('cancelling needs a reason: send {"reason": "..."} (or ?reason=...)')
    requested_by = body.requested_by if body else "user"
    operation = await _cancel(service, executor, operation_id, given, requested_by)
    return envelope(operation, cancel=_ack_of(operation))


@router.post("/{operation_id}/cancel", response_model=WriteEnvelope[Operation], responses=errors(409, s409=_ENDED))
async def cancel_operation_post(
    operation_id: OperationId, body: CancelRequestBody, service: ServiceDep, executor: ExecutorDep
) -> Response:
    """The same as ``DELETE /operations/{id}``, for clients that cannot send a body with DELETE."""
    operation = await _cancel(service, executor, operation_id, body.reason, body.requested_by)
    return envelope(operation, cancel=_ack_of(operation))


async def _cancel(
    service: OperationsService, executor: Executor, operation_id: str, reason: str, requested_by: str
) -> Operation:
    """Record the cancel. A pending operation ends cancelled at once; its job, already handed to this server's
    executor (a Ray job waiting for resources), is stopped too, so it never starts. A running one stops at its
    next batch, or is stopped by force once ``TRAINOPS_CANCEL_GRACE`` has passed (the reaper)."""
    was = await call_service(service, partial(service.get, operation_id))
    operation = await call_blocking(partial(service.cancel, operation_id, reason, requested_by=requested_by))
    if was.status is OperationStatus.PENDING and was.metadata.executor == executor.name:
        await call_blocking(partial(executor.cancel, operation_id, reason))
    return operation


async def _job_of(operation: Operation, executor: Executor) -> ExecutorJob | None:
    """The executor's view of the operation's job, when this server's executor runs it."""
    if operation.metadata.executor != executor.name:
        return None
    return await call_blocking(partial(executor.view, operation.operation_id))


@router.get(
    "/{operation_id}/results",
    response_model=Envelope[OperationResults],
    responses=errors(409, s409="the operation has not ended yet"),
)
async def get_results(operation_id: OperationId, service: ServiceDep) -> Response:
    """What a finished operation produced; 409 while it still runs."""
    return envelope(await call_blocking(partial(service.results, operation_id)))


@router.post("/{operation_id}/start", response_model=WriteEnvelope[Operation], responses=errors(409, s409=_ENDED))
async def start_operation(
    operation_id: OperationId, service: ServiceDep, body: Annotated[StartRequest | None, Body()] = None
) -> Response:
    """Mark a pending operation running (posting progress or metrics does this too)."""
    worker = body.worker if body else None
    operation = await call_blocking(partial(service.start, operation_id, worker=worker))
    return envelope(operation, cancel=_ack_of(operation))


@router.post("/{operation_id}/progress", response_model=WriteEnvelope[WriteAck], responses=errors(409, s409=_ENDED))
async def report_progress(operation_id: OperationId, state: ProgressState, service: ServiceDep) -> Response:
    """Where the job is now. Throttled per operation; phase changes and epoch ends are always stored."""
    ack = await call_blocking(partial(service.report_progress, operation_id, state))
    return envelope(ack, cancel=ack)


@router.post("/{operation_id}/heartbeat", response_model=WriteEnvelope[WriteAck], responses=errors(409, s409=_ENDED))
async def heartbeat(operation_id: OperationId, service: ServiceDep) -> Response:
    """I am alive; answers whether a stop was requested."""
    ack = await call_blocking(partial(service.heartbeat, operation_id))
    return envelope(ack, cancel=ack)


@router.post(
    "/{operation_id}/metrics",
    response_model=WriteEnvelope[WriteAck],
    openapi_extra=_EPOCH_BODY_SCHEMA,
    responses=errors(409, s409=_ENDED),
)
async def add_metrics(operation_id: OperationId, payload: JsonBody, service: ServiceDep) -> Response:
    """One epoch record, or ``{"epochs": [...]}``. Re-sending an epoch replaces it. NaN and infinities are
    accepted as ``"NaN"``/``"Infinity"``/``"-Infinity"`` (or bare literals) and kept: they signal divergence."""
    if isinstance(payload, dict) and "epochs" in payload:
        records = EpochBatch.model_validate(payload).epochs
    elif isinstance(payload, dict):
        records = [EpochRecord.model_validate(payload)]
    else:
        raise InvalidInputError('send one epoch record {"epoch": 0, ...} or {"epochs": [...]}')
    ack = await call_blocking(partial(service.add_epochs, operation_id, records))
    return envelope(ack, cancel=ack)


@router.post(
    "/{operation_id}/steps",
    response_model=WriteEnvelope[WriteAck],
    openapi_extra=_STEP_BODY_SCHEMA,
    responses=errors(409, s409=_ENDED),
)
async def add_steps(operation_id: OperationId, payload: JsonBody, service: ServiceDep) -> Response:
    """One point of the per-step (batch) series, or ``{"steps": [...]}``. Re-sending a step replaces it; NaN and
    infinities are kept. A run keeps at most ``TRAINOPS_MAX_STEP_POINTS`` points (older ones evenly thinned),
    and ``accepted`` counts the points received, kept or thinned."""
    if isinstance(payload, dict) and "steps" in payload:
        points = StepBatch.model_validate(payload).steps
    elif isinstance(payload, dict):
        points = [StepRecord.model_validate(payload)]
    else:
        raise InvalidInputError('send one step point {"step": 0, ...} or {"steps": [...]}')
    ack = await call_blocking(partial(service.add_steps, operation_id, points))
    return envelope(ack, cancel=ack)


@router.get("/{operation_id}/steps", response_model=Envelope[StepSeries])
async def get_steps(
    operation_id: OperationId, service: ServiceDep, since_step: SinceStep = None, metric: StepMetric = None
) -> Response:
    """The per-step (batch) series, oldest first: at most ``max_points`` points, the older ones evenly thinned
    once a run outgrew it (``thinned``), the latest step always kept. Poll with ``since_step`` for new points."""
    return envelope(await call_blocking(partial(service.steps, operation_id, since_step=since_step, metric=metric)))


@router.post("/{operation_id}/complete", response_model=WriteEnvelope[Operation], responses=errors(409, s409=_ENDED))
async def complete_operation(operation_id: OperationId, body: CompleteRequest, service: ServiceDep) -> Response:
    """End the operation as completed, failed (with ``error``) or cancelled, with its result summary."""
    finish = partial(service.finish, operation_id, OperationStatus(body.status), result=body.result, error=body.error)
    operation = await call_blocking(finish)
    return envelope(operation, cancel=_ack_of(operation))


@router.get(
    "/{operation_id}/metrics",
    response_model=Envelope[OperationMetrics] | Envelope[StepSeries],
    responses={
        200: {
            "description": "format=json: the history and its diagnosis (series=steps: the per-step series); "
            "format=csv: every stored epoch as a CSV file",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        304: {"description": "unchanged since the ETag sent in If-None-Match"},
    },
)
async def get_metrics(
    operation_id: OperationId,
    request: Request,
    service: ServiceDep,
    policy: PolicyDep,
    since_epoch: Annotated[int | None, Query(ge=-1, le=MAX_EPOCH, description="only epochs after this one")] = None,
    series: Annotated[
        Literal["epochs", "steps"],
        Query(description="epochs: the history and its diagnosis; steps: the per-step series"),
    ] = "epochs",
    since_step: SinceStep = None,
    metric: StepMetric = None,
    points: DisplayPoints = None,
    from_epoch: FromEpoch = None,
    to_epoch: ToEpoch = None,
    format_: Annotated[
        ExportFormat,
        Query(
            alias="format",
            description="json: the history and its diagnosis; csv: every stored epoch (after since_epoch) as a file, "
            "one row per epoch, never thinned",
        ),
    ] = "json",
) -> Response:
    """The per-epoch history (oldest first) and the diagnosis over all of it: best epoch, epochs since
    improvement, overfitting, plateau, divergence, trend, signals with evidence and a recommendation.

    ``format=csv`` answers the stored epochs as a CSV download (``text/csv``, named ``<operation id>.csv``),
    streamed: columns ``epoch, step, timestamp, duration, train_loss, val_loss, train_accuracy, val_accuracy,
    learning_rate``, then every custom metric, sorted; empty cells for values an epoch did not report; NaN and
    infinities as ``nan``, ``inf``, ``-inf``. ``since_epoch`` applies; ``points`` and the diagnosis parameters do
    not (an export is never thinned), and are refused with 422.

    Poll with ``since_epoch`` for new epochs only, and ``If-None-Match`` with the last ETag: an unchanged
    history answers 304 with no body. ``points=N`` thins a longer history for a chart to at most N epochs
    (``thinned`` says it was; ``epochs_stored`` counts the stored ones), never the stored data nor the
    diagnosis. ``series=steps`` answers the per-step series instead, as ``GET /operations/{id}/steps`` does
    (with ``since_step`` and ``metric``).

    ``from_epoch`` and ``to_epoch`` (inclusive, each optional, integers >= 0, ``from_epoch`` at most
    ``to_epoch``, else 422) answer only the epochs between them, the diagnosis still over the whole history: a
    chart zoomed into epochs 2895-2923 of a thinned 5,000-epoch run asks for those at full resolution. With
    ``points``, the range is thinned, not the history; with ``since_epoch``, both apply; ``format=csv`` exports
    only the range. Each range has its own ETag."""
    check_epoch_range(from_epoch, to_epoch)  # a 422 before anything is read, a 304 included
    if format_ == "csv":
        return await _epochs_csv(
            operation_id, request, service, policy, since_epoch, series, points, (from_epoch, to_epoch)
        )
    if series == "steps":
        _only_for_steps(policy, since_epoch, points, from_epoch, to_epoch)
        steps = partial(service.steps, operation_id, since_step=since_step, metric=metric)
        return envelope(await call_blocking(steps), headers={"Cache-Control": "no-cache"})
    if since_step is not None or metric is not None:
        raise InvalidInputError(
            "since_step and metric select points of the per-step series: add series=steps, "
            "or use since_epoch for the epochs",
            details={"series": series},
        )
    # The polling hot path runs on the event loop: one indexed single-row read for the version, then memory.
    # Only a history that changed since it was cached is loaded and analysed in the thread pool.
    query_key = f"{since_epoch}|{from_epoch}|{to_epoch}|{points}|{policy_key(policy)}"
    current = (await call_service(service, partial(service.version, operation_id))).version
    tag = _etag(operation_id, current, query_key)
    if if_none_match_matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers={"ETag": tag})
    snapshot = partial(
        service.metrics_snapshot,
        operation_id,
        since_epoch=since_epoch,
        policy=policy,
        version=current,
        points=points,
        from_epoch=from_epoch,
        to_epoch=to_epoch,
    )
    if points is None and service.metrics_in_memory(operation_id, policy, current):  # thinning is CPU work
        version, metrics = snapshot()
    else:
        version, metrics = await call_blocking(snapshot)  # loading and analysing a history is not a quick read
    return envelope(metrics, headers={"ETag": _etag(operation_id, version, query_key), "Cache-Control": "no-cache"})


@router.post("/{operation_id}/diagnose", response_model=Envelope[Replay])
async def diagnose(
    operation_id: OperationId, service: ServiceDep, body: Annotated[DiagnoseRequest | None, Body()] = None
) -> Response:
    """A dry run of a diagnosis policy: what it would have recommended at every epoch of the stored history, the
    epoch it would have stopped at and why, the epoch it would restore and the epochs it would have saved.
    Nothing is written. The body is optional: ``{"policy": {"stop_rule": "patience", "patience": 5},
    "total_epochs_planned": 100}``."""
    request = body or DiagnoseRequest()
    replayed = partial(
        service.diagnose, operation_id, request.policy, total_epochs_planned=request.total_epochs_planned
    )
    # one analysis per epoch: CPU work that must not hold the event loop, even on SQLite
    return envelope(await call_blocking(replayed))


async def _epochs_csv(
    operation_id: str,
    request: Request,
    service: OperationsService,
    policy: MonitorPolicy,
    since_epoch: int | None,
    series: str,
    points: int | None,
    epoch_range: tuple[int | None, int | None] = (None, None),
) -> Response:
    """``GET /operations/{id}/metrics?format=csv``: every stored epoch after ``since_epoch`` (and within
    ``epoch_range``, inclusive, when set), streamed as CSV
    (:func:`~trainops.service.export.epochs_csv`) from the history the metrics reads share."""
    refused = sorted(policy.model_fields_set) + (["points"] if points is not None else [])
    if series != "epochs" or refused:
        what = "series=steps" if series != "epochs" else ", ".join(refused)
        raise InvalidInputError(
            f"format=csv exports every stored epoch as it is: {what} does not apply to it (points thins for a chart, "
            "the policy parameters judge the run, and the per-step series is JSON only: GET "
            "/operations/{id}/steps); drop them, or use format=json",
            details={"format": "csv", "parameters": refused or ["series"]},
        )
    query_key = f"csv|{since_epoch}" + ("" if epoch_range == (None, None) else f"|{epoch_range}")
    current = (await call_service(service, partial(service.version, operation_id))).version
    tag = _etag(operation_id, current, query_key)
    if if_none_match_matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers={"ETag": tag})
    history = await call_blocking(partial(service.history, operation_id))
    epochs = epochs_in_range(history.epochs, *epoch_range, since_epoch=since_epoch)
    headers = {
        "ETag": _etag(operation_id, history.version, query_key),
        "Cache-Control": "no-cache",
        "Content-Disposition": f'attachment; filename="{history.operation.operation_id}.csv"',
    }
    # a sync iterator: Starlette formats each chunk in the thread pool, never on the event loop
    chunks = (chunk.encode() for chunk in epochs_csv(epochs))
    return StreamingResponse(chunks, media_type=CSV_MEDIA_TYPE, headers=headers)


def _only_for_steps(
    policy: MonitorPolicy,
    since_epoch: int | None,
    points: int | None,
    from_epoch: int | None = None,
    to_epoch: int | None = None,
) -> None:
    """Refuse the epochs' parameters in a request for the per-step series, rather than ignore them."""
    epoch_parameters = {"since_epoch": since_epoch, "points": points, "from_epoch": from_epoch, "to_epoch": to_epoch}
    given = sorted(policy.model_fields_set) + [name for name, value in epoch_parameters.items() if value is not None]
    if given:
        raise InvalidInputError(
            f"{', '.join(given)} apply to series=epochs (the history and its diagnosis), not to series=steps; "
            "drop them, or use since_step and metric with the steps",
            details={"series": "steps", "parameters": given},
        )


def _etag(operation_id: str, version: int, query_key: str) -> str:
    digest = hashlib.blake2b(f"{operation_id}|{version}|{query_key}".encode(), digest_size=12).hexdigest()
    return f'"{digest}"'


def _ack_of(operation: Operation) -> WriteAck:
    return WriteAck(
        operation_id=operation.operation_id,
        status=operation.status,
        cancel_requested=operation.cancel_requested,
        cancel_reason=operation.cancel_reason,
    )
