"""What a run could not deliver, kept on disk until the server takes it: the spill files and ``trainops sync``.

A run reporting over HTTP keeps its epochs in memory while the server is unreachable; past
``max_queued_epochs`` it spills them, and at its end everything still unsent (epochs, step points and the run's
end: status, result, error), to one file per run:

    $TRAINOPS_HOME/unsent/<operation_id>/<UTC time>-<pid>.jsonl

Each line is one JSON object with one key, oldest first::

    {"run": {"operation_id": "op_training_...", "url": "http://host:8000", "created_at": "..."}}   (first line)
    {"epoch": {"epoch": 3, "val_loss": 0.41, "timestamp": "..."}}
    {"step": {"step": 1200, "metrics": {"loss": 0.4}, "timestamp": "..."}}
    {"end": {"status": "completed", "result": {...}, "error": null}}                             (last, if any)

A run that began while the server was unreachable has no operation there yet: its header also holds
``"register"``, the request that registers it (``POST /operations`` with the id the run chose), which
:func:`sync_file` sends first; an id the server already has is the same run, registered since.

:func:`sync_file` sends a file's records in order (re-sending is harmless: the server upserts epochs and steps by
number), then the run's end, and deletes the file. Files of one operation sort by time, so they are synced in
the order they were written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from pydantic import ValidationError

from trainops.core.epoch import EpochRecord
from trainops.core.operation import Operation, OperationMetadata, OperationStatus, WriteAck
from trainops.core.payload import storable
from trainops.core.steps import StepRecord
from trainops.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    TrainOpsError,
    http_status_for,
    sentence,
)
from trainops.schemas.operations import CreateOperationRequest

logger = logging.getLogger("trainops.client")

UNSENT_DIR = "unsent"
SYNC_BATCH = 500


def unsent_dir(home: Path | None = None) -> Path:
    """Where runs keep what they could not send: ``$TRAINOPS_HOME/unsent`` (``~/.trainops/unsent``)."""
    if home is None:
        from trainops.settings import get_settings  # read only when a run first has to spill

        home = get_settings().home
    return home.expanduser() / UNSENT_DIR


# -- how an error reads ------------------------------------------------------------------------------------------


def is_refusal(error: TrainOpsError) -> bool:
    """The server refused these records themselves (422 invalid, 413 too large): another batch may pass."""
    return http_status_for(error) in {413, 422}


def is_outage(error: TrainOpsError) -> bool:
    """The server is unreachable or failing (5xx), or does not take the token now (401: a token rotated, an
    authenticating proxy's glitch): the records are fine; keep them, try again later (``trainops sync --token``)."""
    return http_status_for(error) >= 500 or isinstance(error, AuthenticationError)


T = TypeVar("T")


def settle(
    send: Callable[[list[T]], WriteAck],
    batch: list[T],
    *,
    on_answer: Callable[[WriteAck], None],
    on_drop: Callable[[T, TrainOpsError], None],
) -> tuple[int, TrainOpsError | None]:
    """Send ``batch`` in order and find the records the server refuses, so one bad record never costs the others.

    A refused batch (:func:`is_refusal`) is split in halves, each sent on its own, down to the single records
    that are refused: those go to ``on_drop`` with the server's error; ``k`` bad records among ``n`` cost about
    ``2 k log2(n)`` requests.

    Returns:
        How many records from the front of ``batch`` are settled (stored, or dropped as refused), and the error
        that stopped the sending before the end (an outage or a final error such as 409), ``None`` when all are.
    """
    try:
        answer = send(batch)
    except TrainOpsError as error:
        if not is_refusal(error):
            return 0, error
        if len(batch) == 1:
            on_drop(batch[0], error)
            return 1, None
        middle = len(batch) // 2
        done, stopped = settle(send, batch[:middle], on_answer=on_answer, on_drop=on_drop)
        if stopped is not None:
            return done, stopped
        more, stopped = settle(send, batch[middle:], on_answer=on_answer, on_drop=on_drop)
        return done + more, stopped
    on_answer(answer)
    return len(batch), None


# -- the file ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How a run ended, when the server could not be told."""

    status: OperationStatus
    result: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Unsent:
    """What a run's end could not deliver, and where it was kept (``path``, ``None`` when it could not be
    written). :meth:`Run.finish <trainops.client.run.Run.finish>` answers one and logs :attr:`message`."""

    operation_id: str
    path: Path | None
    epochs: int
    steps: int
    end: bool
    reason: str
    registration: bool = False
    """Whether the operation's registration waits too (the run never reached the server)."""
    token_refused: bool = False
    """Whether the server was up and refused the token (a sync needs the right one), rather than away."""

    @property
    def message(self) -> str:
        parts = ["its registration"] if self.registration else []
        parts += [f"{self.epochs} epoch(s)"] + ([f"{self.steps} step(s)"] if self.steps else [])
        if self.end:
            parts.append("the run's end")
        what = ", ".join(parts)
        if self.path is None:
            return f"operation {self.operation_id}: {what} could not be sent ({self.reason}) nor kept on disk; lost"
        when = (
            "with the server's token (--token, or TRAINOPS_API_TOKEN)"
            if self.token_refused
            else "once the server is back"
        )
        return (
            f"operation {self.operation_id}: {what} could not be sent ({self.reason}); kept in {self.path}: "
            f"send them with `trainops sync {self.operation_id}` {when}"
        )


class UnsentFile:
    """One run's spill file (see the module's docstring), created on the first write.

    Args:
        directory: The ``unsent`` directory (:func:`unsent_dir`).
        operation_id: The run's operation.
        url: The server the run reported to (recorded for ``trainops sync``; ``None`` in-process).
        register: The request that registers the operation, when the server does not know it yet.
    """

    def __init__(
        self, directory: Path, operation_id: str, url: str | None, register: CreateOperationRequest | None = None
    ) -> None:
        self.operation_id = operation_id
        self.url = url
        self.register = register
        now = datetime.now(UTC)
        self.path = directory / operation_id / f"{now:%Y%m%dT%H%M%S%fZ}-{os.getpid()}.jsonl"
        self._handle: IO[str] | None = None

    def _open(self) -> IO[str]:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
            header: dict[str, Any] = {
                "operation_id": self.operation_id,
                "url": self.url,
                "created_at": datetime.now(UTC).isoformat(),
            }
            if self.register is not None:
                header["register"] = self.register.model_dump(mode="json", exclude_none=True)
            self._write_lines([{"run": header}])
        return self._handle

    def _write_lines(self, items: Iterable[dict[str, Any]]) -> int:
        assert self._handle is not None
        self._handle.write("".join(json.dumps(item, allow_nan=False) + "\n" for item in items))
        self._handle.flush()
        return self._handle.tell()

    def append_epochs(self, records: Sequence[EpochRecord]) -> int:
        """Append epoch lines; answers the file's size after them."""
        self._open()
        return self._write_lines({"epoch": record.model_dump(mode="json", exclude_none=True)} for record in records)

    def append_steps(self, points: Sequence[StepRecord]) -> None:
        self._open()
        self._write_lines({"step": point.model_dump(mode="json", exclude_none=True)} for point in points)

    def append_raw(self, lines: Sequence[str]) -> None:
        """Append lines read from another spill file as they are."""
        self._open()
        assert self._handle is not None
        self._handle.write("".join(lines))
        self._handle.flush()

    def append_end(self, end: RunEnd) -> None:
        self._open()
        result = storable(end.result, "result")  # NaN spelled as on the wire, numpy numbers as plain ones
        self._write_lines([{"end": {"status": end.status.value, "result": result, "error": end.error}}])

    def read_epochs(self, offset: int, most: int) -> tuple[list[EpochRecord], list[int]]:
        """Up to ``most`` epochs from byte ``offset`` on, and the offset after each of them."""
        records: list[EpochRecord] = []
        ends: list[int] = []
        with self.path.open("rb") as handle:
            handle.seek(offset)
            while len(records) < most:
                line = handle.readline()
                if not line.endswith(b"\n"):
                    break
                offset += len(line)
                item = json.loads(line)
                if "epoch" in item:
                    records.append(EpochRecord.model_validate(item["epoch"]))
                    ends.append(offset)
        return records, ends

    def read_lines_from(self, offset: int) -> list[str]:
        with self.path.open("r", encoding="utf-8") as handle:
            handle.seek(offset)
            return handle.readlines()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def remove(self) -> None:
        self.close()
        remove_file(self.path)


def remove_file(path: Path) -> None:
    """Delete a synced file, and its operation's directory once empty."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # other files of the operation are left
        path.parent.rmdir()


def writer_running(path: Path) -> int | None:
    """The process still writing the spill file ``path``, when it runs on this machine (its pid ends the file's
    name) and is not this one; else ``None``. A live run keeps appending to its file and reads it back to send once
    the server answers: sent and deleted under it, the epochs it spills afterwards would be lost.

    >>> print(writer_running(Path("20250610T120000000000Z-999999999.jsonl")))
    None
    """
    pid = path.stem.rpartition("-")[2]
    if not pid.isdigit() or int(pid) == os.getpid():
        return None
    try:
        os.kill(int(pid), 0)  # signal 0: is it there? (sends nothing)
    except ProcessLookupError:
        return None
    except PermissionError:
        return int(pid)  # there, another user's
    except (OverflowError, OSError):
        return None  # not a pid this machine can have
    return int(pid)


# -- reading and syncing -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Leftovers:
    """What one spill file holds."""

    path: Path
    operation_id: str
    url: str | None
    register: CreateOperationRequest | None = None
    """The request that registers the operation first (the server was unreachable when the run began)."""
    epochs: list[EpochRecord] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    end: RunEnd | None = None

    def describe(self) -> str:
        """One line for a person: the operation, what waits, and the server it was meant for."""
        parts = []
        if self.epochs:
            numbers = sorted({record.epoch for record in self.epochs})
            parts.append(f"{len(self.epochs)} epoch(s) ({numbers[0]}-{numbers[-1]})")
        if self.steps:
            parts.append(f"{len(self.steps)} step(s)")
        if self.end is not None:
            parts.append(f"the end ({self.end.status.value})")
        where = f" for {self.url}" if self.url else ""
        new = " (not registered yet: sync registers it first)" if self.register is not None else ""
        return f"{self.operation_id}{new}: {', '.join(parts) or 'nothing'}{where} [{self.path}]"


def read_leftovers(path: Path) -> Leftovers:
    """Read a spill file. A last line cut short (the process died while writing it) is ignored.

    Raises:
        InvalidInputError: the file is not a trainops spill file, or a line is damaged; the message names it.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError) as error:  # a folder by that name, a file damaged outside trainops
        problem = error.strerror if isinstance(error, OSError) else f"not UTF-8 text ({error.reason})"
        raise InvalidInputError(
            f"{path} cannot be read as a trainops spill file: {problem}; move it out of the unsent folder",
            details={"path": str(path)},
        ) from None
    if lines and not lines[-1].endswith("\n"):
        lines.pop()  # torn by a crash mid-write
    leftovers: Leftovers | None = None
    for number, line in enumerate(lines, start=1):
        try:
            item = json.loads(line)
            if leftovers is None:
                header = item["run"]
                leftovers = Leftovers(path, str(header["operation_id"]), header.get("url"))
                if header.get("register") is not None:
                    leftovers.register = _registration(header["register"], leftovers.operation_id)
            elif "epoch" in item:
                leftovers.epochs.append(EpochRecord.model_validate(item["epoch"]))
            elif "step" in item:
                leftovers.steps.append(StepRecord.model_validate(item["step"]))
            elif "end" in item:
                end = item["end"]
                leftovers.end = RunEnd(OperationStatus(end["status"]), end.get("result"), end.get("error"))
            else:
                raise ValueError(f"unknown record {sorted(item)}")
        except (ValueError, KeyError, TypeError, ValidationError) as error:
            raise InvalidInputError(
                f"{path} line {number} is not a trainops spill record ({type(error).__name__}: {error}); "
                "fix or delete that line, or the file",
                details={"path": str(path), "line": number},
            ) from None
    if leftovers is None:
        raise InvalidInputError(f"{path} is empty, not a trainops spill file; delete it", details={"path": str(path)})
    return leftovers


