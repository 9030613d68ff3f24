"""LocalExecutor: the server's training jobs, each in its own worker process, a bounded number at a time.

A process per job keeps training off the API's event loop and out of its GIL, and a crash (out of memory, a
segfault in a native library) takes down one job, not the server. Jobs wait in a queue, pending, until a slot
frees. The executor watches its workers: one that exits without ending its operation gets the operation failed
with the exit code and the path of its log.

Its workers start in sessions of their own, so a worker and whatever it started (data loader processes) form one
process group: a cancel its worker does not heed is enforced by terminating that group (:func:`stop_local_worker`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trainops.core.operation import Operation, OperationStatus
from trainops.errors import ConflictError, NotFoundError, TrainOpsError
from trainops.schemas.operations import ExecutorJob
from trainops.schemas.training import Resources
from trainops.service.operations import OperationsService
from trainops.service.workers import (
    check_local_resources,
    end_lost,
    local_workers_lost,
    spawn_worker,
    worker_log_path,
)
from trainops.settings import Settings

logger = logging.getLogger("trainops.executors")

POLL_SECONDS = 0.2

STOP_SECONDS = 5.0
"""How long a worker's process group gets to exit after SIGTERM before it is sent SIGKILL."""

WORKER_MODULE = "trainops.executors.worker"


@dataclass
class _Worker:
    operation_id: str
    process: subprocess.Popen[bytes]


