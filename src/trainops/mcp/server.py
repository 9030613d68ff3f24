"""The MCP server: trainops' tools for AI agents that run, watch and steer training.

Every tool is a thin call on the :class:`~trainops.client.TrainOps` facade, so the server works in-process on the
local database (training runs in worker processes of this machine) or against a trainops server (``url``).
Answers are JSON objects (``model_dump(mode="json")``: NaN and infinity as the strings ``"NaN"``,
``"Infinity"``); failures are tool errors whose message says what to do next.

    trainops mcp                        # stdio: an agent launches it
    trainops mcp --transport http       # streamable HTTP at http://127.0.0.1:8765/mcp
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, ParamSpec, TypeVar, cast

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trainops.client import TrainOps, connect
from trainops.core.diagnosis import TrainingMetrics
from trainops.core.epoch import MAX_EPOCH, MAX_STEP
from trainops.core.numbers import format_metric
from trainops.core.operation import Operation, OperationStatus
from trainops.core.payload import text_problem
from trainops.core.policy import MonitorPolicy
from trainops.core.recommendation_changes import recommendation_changes
from trainops.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    TrainOpsError,
    sentence,
)
from trainops.mcp.compare import compare_runs as compare
from trainops.mcp.http_security import HttpGuard, check_loopback, loopback_host
from trainops.mcp.transport import DEFAULT_PORT, HTTP_PATH, Transport
from trainops.schemas.models import PredictRequest, SaveModelRequest
from trainops.schemas.training import TRAINING, ConfigOverrides, Resources, TrainingRequest

OpsFactory = Callable[[], TrainOps]


READ_TOOLS: tuple[str, ...] = (
    "health",
    "list_strategies",
    "validate_strategy",
    "list_data",
    "list_operations",
    "get_operation_status",
    "get_training_metrics",
    "get_training_steps",
    "export_metrics",
    "replay_diagnosis",
    "get_operation_results",
    "get_model_performance",
    "compare_runs",
    "list_models",
    # Loading reads and checks a saved model's files into this server's memory; it changes nothing stored, so a
    # read-only agent may load (and predict with) the models that people saved.
    "load_model",
    "predict",
)
WRITING_TOOLS: tuple[str, ...] = (
    "start_training",
    "cancel_operation",
    "save_model",
    "label_operation",
    "delete_operation",
)
"""Tools that start, stop, save, change or delete something: left out in read-only mode."""
DESTRUCTIVE_TOOLS: frozenset[str] = frozenset({"cancel_operation", "delete_operation", "save_model"})
"""Tools that may destroy something: a run's training, a run, or (save_model with overwrite) a named model."""

EXPORT_PART_MARGIN = 0.9
"""The share of an answer's room that an export's advised part fills: epochs differ in size (a NaN against a
17-digit number, a custom metric reported only sometimes)."""

ANSWER_MAX_CHARS = 1_000_000
"""The most characters one answer may take on the wire: its JSON twice, as structured content and as the text copy
the protocol sends beside it (that copy's quotes escaped). About 1 MB, the MCP SDK client's limit on one streamed
event (an answer past it broke the HTTP transport with no word of why); an agent's context is no place for more.
Past it the tool says how to ask for less."""
METRICS_POINTS = 200
"""Epochs get_training_metrics answers at most unless asked for more: a 3,000-epoch run whole is over 1 MB."""
STEP_POINTS = 500
"""Steps get_training_steps answers at most unless asked for more."""
LINE_TEXT_CHARS = 300
"""An error or cancel reason in a list line is cut to this many characters (a traceback may hold 100,000):
get_operation_status gives it whole."""