def _registration(fields: Any, operation_id: str) -> CreateOperationRequest:
    """The header's ``register`` request, which must register the file's own operation."""
    request = CreateOperationRequest.model_validate(fields)
    if request.operation_id != operation_id:
        raise ValueError(f"it registers {request.operation_id!r}, not the file's operation {operation_id!r}")
    return request


def register(ops: SyncClient, request: CreateOperationRequest) -> tuple[Operation, bool]:
    """Register the operation ``request`` describes, under the id it names, once: an id the server already has is
    this same request, taken before (its answer lost, or the run registered it since).

    Returns:
        The operation, and whether this call registered it (``False``: it was there already).

    Raises:
        TrainOpsError: the server is unreachable, or refuses the request (the message says why).
    """
    assert request.operation_id is not None, "only a request with its id can be sent again"
    try:
        return create(ops, request), True
    except ConflictError:
        return ops.get_operation(request.operation_id), False


def create(ops: SyncClient, request: CreateOperationRequest) -> Operation:
    """``ops.create_operation`` with the fields of ``request``."""
    return ops.create_operation(
        request.operation_type,
        metadata=request.metadata,
        total_epochs=request.total_epochs,
        name=request.name,
        tags=request.tags,
        notes=request.notes,
        operation_id=request.operation_id,
        started_at=request.started_at,
    )