class LocalExecutor:
    """Runs training operations in worker processes, at most ``max_concurrent`` at once.

    ``resources`` are recorded on the operation and checked against this machine (more CPUs than it has, or GPUs
    it lacks, are refused); they do not pin the worker to particular cores or devices.

    Args:
        service: Where operations live (to check they are still pending, and to fail crashed ones).
        settings: Pinned into each worker's environment (database, data and model directories).
        max_concurrent: Workers running at once; defaults to ``settings.max_concurrent_jobs``.
    """

    def __init__(self, service: OperationsService, settings: Settings, *, max_concurrent: int | None = None) -> None:
        self.service = service
        self.settings = settings
        self.max_concurrent = max_concurrent or settings.max_concurrent_jobs
        self._queue: deque[str] = deque()
        self._running: list[_Worker] = []
        self._cond = threading.Condition()
        self._closed = False
        self._stopping: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="trainops-executor", daemon=True)
        self._thread.start()

    name = "local"

    def check(self, resources: Resources | None) -> None:
        """Refuse more CPUs than this machine has, or GPUs it does not have."""
        check_local_resources(resources)

    def submit(self, operation_id: str, resources: Resources | None = None) -> None:
        """Queue a pending training operation; it starts when a slot is free."""
        with self._cond:
            if self._closed:
                raise ConflictError("the executor is shutting down; start the training again once it is back")
            self._queue.append(operation_id)
            self._cond.notify_all()

    @property
    def queued(self) -> list[str]:
        with self._cond:
            return list(self._queue)

    @property
    def running(self) -> list[str]:
        with self._cond:
            return [worker.operation_id for worker in self._running]

    def cancel(self, operation_id: str, reason: str) -> bool:
        """Terminate the operation's worker process group (SIGTERM, then SIGKILL after a few seconds) and mark
        the operation cancelled; a queued one just leaves the queue. Answers whether a worker was stopped."""
        with self._cond:
            if operation_id in self._queue:
                self._queue.remove(operation_id)
            children = {worker.operation_id: worker.process for worker in self._running}
            self._stopping.add(operation_id)
        try:
            ask_cancel(self.service, operation_id, reason)
            operation = self.service.get(operation_id)
            stopped = stop_local_worker(operation, children.get(operation_id))
            how = "its worker process was terminated" if stopped else "no worker process of it runs on this host"
            mark_cancelled(self.service, operation_id, reason, how)
            return stopped
        finally:
            with self._cond:
                self._stopping.discard(operation_id)

    def view(self, operation_id: str) -> ExecutorJob | None:
        """Queued (``PENDING``, with its place) or running in one of this executor's worker processes."""
        with self._cond:
            queue = list(self._queue)
            process = next((w.process for w in self._running if w.operation_id == operation_id), None)
        if operation_id in queue:
            ahead = queue.index(operation_id)
            return ExecutorJob(
                executor=self.name,
                job_id=operation_id,
                status="PENDING",
                message=f"waiting for a free slot: {ahead} queued ahead, {self.max_concurrent} run at once "
                "(TRAINOPS_MAX_CONCURRENT_JOBS)",
            )
        if process is None:
            return None
        code = process.poll()
        return ExecutorJob(
            executor=self.name,
            job_id=f"{socket.gethostname()}:{process.pid}",
            status="RUNNING" if code is None else ("SUCCEEDED" if code == 0 else "FAILED"),
            exit_code=code,
        )

    def lost(self, operations: Sequence[Operation]) -> dict[str, str]:
        """Running local operations whose worker process on this host is gone (its own workers' exits are
        noticed sooner, with their exit code, by its watcher)."""
        with self._cond:
            own = {worker.operation_id for worker in self._running} | self._stopping
        return local_workers_lost(operations, exclude=own)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop starting jobs; fail the queued ones. Running workers go on: they report to the database."""
        with self._cond:
            self._closed = True
            queued, self._queue = list(self._queue), deque()
            self._cond.notify_all()
        for operation_id in queued:
            self._fail(operation_id, "the server stopped before this training started; start it again")
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait(POLL_SECONDS)
                if self._closed:
                    return
                finished = [worker for worker in self._running if worker.process.poll() is not None]
                self._running = [worker for worker in self._running if worker not in finished]
                startable: list[str] = []
                while self._queue and len(self._running) + len(startable) < self.max_concurrent:
                    startable.append(self._queue.popleft())
            for worker in finished:
                self._reap(worker)
            for operation_id in startable:
                self._start(operation_id)

    def _start(self, operation_id: str) -> None:
        try:
            if self.service.get(operation_id).status is not OperationStatus.PENDING:
                return  # cancelled while it waited
            process = spawn_worker(operation_id, self.settings)
        except NotFoundError:
            return
        except (TrainOpsError, OSError) as error:
            self._fail(operation_id, f"could not start a worker process: {error}")
            return
        logger.info("started worker %s for %s", process.pid, operation_id)
        with self._cond:
            self._running.append(_Worker(operation_id, process))

    def _reap(self, worker: _Worker) -> None:
        code = worker.process.returncode
        log = worker_log_path(self.settings, worker.operation_id)
        try:
            operation = self.service.get(worker.operation_id)
        except TrainOpsError:
            return
        with self._cond:
            if worker.operation_id in self._stopping:
                return  # stopped by cancel(), which marks it cancelled
        if operation.is_active:
            how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
            self._fail(
                worker.operation_id,
                f"the worker process (pid {worker.process.pid}) {how} before the training ended; its log is {log}",
            )

    def _fail(self, operation_id: str, reason: str) -> None:
        """Fail it (cancelled, if its cancel had been asked: :func:`end_lost`), unless it ended meanwhile."""
        try:
            end_lost(self.service, operation_id, reason)
        except (ConflictError, NotFoundError):
            pass  # it ended (or vanished) meanwhile
        except TrainOpsError as error:
            logger.warning("could not fail %s: %s", operation_id, error.message)


# -- local workers, whoever started them -------------------------------------------------------------------------


def stop_local_worker(operation: Operation, process: subprocess.Popen[bytes] | None = None) -> bool:
    """Terminate the process group of ``operation``'s worker on this host: SIGTERM, then SIGKILL to whatever of
    the group is left after :data:`STOP_SECONDS` (data loader processes included: nothing keeps holding a GPU).
    Answers whether there was a worker to stop.

    ``process`` is a worker this process started; otherwise the pid recorded on the operation (``host:pid``) is
    stopped only when it is on this host and its command line is the worker of this very operation, so a pid the
    system reused for another process is never signalled.
    """
    pid = process.pid if process is not None else _recorded_worker_pid(operation)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)  # workers lead their own session: the group is the worker and its children
    except (ProcessLookupError, PermissionError):
        return False
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and _alive(pid, process):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_SECONDS)
    return True


def _alive(pid: int, process: subprocess.Popen[bytes] | None) -> bool:
    if process is not None:
        return process.poll() is None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie holds nothing; its parent reaps it


def _recorded_worker_pid(operation: Operation) -> int | None:
    host, _, pid_text = (operation.metadata.worker or "").rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    try:
        command = Path(f"/proc/{pid_text}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None  # gone, or no /proc here: nothing that can be stopped safely
    if WORKER_MODULE.encode() not in command or operation.operation_id.encode() not in command:
        return None
    return int(pid_text)


def ask_cancel(service: OperationsService, operation_id: str, reason: str) -> None:
    """Record the cancel (asked by trainops, with ``reason``) before its job is stopped by force, unless one is
    recorded already: a reaper that finds the job gone before :func:`mark_cancelled` runs (its sweep on another
    thread or server) then ends the operation cancelled, not failed."""
    try:
        operation = service.get(operation_id)
        if operation.is_active and operation.cancel_request is None:
            service.cancel(operation_id, reason, requested_by="trainops")
    except (ConflictError, NotFoundError):
        pass  # it ended (or vanished) meanwhile


def mark_cancelled(service: OperationsService, operation_id: str, reason: str, how: str) -> None:
    """End a stopped operation cancelled: its cancel request keeps the reason; ``error`` says it was forced."""
    ask_cancel(service, operation_id, reason)
    try:
        if not service.get(operation_id).is_active:
            return
        service.finish(
            operation_id,
            OperationStatus.CANCELLED,
            error=f"stopped by force ({how}): it did not stop by itself after the cancel ({reason})",
        )
    except (ConflictError, NotFoundError):
        pass  # it ended (or vanished) meanwhile


def _signal_name(number: int) -> str:
    """``SIGKILL (signal 9)``, or ``signal 42`` for a number the system does not name."""
    try:
        return f"{signal.Signals(number).name} (signal {number})"
    except ValueError:
        return f"signal {number}"