INSTRUCTIONS = """\
trainops runs model training as tracked operations and tells you whether a run is learning.
Typical loop: list_strategies and list_data -> start_training (returns task_id, the operation id) ->
poll get_training_metrics with since_epoch = the last epoch you saw (it returns the newer epochs, oldest first, at
most `points` of them: when `more` is true call again at once; and the diagnosis over the whole history) -> when
metrics.recommendation.action is 'stop' or 'stop_and_restore_best',
call cancel_operation with the recommendation's reason -> poll get_operation_status until it ends ->
get_model_performance, compare_runs, save_model, predict. The recommendation projects what continuing to the
planned end would gain, the forecast how good the run will get by then (a median with a 20-80% band), and a run
still improving at its planned end gets recommendation.extend_by, the epochs more it would need; to try another
policy (a patience rule, a stricter min_improvement_pct) before trusting it, replay_diagnosis shows when it would
have stopped a run, changing nothing. Operation ids look like op_training_20250610_123456_ab12cd34;
list_operations shows them."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


def tool_error_message(error: TrainOpsError) -> str:
    """The message an agent reads for a trainops error: what went wrong, and which tool helps next."""
    message = error.message
    if isinstance(error, NotFoundError):
        if "operation_id" in error.details:
            message += ". Call list_operations to see the operation ids (newest first)."
        elif "model_name" in error.details:
            message += ". Call list_models to see the saved models."
        elif "available" in error.details:
            message += ". Call list_strategies to see the strategies and whether each is valid."
    return message


def _validation_message(error: ValidationError, taken: Sequence[str] = ()) -> str:
    """``invalid arguments: where: what; ...``; an argument the tool does not take lists the ones it does
    (``taken``)."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        if taken and item["type"] == "extra_forbidden" and len(item["loc"]) == 1:
            problems.append(f"{where}: not an argument of this tool, which takes {', '.join(taken)}")
        else:
            text = str(item["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {text}" if where else text)
    return "invalid arguments: " + "; ".join(problems)


def _tool_errors(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn trainops errors and refused values into tool errors with their message (never a crash)."""

    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        # PostgreSQL holds no NUL in text, SQLite's LIKE stops at one, and no encoder writes a lone surrogate
        try:
            given = dict(signature.bind_partial(*args, **kwargs).arguments)
        except TypeError:  # arguments the call itself will refuse
            given = dict(kwargs)
        given.pop("self", None)
        problem = text_problem({name: _plain(value) for name, value in given.items()}, "")
        if problem is not None:
            raise ToolError(problem)
        try:
            return fn(*args, **kwargs)
        except TrainOpsError as error:
            raise ToolError(tool_error_message(error)) from None
        except ValidationError as error:
            raise ToolError(_validation_message(error)) from None

    return wrapper


def _plain(value: Any) -> Any:
    """An argument as JSON-like data (a model, such as start_training's config, as its fields)."""
    return value.model_dump() if isinstance(value, BaseModel) else value


def _policy_parameters(tool: Callable[..., _R]) -> Callable[..., _R]:
    """Declare every :class:`MonitorPolicy` field as an optional parameter of ``tool``, which receives them in
    ``**policy``. Its input schema then shows each field as the model defines it (type, bounds, default and
    description), so it cannot drift from the model; the model checks the values, so agents read its messages.
    A parameter left out (or null) keeps the model's default."""
    fields = MonitorPolicy.model_json_schema()["properties"]
    fields["monitor"] = fields["monitor"] | {"default": None}  # not val_loss: a task run's primary metric then
    signature = inspect.signature(tool, eval_str=True)
    own = [parameter for parameter in signature.parameters.values() if parameter.kind is not parameter.VAR_KEYWORD]
    settings = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[Any, Field(json_schema_extra=fields[name])],
        )
        for name in MonitorPolicy.model_fields
    ]
    tool.__signature__ = signature.replace(parameters=[*own, *settings])  # type: ignore[attr-defined]
    return tool


def _dump(value: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = _finite(value.model_dump(mode="json"))
    return dumped


def _finite(value: Any) -> Any:
    """Non-finite floats as the strings metrics use (``"NaN"``, ``"Infinity"``): free-form results (a diverged
    run's final loss) may hold them, and JSON has no spelling for them."""
    if isinstance(value, float):
        return format_metric(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _compact(answer: dict[str, Any]) -> str:
    return json.dumps(answer, separators=(",", ":"))


def wire_chars(answer: dict[str, Any], text: str | None = None) -> int:
    """The characters ``answer`` takes on the wire: its compact JSON (``text``, when already made), and the text
    copy sent beside it (the same JSON as a JSON string, its quotes and backslashes escaped)."""
    text = _compact(answer) if text is None else text
    return len(text) + len(json.dumps(text))


def _fitting(
    answer: dict[str, Any], what: str, advice: str | Callable[[int], str], text: str | None = None
) -> dict[str, Any]:
    """``answer`` when it fits :data:`ANSWER_MAX_CHARS`; else a tool error saying how big ``what`` is and how to
    ask for less (``advice``, or ``advice(size)`` for one that says how much fits)."""
    size = wire_chars(answer, text)
    if size > ANSWER_MAX_CHARS:
        said = advice(size) if callable(advice) else advice
        raise ToolError(
            f"{what} would take {size:,} characters as this tool's answer, over its limit of {ANSWER_MAX_CHARS:,}: "
            f"{said}"
        )
    return answer


def _answered(fn: Callable[..., dict[str, Any]]) -> Callable[..., CallToolResult]:
    """``fn``'s answer as the tool's result: the JSON object as structured content, and its compact text as the
    content beside it (the SDK's own copy is indented, more than twice the size of the answer on the wire), once
    it fits :data:`ANSWER_MAX_CHARS`."""

    @functools.wraps(fn)
    def answer(*args: Any, **kwargs: Any) -> CallToolResult:
        result = fn(*args, **kwargs)
        text = _compact(result)  # made once: measured, then sent
        _fitting(result, "the answer", "ask for less (a smaller limit or points, a narrower range)", text)
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=result)

    # the bound tool's parameters (wraps copied its function's __signature__, which still has self)
    answer.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    return answer


_LINE_FIELDS: dict[str, Any] = {
    "operation_id": True,
    "operation_type": True,
    "name": True,
    "tags": True,
    "status": True,
    "created_at": True,
    "completed_at": True,
    "progress": {"percentage", "phase", "message"},
    "metadata": {"strategy", "symbol", "timeframe"},
    "epochs_completed": True,
    "total_epochs": True,
    "cancel_reason": True,
    "error": True,
}


def _operation_line(operation: Operation) -> dict[str, Any]:
    """The short form of an operation for lists, in the full record's shape (one get_operation_status away); a
    long error or cancel reason cut to :data:`LINE_TEXT_CHARS` characters."""
    line: dict[str, Any] = operation.model_dump(mode="json", include=_LINE_FIELDS)
    for field in ("error", "cancel_reason"):
        text = line.get(field)
        if isinstance(text, str) and len(text) > LINE_TEXT_CHARS:
            line[field] = f"{text[:LINE_TEXT_CHARS]}... ({len(text):,} characters: get_operation_status has it all)"
    return line


def _exported_epochs(content: str, format: str) -> int:
    if format == "csv":  # a header, then one line per epoch
        return max(len(content.splitlines()) - 1, 0)
    return len(json.loads(content)["metrics"]["epochs"])


def _is_strategy_training(operation: Operation) -> bool:
    return operation.operation_type == TRAINING and isinstance(operation.metadata.parameters.get("config"), dict)


class _Facade:
    """The facade the tools call, opened on first use and closed when the server stops.

    Tools run in worker threads, so opening is locked: two first calls must not open two databases.
    """

    def __init__(self, factory: OpsFactory) -> None:
        self._factory = factory
        self._ops: TrainOps | None = None
        self._lock = threading.Lock()

    def get(self) -> TrainOps:
        with self._lock:
            if self._ops is None:
                self._ops = self._factory()
            return self._ops

    def close(self) -> None:
        with self._lock:
            if self._ops is not None:
                self._ops.close()
                self._ops = None


class TrainOpsTools:
    """The tools, one method each; the docstrings are what agents read."""

    def __init__(self, facade: _Facade, *, read_only: bool) -> None:
        self._facade = facade
        self._read_only = read_only

    @property
    def _ops(self) -> TrainOps:
        return self._facade.get()

    # -- discovery ------------------------------------------------------------------------------------------

    @_tool_errors
    def health(self) -> dict[str, Any]:
        """Check that trainops is reachable and lets this server in. Call it first if other tools fail.

        Returns: status ("ok"; "unauthorized" when the trainops server answers but refuses this MCP server's
        token, with error saying how to fix it: every other tool fails until then), trainops version, database
        kind, schema revision, server time (UTC), and read_only (true when this server leaves out start_training,
        cancel_operation, save_model, label_operation and delete_operation).
        """
        answer = {**_dump(self._ops.health()), "read_only": self._read_only}
        try:  # the health route is open to all: a read that needs the token says whether the others will work
            self._ops.list_operations(limit=1)
        except AuthenticationError as error:
            answer |= {
                "status": "unauthorized",
                "error": f"{error.message}; give this MCP server the trainops server's token (TRAINOPS_API_TOKEN "
                "in its environment, or `trainops mcp --token`) and start it again",
            }
        return answer

    @_tool_errors
    def list_strategies(self) -> dict[str, Any]:
        """List the strategies start_training can train, by name.

        Returns: strategies, each with name, valid (false with an error message when the file is broken),
        description, symbols, timeframes, indicators, architecture (hidden layer sizes) and default epochs.
        """
        return {"strategies": [_dump(item) for item in self._ops.list_strategies()]}

    @_tool_errors
    def validate_strategy(self, strategy: dict[str, Any] | str) -> dict[str, Any]:
        """Check a strategy definition without training it: a mapping, or the YAML text of a strategy file.

        Returns: valid, problems (each naming the field path and the fix), message, and the strategy summary
        when valid. Call it before asking a person to save a new strategy file.
        """
        return _dump(self._ops.validate_strategy(strategy))

    @_tool_errors
    def list_data(self) -> dict[str, Any]:
        """List the market data available for training.

        Returns: symbols (symbol -> its timeframes, e.g. {"EURUSD": ["1h", "4h"]}) and files, each with symbol,
        timeframe, bars (count), start and end (first and last bar, UTC). A strategy trains on its symbols at
        its first timeframe's file; higher timeframes are resampled when missing.
        """
        files = self._ops.list_data()
        symbols: dict[str, list[str]] = {}
        for item in files:
            symbols.setdefault(item.symbol, []).append(item.timeframe)
        return {"symbols": symbols, "files": [_dump(item) for item in files]}

    # -- training -------------------------------------------------------------------------------------------

    @_tool_errors
    def start_training(
        self,
        strategy: str | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
        config: ConfigOverrides | None = None,
        start_date: date | None = None,
        end_date: date | None = None,
        device: str | None = None,
        resources: Resources | None = None,
        name: str | None = None,
        tags: list[str] | None = None,
        notes: str | None = None,
    ) -> dict[str, Any]:
        """Start training a strategy (by name, see list_strategies; default mean_reversion). Returns at once.

        Args:
            strategy: Strategy name, e.g. "mean_reversion".
            symbol: Train on this one symbol only (see list_data).
            timeframe: Train on this one timeframe only.
            config: Overrides of the strategy's training settings, e.g. {"epochs": 50, "learning_rate": 0.001,
                "early_stopping": {"patience": 5}}. patience counts epochs without improvement.
            start_date: First day of the training data (YYYY-MM-DD).
            end_date: Last day of the training data (YYYY-MM-DD).
            device: "cpu" or "cuda"; CUDA when available by default.
            resources: What the job needs, e.g. {"cpus": 1, "gpus": 1}. On a server that trains on Ray the job
                waits (status pending) until a node has them free; the local executor refuses more than it has.
            name: A short title to find the run by later, e.g. "lr 3e-4, patience 5".
            tags: Labels to find it by (list_operations tag=...), e.g. ["sweep-7", "lr=3e-4"]: ASCII letters,
                digits and _ . : / = + @ -.
            notes: Free text: why this run, what it tests.

        Returns: task_id (the operation id every other tool takes), what trains (symbol, timeframe, the
        resolved config) and estimated_duration_minutes (a rough hint). Next: poll get_training_metrics with
        since_epoch every few seconds, or get_operation_status for the phase and progress percent.
        """
        request = TrainingRequest(
            strategy=strategy,
            symbol=symbol,
            timeframe=timeframe,
            config=config,
            start_date=start_date,
            end_date=end_date,
            device=device,
            resources=resources,
            name=name,
            tags=tags,
            notes=notes,
        )
        started = _dump(self._ops.start_training(request))
        task_id = started.get("task_id")
        if isinstance(started.get("message"), str) and task_id:  # the tools to follow it by, not the CLI's
            head = started["message"].partition("; follow it with")[0]
            started["message"] = (
                f"{head}; follow it with get_training_metrics(operation_id={task_id!r}, since_epoch=-1), "
                "get_operation_status for the phase before the first epoch"
            )
        return started

    @_tool_errors
    def list_operations(
        self,
        status: list[OperationStatus] | None = None,
        operation_type: str | None = None,
        active_only: bool = False,
        limit: Annotated[int, Field(ge=1, le=1000)] = 20,
        offset: Annotated[int, Field(ge=0)] = 0,
        name: str | None = None,
        tag: list[str] | None = None,
        q: str | None = None,
        strategy: str | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        sort: str = "created",
        order: Literal["asc", "desc"] | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """List operations (training runs and others), newest first, or find runs: every filter given must match.

        Args:
            status: Only these statuses: pending, running, completed, failed, cancelled.
            operation_type: Only this type, e.g. "training".
            active_only: Only pending and running ones.
            limit: At most this many (1-1000).
            offset: Skip this many (prefer cursor for paging).
            name: Only runs of this name (whole, ignoring case).
            tag: Only runs having all these tags.
            q: Text found (ignoring case) in the name, id, notes, strategy, task, symbol or tags.
            strategy, symbol, timeframe: Only runs of this strategy, symbol or timeframe.
            created_after: Created at or after this time (ISO 8601 with a zone, e.g. 2026-12-01T00:00:00Z).
            created_before: Created before this time.
            sort: "created" (newest first), "duration" (longest first) or "best:<metric>", e.g. "best:val_loss":
                the runs by the best value each reached, best first (lowest for a loss, highest for a score);
                runs without the metric last.
            order: "asc" or "desc", overriding the sort's direction.
            cursor: next_cursor of the previous answer (same filters and sort) for the next page.

        Returns: total (matching), active (still pending or running), next_cursor (null on the last page) and
        operations, each with operation_id, name, tags, operation_type, status, created_at, completed_at, progress
        (percentage 0-100, phase, message), metadata (strategy, symbol, timeframe), epochs_completed,
        total_epochs, cancel_reason, error and best (the best value of its primary metric: metric, mode, value,
        epoch; null before it reported one).
        """
        page = self._ops.list_operations(
            status=status,
            operation_type=operation_type,
            active_only=active_only,
            limit=limit,
            offset=offset,
            name=name,
            tags=tag,
            q=q,
            strategy=strategy,
            symbol=symbol,
            timeframe=timeframe,
            created_after=created_after,
            created_before=created_before,
            sort=sort,
            order=order,
            cursor=cursor,
            include_best=True,
        )
        lines = []
        for item in page.items:
            line = _operation_line(item)
            line["best"] = item.best.model_dump(mode="json") if item.best is not None else None
            lines.append(line)
        return {
            "total": page.total,
            "active": page.active,
            "limit": page.limit,
            "offset": page.offset,
            "next_cursor": page.next_cursor,
            "operations": lines,
        }

    @_tool_errors
    def get_operation_status(self, operation_id: str) -> dict[str, Any]:
        """Where an operation is. Poll it every few seconds after cancel_operation until the status is
        terminal (completed, failed or cancelled).

        Returns: operation: status (pending, running, completed, failed, cancelled), progress (percentage 0-100,
        phase, message such as "Epoch 5/100 · Batch 120/500"), epochs_completed, total_epochs, cancel_request
        (reason, requested_by, requested_at), error, result, metadata (strategy, symbol, timeframe, the config
        trained) and timestamps (UTC). For strategy trainings, training adds current_epoch, estimated_completion
        and current_metrics (the last finished epoch). job, when the server's executor runs the operation, is its
        job as the executor sees it: status PENDING (still waiting for resources, e.g. a GPU the Ray cluster does
        not have free; message says so), RUNNING, SUCCEEDED, FAILED (failed before its worker reported: message
        and exit_code say why) or STOPPED, with executor (local or ray) and job_id.
        """
        operation = self._ops.get_operation(operation_id)
        answer: dict[str, Any] = {"operation": _dump(operation)}
        job = self._ops.get_job(operation_id)
        if job is not None:
            answer["job"] = _dump(job)
        if _is_strategy_training(operation):
            answer["training"] = _dump(self._ops.get_training_status(operation_id))
        return answer

    @_tool_errors
    @_policy_parameters
    def get_training_metrics(
        self,
        operation_id: str,
        since_epoch: Annotated[int | None, Field(ge=-1, le=MAX_EPOCH, strict=True)] = None,
        points: Annotated[int, Field(ge=10, le=100_000, strict=True)] = METRICS_POINTS,
        from_epoch: Annotated[int | None, Field(ge=0, le=MAX_EPOCH, strict=True)] = None,
        to_epoch: Annotated[int | None, Field(ge=0, le=MAX_EPOCH, strict=True)] = None,
        **policy: Any,
    ) -> dict[str, Any]:
        """The per-epoch metric history of a run and the diagnosis over all of it: the tool to judge whether
        it is learning. Poll it with since_epoch = the last epoch you have seen to get only newer epochs.

        Args:
            operation_id: The run.
            since_epoch: Return only epochs after this one, oldest first and never thinned: at most `points` of
                them, and more (top level) true when newer ones wait, so call again at once with the last epoch
                returned. Polling this way misses no epoch. The diagnosis still covers the whole history.
            points: At most this many epochs in metrics.epochs (default 200). Without since_epoch, more are
                thinned to the first, the last, the best and each metric's extremes (metrics.thinned true;
                metrics.epochs_stored says how many are stored): the shape of a whole run in one answer.
            from_epoch, to_epoch: Only the epochs between these two (inclusive; either may be left out), before
                any thinning: a stretch of a long run read whole, e.g. the epochs around best_epoch.
            monitor, mode, patience, stop_rule, min_improvement_pct, ...: The diagnosis policy, one parameter per
                setting (each parameter's description says what it does; left out, its default). The default
                projection rule stops when continuing to the planned end is projected to improve the best by no
                more than min_improvement_pct; stop_rule "patience" is Keras/Lightning early stopping.

        Returns: metrics.epochs (oldest first: epoch, train_loss, val_loss, train_accuracy, val_accuracy,
        learning_rate, duration in seconds, custom metrics), total_epochs_completed, total_epochs_planned,
        best_epoch, best_value, epochs_since_improvement, is_overfitting (overfitting_since_epoch),
        is_plateaued, is_diverging, trend (direction, percent_change over the window), signals (rule, severity,
        message, parameters, evidence numbers), projection (what continuing is projected to gain, with its
        evidence: epochs_left, projected_improvement_pct, ...), forecast (how good the monitored metric will get by
        the planned end: best_value, its 20% and 80% quantiles best_value_q20 and best_value_q80, best_epoch,
        method, evidence; null below 4 epochs) and recommendation (action continue | stop | stop_and_restore_best,
        reason, restore_epoch; extend_by and extend_forecast when the run is still improving at its planned end:
        the epochs past it that are projected to gain min_improvement_pct, and the best by then). Act on
        recommendation: cancel_operation with its reason; extend_by says how much longer to plan the next run.
        metrics.definitions (on a call without since_epoch, or with -1) names every metric the run reported with its
        tier (primary, standard, custom), label, format (percent: a fraction shown as a percentage) and
        higher_is_better, the primary first. A run that
        recorded its task (metadata.task, e.g. object_detection) is judged on the task's primary metric (mAP50,
        maximised) unless you pass monitor; the diagnosis's monitor and mode say which.
        """
        chosen = {name: value for name, value in policy.items() if value is not None}
        judged_by = MonitorPolicy.model_validate(chosen) if chosen else None
        polling = False
        if since_epoch is not None and from_epoch is None and to_epoch is None:
            polling = True  # the next epochs in order, never a thinned sample: a poll must miss none
            to_epoch = min(since_epoch + points, MAX_EPOCH)
        metrics = self._ops.get_metrics(
            operation_id,
            since_epoch=since_epoch,
            policy=judged_by,
            points=points,
            from_epoch=from_epoch,
            to_epoch=to_epoch,
        )
        answer = _dump(metrics)
        if since_epoch is not None and since_epoch >= 0:  # a poll: the definitions came with the first call
            answer["metrics"].pop("definitions", None)
        if polling:
            last = self._ops.get_operation(operation_id).last_epoch
            answer["more"] = last is not None and to_epoch is not None and last > to_epoch
        return _fitting(
            answer,
            f"the metrics of {operation_id} with points={points}",
            "ask for fewer points, or a narrower from_epoch-to_epoch",
        )

    @_tool_errors
    def get_training_steps(
        self,
        operation_id: str,
        since_step: Annotated[int | None, Field(ge=-1, le=MAX_STEP, strict=True)] = None,
        metric: Annotated[str | None, Field(min_length=1, max_length=128)] = None,
        points: Annotated[int, Field(ge=10, le=100_000, strict=True)] = STEP_POINTS,
    ) -> dict[str, Any]:
        """A run's per-step (batch) series, oldest first: what it reported between epochs, such as the training
        loss every few batches. The tool for a run whose epochs are long (a one-epoch fine-tune) or that reports
        no epochs at all: get_training_metrics sees nothing until an epoch ends.

        Args:
            operation_id: The run.
            since_step: Only the steps after this one, oldest first: at most `points` of them, and more true when
                newer ones wait (call again at once with the last step returned). Left out: the latest `points`
                steps.
            metric: Only the steps that report this metric, each with it alone (an unknown one is an error that
                lists the step metrics the run reported).
            points: At most this many steps in the answer (default 500).

        Returns: points (each: step, epoch, timestamp, metrics), left_out (without since_step: the stored steps
        before the first one answered), more, max_points and thinned (the run outgrew max_points,
        so its older steps are kept at an even spacing, not all). Empty points: the run reports no steps.
        """
        series = self._ops.get_steps(operation_id, since_step=since_step, metric=metric)
        answer = _dump(series)
        stored: list[Any] = answer.pop("points")
        chosen = stored[:points] if since_step is not None else stored[-points:]
        answer["points"] = chosen
        answer["left_out"] = len(stored) - len(chosen) if since_step is None else 0
        answer["more"] = since_step is not None and len(stored) > len(chosen)
        return _fitting(answer, f"the steps of {operation_id} with points={points}", "ask for fewer points")

    @_tool_errors
    def replay_diagnosis(
        self,
        operation_id: str,
        policy: MonitorPolicy | None = None,
        total_epochs_planned: Annotated[int | None, Field(ge=1)] = None,
        every_epoch: bool = False,
    ) -> dict[str, Any]:
        """Dry-run a diagnosis policy over a run's recorded epochs: when would it have said stop, and why? Changes
        nothing (the run keeps going; nothing is stored). Use it to choose a policy before acting on one: compare
        the default projection rule with, say, {"stop_rule": "patience", "patience": 5} on a finished or running
        run, then poll get_training_metrics with the one you trust.

        Args:
            operation_id: The run.
            policy: The settings to try, e.g. {"min_improvement_pct": 2} or {"stop_rule": "patience", "patience": 5};
                fields left out keep their defaults: stop_rule "projection" (stop when continuing to the planned
                end is projected to improve the best by no more than min_improvement_pct 1, at confirm_epochs 3
                evaluations in a row), noise_allowance 0.5, monitor the primary metric of the run's task (else
                "val_loss"), mode "auto", min_delta 0,
                patience 10, window 10, divergence_threshold null, divergence_factor 3, check_finite true.
            total_epochs_planned: The run's planned length, for epochs_saved (default: the run's own).
            every_epoch: Also return steps, the recommendation at every epoch (about 350 characters an epoch: past
                about 2,500 epochs that is over this tool's limit; changes holds every epoch where it changed).

        A replay judges the history again at every epoch: a few seconds for 1,000 epochs, about 40 s for 4,000.

        Returns: policy (every setting used), epochs_replayed, total_epochs_planned, stop_epoch (the first epoch
        the policy says stop; null if it never would), stop_reason, restore_epoch (whose weights the stop keeps),
        epochs_saved (epochs left after stop_epoch; null if never stopped), and changes: the epochs where the
        recommendation changed, each with epoch, action (continue | stop | stop_and_restore_best), reason,
        restore_epoch and rules (the signals that fired). steps has the same for every epoch when asked.
        """
        replay = self._ops.diagnose(operation_id, policy, total_epochs_planned=total_epochs_planned)
        answer = _dump(replay)
        steps = answer.pop("steps")
        answer["changes"] = [_dump(step) for step in recommendation_changes(replay.steps)]
        if every_epoch:
            answer["steps"] = steps
            return _fitting(
                answer,
                f"the replay of {operation_id} at every one of its {len(steps):,} epochs",
                "leave every_epoch out: changes holds every epoch where the recommendation changed",
            )
        return answer

    @_tool_errors
    def cancel_operation(self, operation_id: str, reason: Annotated[str, Field(min_length=1)]) -> dict[str, Any]:
        """Stop a run, saying why (recorded with requested_by "agent"). Use the diagnosis' recommendation
        reason, e.g. "val_loss rising since epoch 30 (overfitting)".

        A strategy training stops at its next batch boundary, keeps its history, evaluates and saves the best
        weights seen so far as its model version; then its status becomes "cancelled". Poll
        get_operation_status until then, and call save_model to keep the model under a name.

        Returns: the operation (status still running until it stops), the recorded cancel_request (reason,
        requested_by, requested_at) and what happens next.
        """
        operation = self._ops.cancel_operation(operation_id, reason, requested_by="agent")
        request = operation.cancel_request
        if request is not None and (request.reason, request.requested_by) != (reason.strip(), "agent"):
            # the first request's reason stands (a later one is not recorded): say whose it is
            said = f"A stop was already requested by {request.requested_by}: {request.reason!r}; that reason stands. "
        else:
            said = f"Stop requested for {operation_id}. "
        return {
            "operation": _operation_line(operation),
            "cancel_request": _dump(request) if request else None,
            "message": (
                f"{said}It ends at its next check; poll get_operation_status until its status is cancelled, then "
                "get_operation_results (and save_model for a strategy training)."
            ),
        }

    @_tool_errors
    def label_operation(
        self,
        operation_id: str,
        name: str | None = None,
        add_tags: list[str] | None = None,
        remove_tags: list[str] | None = None,
        notes: str | None = None,
    ) -> dict[str, Any]:
        """Name, tag or annotate a run, in any status, so that it is found again (list_operations with name=, tag=
        or q=): e.g. tag the best run of a sweep "keep", or note why a run was stopped. What is left out stays.

        Args:
            operation_id: The run.
            name: Its new name (1-128 characters, one line); "" clears it.
            add_tags: Tags to add (ASCII letters, digits and _ . : / = + @ -; at most 32 in all).
            remove_tags: Tags to take away.
            notes: Its new notes (free text); "" clears them.

        Returns: operation: the run's short form with its name and tags, and notes.
        """
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name or None  # "" clears it; only spaces is refused, as a name of none
        if notes is not None:
            changes["notes"] = notes if notes else None
        if not changes and not add_tags and not remove_tags:
            raise ToolError("nothing to change: give name, add_tags, remove_tags or notes")
        operation = self._ops.update_operation(
            operation_id, add_tags=add_tags or (), remove_tags=remove_tags or (), **changes
        )
        return {"operation": _operation_line(operation), "notes": operation.notes}

    @_tool_errors
    def export_metrics(
        self,
        operation_id: str,
        format: Literal["csv", "json"] = "csv",
        since_epoch: Annotated[int | None, Field(ge=-1, le=MAX_EPOCH, strict=True)] = None,
        from_epoch: Annotated[int | None, Field(ge=0, le=MAX_EPOCH, strict=True)] = None,
        to_epoch: Annotated[int | None, Field(ge=0, le=MAX_EPOCH, strict=True)] = None,
    ) -> dict[str, Any]:
        """A run's stored epoch history as a file's text, every epoch (after since_epoch, between from_epoch and
        to_epoch), never thinned: to analyse it with your own code or hand it to a person.

        Args:
            operation_id: The run.
            format: "csv" (one row per epoch, oldest first; columns epoch, step, timestamp, duration, train_loss,
                val_loss, train_accuracy, val_accuracy, learning_rate, then custom metrics sorted; empty cells for
                values an epoch did not report; nan, inf, -inf kept) or "json" (the epochs and the diagnosis, as
                get_training_metrics answers).
            since_epoch: Only epochs after this one.
            from_epoch, to_epoch: Only the epochs between these two (inclusive; either may be left out): to take
                a long history in parts.

        Returns: operation_id, format, epochs (how many), chars and content (the text). The answer holds at most
        1,000,000 characters, the content about 450,000 of them: past that, a tool error says how many epochs
        fit, to take it in parts with from_epoch and to_epoch.
        """
        content = self._ops.export_metrics(
            operation_id, format=format, since_epoch=since_epoch, from_epoch=from_epoch, to_epoch=to_epoch
        )
        epochs = _exported_epochs(content, format)
        answer = {"operation_id": operation_id, "format": format, "epochs": epochs, "chars": len(content)}
        answer["content"] = content

        def advice(size: int) -> str:
            # what any part costs whatever its epochs (the answer's fields; in JSON the diagnosis too), then the
            # epochs that fit beside it, with a margin: scaling the whole linearly advised parts still too large
            empty = self._ops.export_metrics(operation_id, format=format, since_epoch=MAX_EPOCH)
            fixed = wire_chars({**answer, "content": empty})
            per_epoch = max(size - fixed, 1) / max(epochs, 1)
            fitting = int((ANSWER_MAX_CHARS - fixed) * EXPORT_PART_MARGIN / per_epoch)
            return f"take it in parts of at most about {max(1, fitting):,} epochs with from_epoch and to_epoch"

        return _fitting(
            answer, f"the {format} export of {operation_id} ({epochs:,} epochs, {len(content):,} characters)", advice
        )

    @_tool_errors
    def delete_operation(self, operation_id: str) -> dict[str, Any]:
        """Delete an ended run for good (completed, failed or cancelled): its record, epoch and step history,
        artifact files, worker log and the model version it wrote unless a named model uses it. Named models
        saved from it stay and report source_deleted. This cannot be undone: export_metrics first to keep the
        history. A pending or running run is refused: cancel_operation it, poll get_operation_status until it
        ends, then delete it.

        Returns: operation_id, deleted (true), status (how it had ended), epochs, steps, artifacts,
        artifact_bytes, model_versions and worker_log (what was removed), models_kept (named models made from
        it).
        """
        try:
            return _dump(self._ops.delete_operation(operation_id))
        except ConflictError as error:
            raise ToolError(
                f"{sentence(error.message)} Over MCP: cancel_operation with a reason, poll get_operation_status "
                "until it ends, then delete_operation"
            ) from None

    @_tool_errors
    def get_operation_results(self, operation_id: str) -> dict[str, Any]:
        """What a finished run produced. An error while it still runs (poll get_operation_status first).

        Returns: status, duration_seconds, result (for strategy trainings: training_metrics, test_metrics,
        model_version, cancelled reason if stopped), error, cancel_request, epochs_completed, best_epoch,
        best_val_loss, final_epoch and the final diagnosis.
        """
        return _dump(self._ops.get_results(operation_id))

    @_tool_errors
    def get_model_performance(self, operation_id: str) -> dict[str, Any]:
        """A finished (or cancelled) strategy training's figures; an error while it still runs.

        Returns: training_metrics (final_train_loss, final_val_loss, final accuracies, best_epoch, best_value,
        monitor, epochs_completed, early_stopped, stopped_reason, restored_best_weights, training_time_minutes),
        test_metrics on the held-out test split (test_loss, test_accuracy, precision, recall, f1_score: fractions
        0-1; confusion_matrix, per_class), model_info (architecture, parameters_count, input_size, device) and
        data (rows per split). Use it to judge a run on unseen data before save_model.
        """
        return _dump(self._ops.get_training_performance(operation_id))

    @_tool_errors
    def compare_runs(
        self,
        operation_ids: Annotated[list[str], Field(min_length=2, max_length=50)],
        monitor: Annotated[str | None, Field(min_length=1, max_length=128)] = None,
        mode: Literal["min", "max", "auto"] = "auto",
        min_delta: Annotated[float, Field(ge=0.0)] = 0.0,
    ) -> dict[str, Any]:
        """Compare two or more runs side by side and say which is better and why.

        Args:
            operation_ids: The runs to compare.
            monitor: Metric to judge by. Left out, the metric get_training_metrics judges each run by: its task's
                primary metric when it recorded one (mAP50 for object detection), else val_loss; runs judged on
                different metrics cannot be ranked, so pass one then.
            mode: "min" (lower is better), "max", or "auto".
            min_delta: Best values closer than this count as a tie (then the healthier, faster run wins).

        Returns: runs (each: status, epochs_run, best_epoch, best_value, epochs_to_best, final_metrics,
        is_overfitting, is_plateaued, is_diverging, trend, recommendation), ranking (ids, best first),
        best_run and reason (the margin, and caveats such as overfitting or still running).
        """
        chosen = {"mode": mode, "min_delta": min_delta} | ({} if monitor is None else {"monitor": monitor})
        runs = self._judged(list(dict.fromkeys(operation_ids)), MonitorPolicy(**chosen))
        if len({metrics.monitor for _, metrics in runs}) > 1:  # no monitor given, and the runs' tasks differ
            each = ", ".join(f"{operation.operation_id} on {metrics.monitor}" for operation, metrics in runs)
            raise ToolError(
                f"these runs are judged on different metrics ({each}): pass monitor, a metric every one of them "
                "reports, to compare them on it"
            )
        return _dump(compare(runs, min_delta=min_delta))

    def _judged(self, ids: list[str], policy: MonitorPolicy) -> list[tuple[Operation, TrainingMetrics]]:
        """Each run and its metrics under ``policy`` (with no monitor chosen, each run's task's primary metric, as
        get_training_metrics judges it); an error names the run it is about."""
        runs = []
        for operation_id in ids:
            try:
                runs.append(
                    (self._ops.get_operation(operation_id), self._ops.get_metrics(operation_id, policy=policy).metrics)
                )
            except TrainOpsError as error:
                raise ToolError(f"{operation_id}: {tool_error_message(error)}") from None
        return runs

    # -- models ---------------------------------------------------------------------------------------------

    @_tool_errors
    def save_model(
        self, operation_id: str, model_name: str, description: str = "", overwrite: bool = False
    ) -> dict[str, Any]:
        """Keep the model a finished (or cancelled) strategy training wrote, under a name.

        Args:
            operation_id: The training (its task_id).
            model_name: Letters, digits, '_', '.', '-'; at most 64 characters.
            description: Why this model is worth keeping.
            overwrite: Replace a model of the same name.

        Returns: model_id, model_name, model_path, saved_at, model_size_mb. Then load_model / predict.
        """
        request = SaveModelRequest(
            task_id=operation_id, model_name=model_name, description=description, overwrite=overwrite
        )
        return _dump(self._ops.save_model(request))

    @_tool_errors
    def list_models(
        self,
        symbol: str | None = None,
        timeframe: str | None = None,
        strategy: str | None = None,
        limit: Annotated[int, Field(ge=1, le=1000)] | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """List saved models, newest first, optionally only those of a symbol, timeframe or strategy.

        Args:
            symbol, timeframe, strategy: Only models of this symbol, timeframe or strategy.
            limit: A page of at most this many (1-1000); all when left out.
            cursor: The next_cursor of the previous page (same filters and limit).

        Returns: count, next_cursor (with limit: pass it as cursor for the next page; null on the last) and
        models, each with model_name, strategy, symbol, timeframe, training_accuracy, test_accuracy, f1_score
        (fractions 0-1), architecture, description, source_operation (source_deleted: true when that run was
        deleted since) and created_at / saved_at.
        """
        page = self._ops.list_models_page(
            symbol=symbol, timeframe=timeframe, strategy=strategy, limit=limit, cursor=cursor
        )
        return {"count": page.count, "next_cursor": page.next_cursor, "models": [_dump(item) for item in page.models]}

    @_tool_errors
    def load_model(self, model_name: str) -> dict[str, Any]:
        """Load a saved model into memory, checking every file, and describe it (predict loads on demand
        too; call this to check a model before relying on it).

        Returns: model_info: symbol, timeframe, strategy, architecture, accuracies, input_size and features.
        """
        return _dump(self._ops.load_model(model_name))

    @_tool_errors
    def predict(
        self,
        model_name: str,
        symbol: str,
        timeframe: str,
        test_date: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
    ) -> dict[str, Any]:
        """A saved model's trading signal (buy, hold, sell with probabilities) from bars up to a date only.

        Give test_date for one bar ("2018-01-10" for that day's last bar, or "2018-01-10T14:00"), or start_date
        and end_date for every bar of a range (keep ranges short: one prediction per bar; an answer past
        1,000,000 characters is refused, saying how many bars fit). timeframe must be the model's base timeframe.

        Returns: for one bar, test_date (the bar used), prediction (signal buy | hold | sell, confidence: the
        chosen signal's probability, signal_strength: P(buy) - P(sell) from -1 to 1, probabilities),
        input_features and the bar's OHLCV; for a range, count, predictions and signal_counts.
        """
        request = PredictRequest.model_validate(
            {
                "model_name": model_name,
                "symbol": symbol,
                "timeframe": timeframe,
                "test_date": test_date,
                "start_date": start_date,
                "end_date": end_date,
            }
        )
        answer = _dump(self._ops.predict(request))
        bars = answer.get("count", 1)
        return _fitting(
            answer,
            f"the predictions of {model_name} for {bars:,} bars from {start_date} to {end_date}",
            lambda size: (
                f"ask for at most about {max(1, bars * ANSWER_MAX_CHARS // size):,} bars at a time (a "
                "shorter start_date..end_date)"
            ),
        )


def create_server(
    source: OpsFactory | str | None = None, *, token: str | None = None, read_only: bool = False
) -> MCPServer[None]:
    """The trainops MCP server.

    Args:
        source: What the tools call: a function returning a :class:`TrainOps` (the server owns it and closes
            it when it stops), a trainops server URL, or ``None`` for :func:`trainops.connect`'s default
            (``TRAINOPS_URL``, else in-process on the local database). Opened on the first tool call.
        token: Bearer token for a server URL.
        read_only: Leave out the tools that start, stop, save, label or delete (:data:`WRITING_TOOLS`).

    Example:
        >>> server = create_server("http://127.0.0.1:8000", read_only=True)  # watch a server's runs, change nothing
        >>> server.run("stdio")  # doctest: +SKIP
    """
    factory: OpsFactory = source if callable(source) else functools.partial(connect, source, token)
    facade = _Facade(factory)

    @asynccontextmanager
    async def lifespan(_: MCPServer[None]) -> AsyncIterator[None]:
        try:
            yield None
        finally:
            facade.close()

    tools = TrainOpsTools(facade, read_only=read_only)
    served = [_tool(getattr(tools, name), ToolAnnotations(read_only_hint=True)) for name in READ_TOOLS]
    if not read_only:
        for name in WRITING_TOOLS:
            hints = ToolAnnotations(read_only_hint=False, destructive_hint=name in DESTRUCTIVE_TOOLS)
            served.append(_tool(getattr(tools, name), hints))
    return MCPServer("trainops", instructions=INSTRUCTIONS, log_level="WARNING", lifespan=lifespan, tools=served)


def _tool(fn: Callable[..., dict[str, Any]], annotations: ToolAnnotations) -> Tool:
    """``fn`` as a tool that refuses an argument it does not take: the SDK would drop it, and a misspelt or
    misplaced one (``epochs`` for ``config.epochs``) would run the call as if it had not been sent."""
    # the docstring without its indentation is the description agents read
    tool = Tool.from_function(_answered(fn), description=inspect.getdoc(fn), annotations=annotations)
    tool.fn_metadata.arg_model = _refusing_extras(tool.fn_metadata.arg_model, sorted(tool.parameters["properties"]))
    tool.parameters["additionalProperties"] = False  # and the input schema says so
    described = COMMON_ARGUMENTS | _argument_descriptions(tool.description or "")
    for name, schema in tool.parameters["properties"].items():  # for hosts that show the schema, not the docstring
        if "description" not in schema and name in described:
            schema["description"] = described[name]
    return tool


COMMON_ARGUMENTS = {
    "operation_id": "The run's operation id (start_training's task_id; list_operations shows them).",
    "model_name": "A saved model's name (list_models shows them).",
    "strategy": "A strategy's name (list_strategies shows them), a mapping of its fields, or a strategy file's YAML "
    "text.",
    "symbol": "A market symbol, e.g. EURUSD (list_data shows those with data).",
    "timeframe": "A bar timeframe, e.g. 1h or 1d (list_data shows those with data).",
    "reason": "Why, in words a person reads later, e.g. the recommendation's reason.",
    "test_date": "The one bar to predict from: a date (that day's last bar) or a time, e.g. 2018-01-10T14:00.",
    "start_date": "The first bar of a range (a date or a time).",
    "end_date": "The last bar of a range (a date or a time).",
}
"""What a parameter of that name means in every tool that takes it, for a docstring's ``Args:`` that leaves it
out; a tool's own ``Args:`` entry wins."""


def _argument_descriptions(doc: str) -> dict[str, str]:
    """Each argument's text in the ``Args:`` section of a Google-style docstring, its lines joined; an entry that
    names several (``from_epoch, to_epoch: ...``) describes each of them."""
    lines = doc.splitlines()
    start = next((index for index, line in enumerate(lines) if line.strip() == "Args:"), None)
    if start is None:
        return {}
    indent = len(lines[start]) - len(lines[start].lstrip())
    entries: list[tuple[list[str], list[str]]] = []
    for line in lines[start + 1 :]:
        depth = len(line) - len(line.lstrip())
        if line.strip() and depth <= indent:
            break  # the section after it (Returns:)
        names, colon, text = line.strip().partition(": ")
        if (
            colon
            and entries is not None
            and depth == indent + 4
            and all(name.isidentifier() for name in names.replace(" ", "").split(","))
        ):
            entries.append((names.replace(" ", "").split(","), [text]))
        elif entries and line.strip():
            entries[-1][1].append(line.strip())
    return {name: " ".join(text) for names, text in entries for name in names}


def _refusing_extras(lenient: type[ArgModelBase], taken: list[str]) -> type[ArgModelBase]:
    """The SDK's argument model of a tool (its parameters, ``taken``), refusing an argument the tool does not take,
    and wording every refusal as the tools word their own (:class:`_ArgumentsError`)."""
    refused: type[_ArgumentsError] = type("ArgumentsError", (_ArgumentsError,), {"taken": taken})

    class Arguments(lenient):  # type: ignore[misc, valid-type]
        model_config = ConfigDict(extra="forbid")

        @classmethod
        def model_validate(cls, obj: Any, **kwargs: Any) -> Any:
            try:
                return super().model_validate(obj, **kwargs)
            except ValidationError as error:  # the SDK prints it whole: pydantic's types, inputs and links
                raise refused.from_exception_data(error.title, cast(Any, error.errors())) from None

    Arguments.__name__ = Arguments.__qualname__ = lenient.__name__  # "<tool>Arguments", as the SDK names it
    return Arguments


class _ArgumentsError(ValidationError):
    """Arguments a tool's input schema refuses, worded as the tools word their own refusals (the SDK puts
    "Error executing tool NAME: " before it): ``where: what`` for each, and for an argument the tool does not
    take, the ones it does."""

    taken: ClassVar[list[str]] = []

    def __str__(self) -> str:
        return _validation_message(self, self.taken)


def serve(
    transport: Transport = "stdio",
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    url: str | None = None,
    token: str | None = None,
    read_only: bool = False,
    announce: Callable[[str], Any] | None = None,
    host_allowed: Callable[[str], bool] | None = None,
) -> None:
    """Serve the tools until the client disconnects (stdio) or the process is stopped (HTTP).

    The facade is opened before serving, so a misconfiguration (a bad database URL, an unsafe host) fails here
    with its message instead of on an agent's first call.

    Over HTTP the endpoint is guarded as :mod:`trainops.mcp.http_security` explains: a ``Host`` or an ``Origin``
    from another site is refused (421, 403), and with a ``token`` every request must send it as
    ``Authorization: Bearer <token>`` (401).

    Args:
        token: The trainops server's bearer token (with ``url``); over HTTP also the token every client must send
            (``trainops mcp`` passes ``--token``, else ``TRAINOPS_API_TOKEN``). ``None``: the tools go to a server
            with the ``TRAINOPS_API_TOKEN`` of the settings, and the HTTP endpoint asks for none.
        host_allowed: Which ``Host`` header values to serve over HTTP (``trainops mcp`` passes the REST server's
            rule: the loopback names, and ``TRAINOPS_ALLOWED_HOSTS``); the loopback names when not given. An
            ``Origin`` passes when its host passes this rule.

    Raises:
        ConfigurationError: a non-loopback ``host`` for HTTP, or trainops settings that cannot work.
    """
    if transport == "http":
        check_loopback(host)
    ops = connect(url, token)
    server = create_server(lambda: ops, read_only=read_only)
    if transport == "stdio":
        server.run("stdio")
        return
    required = (token or "").strip() or None  # as the settings read TRAINOPS_API_TOKEN: without its line's end
    if announce is not None:
        announce(_http_banner(host, port, read_only=read_only, token_required=required is not None))
    # the SDK's check knows exact names only and no token: the guard does both (see http_security)
    unchecked = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, transport_security=unchecked, host=host)
    guarded = HttpGuard(app, host_allowed=host_allowed or loopback_host, token=required)
    # an agent's open session must not keep a stopped server alive: 5 s for open requests, as `trainops serve`
    uvicorn.run(guarded, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)


def _http_banner(host: str, port: int, *, read_only: bool, token_required: bool) -> str:
    mode = " (read-only)" if read_only else ""
    where = f"trainops MCP server{mode} on http://{_url_host(host)}:{port}{HTTP_PATH} (streamable HTTP)"
    if token_required:
        return f"{where}: clients send 'Authorization: Bearer <token>' with the token this server was given"
    return (
        f"{where}. No token is set, so any user or process on this machine can call its tools; to require one, "
        "start it with TRAINOPS_API_TOKEN set (e.g. `export TRAINOPS_API_TOKEN=$(openssl rand -hex 32)`) and have "
        "clients send 'Authorization: Bearer <token>'"
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