def spill_files(targets: Sequence[str], directory: Path) -> list[Path]:
    """The spill files that ``targets`` name (all under ``directory`` when none), oldest first per operation.

    A target is a file, a directory (every ``*.jsonl`` below it) or an operation id (its directory under
    ``directory``).

    Raises:
        NotFoundError: a target is none of these.
    """
    if not targets:
        return sorted(directory.glob("*/*.jsonl")) if directory.is_dir() else []
    found: list[Path] = []
    for target in targets:
        path = Path(target).expanduser()
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(path.rglob("*.jsonl")))
        elif (directory / target).is_dir():
            found.extend(sorted((directory / target).glob("*.jsonl")))
        else:
            raise NotFoundError(
                f"{target!r} is neither a spill file, a directory, nor an operation with unsent records in "
                f"{directory}; list them with `trainops sync --dry-run`",
                details={"target": target},
            )
    return list(dict.fromkeys(found))


class SyncClient(Protocol):
    """The part of :class:`~trainops.client.base.TrainOps` that :func:`sync_file` uses."""

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
    ) -> Operation: ...

    def get_operation(self, operation_id: str) -> Operation: ...

    def add_epochs(self, operation_id: str, records: Sequence[EpochRecord]) -> WriteAck: ...

    def add_steps(self, operation_id: str, records: Sequence[StepRecord]) -> WriteAck: ...

    def finish_operation(
        self,
        operation_id: str,
        status: OperationStatus | str = OperationStatus.COMPLETED,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> Operation: ...


@dataclass(slots=True)
class SyncResult:
    """What :func:`sync_file` delivered from one file (which it then deleted)."""

    path: Path
    operation_id: str
    epochs: int = 0
    steps: int = 0
    dropped: list[str] = field(default_factory=list)
    status: OperationStatus | None = None
    registered: bool = False
    """Whether this file registered its operation (the server had not heard of the run before)."""


def sync_file(ops: SyncClient, path: Path) -> SyncResult:
    """Send one spill file's records in order, then the run's end, and delete the file.

    Records the server refuses (422) are dropped, each named in :attr:`SyncResult.dropped` and logged as a
    warning; everything else lands. Nothing is deleted unless all of it was delivered.

    Raises:
        ServiceUnavailableError: the server is unreachable (the file is kept; run it again later).
        NotFoundError: the server has no such operation (is it the server the run reported to?).
        ConflictError: the operation already ended, so it takes no more epochs; the file is kept.
        InvalidInputError: the file is damaged.
    """
    leftovers = read_leftovers(path)
    operation_id = leftovers.operation_id
    result = SyncResult(path, operation_id)
    if leftovers.register is not None:
        try:
            result.registered = register(ops, leftovers.register)[1]
        except TrainOpsError as error:
            raise _explained(error, leftovers, "record") from None

    def dropped(record: EpochRecord | StepRecord, error: TrainOpsError) -> None:
        what = f"epoch {record.epoch}" if isinstance(record, EpochRecord) else f"step {record.step}"
        message = f"operation {operation_id}: the server refused {what}, dropped: {error.message}"
        logger.warning("trainops: %s", message)
        result.dropped.append(message)

    def send_epochs(batch: list[EpochRecord]) -> WriteAck:
        return ops.add_epochs(operation_id, batch)

    def send_steps(batch: list[StepRecord]) -> WriteAck:
        return ops.add_steps(operation_id, batch)

    result.epochs = _send_all(send_epochs, leftovers.epochs, dropped, leftovers, "epoch")
    result.steps = _send_all(send_steps, leftovers.steps, dropped, leftovers, "step")
    if leftovers.end is not None:
        end = leftovers.end
        try:
            operation = ops.finish_operation(operation_id, end.status, result=end.result, error=end.error)
        except ConflictError:
            operation = ops.get_operation(operation_id)  # ended since (by this end, sent before, or by someone)
        result.status = operation.status
    remove_file(path)
    return result


def _send_all(
    send: Callable[[list[Any]], WriteAck],
    items: Sequence[Any],
    dropped: Callable[[Any, TrainOpsError], None],
    leftovers: Leftovers,
    kind: str,
) -> int:
    """Send ``items`` in batches, in order; how many were stored (the refused ones are dropped)."""
    refused = 0

    def drop(record: Any, error: TrainOpsError) -> None:
        nonlocal refused
        refused += 1
        dropped(record, error)

    for start in range(0, len(items), SYNC_BATCH):
        _, stopped = settle(send, list(items[start : start + SYNC_BATCH]), on_answer=lambda _: None, on_drop=drop)
        if stopped is not None:
            raise _explained(stopped, leftovers, kind)
    return len(items) - refused


def _explained(error: TrainOpsError, leftovers: Leftovers, kind: str) -> TrainOpsError:
    """``error`` with what it means for this file, and the way out."""
    keep = f"{leftovers.path} is kept"
    if isinstance(error, NotFoundError):
        hint = (
            f"the run reported to {leftovers.url}: sync to that server with --url"
            if leftovers.url
            else "the run reported in-process: sync on its database (TRAINOPS_DATABASE_URL) or with --url"
        )
        return NotFoundError(f"no operation {leftovers.operation_id} there; {hint}. {keep}", details=error.details)
    if isinstance(error, ConflictError):
        return ConflictError(
            f"{error.message.split(';')[0]}; it takes no more records, so the {kind}s left in {leftovers.path} "
            "cannot be added. Delete the file if you do not need them.",
            details=error.details,
        )
    if isinstance(error, AuthenticationError):
        return AuthenticationError(
            f"{sentence(error.message)} {keep}; run `trainops sync` again with the server's token (--token or "
            "TRAINOPS_API_TOKEN)",
            details=error.details,
        )
    return type(error)(f"{sentence(error.message)} {keep}; run `trainops sync` again later", details=error.details)
