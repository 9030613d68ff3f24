"""LocalExecutor: the server's training jobs, each in its own worker process, a bounded number at a time.

A process per job keeps training off the API's event loop and out of its GIL, and a crash (out of memory, a
segfault in a native library) takes down one job, not the server. Jobs wait in a queue, pending, until a slot
frees. The executor watches its workers: one that exits without ending its operation gets the operation failed
with the exit code and the path of its log.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections import deque
from dataclasses import dataclass

from trainops.core.operation import OperationStatus
from trainops.errors import ConflictError, NotFoundError, TrainOpsError
from trainops.service.operations import OperationsService
from trainops.service.workers import spawn_worker, worker_log_path
from trainops.settings import Settings

logger = logging.getLogger("trainops.executors")

POLL_SECONDS = 0.2


@dataclass
class _Worker:
    operation_id: str
    process: subprocess.Popen[bytes]


class LocalExecutor:
    """Runs training operations in worker processes, at most ``max_concurrent`` at once.

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
        self._thread = threading.Thread(target=self._loop, name="trainops-executor", daemon=True)
        self._thread.start()

    def submit(self, operation_id: str) -> None:
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
        if operation.is_active:
            self._fail(
                worker.operation_id,
                f"the worker process (pid {worker.process.pid}) exited with code {code} before the training ended; "
                f"its log is {log}",
            )

    def _fail(self, operation_id: str, reason: str) -> None:
        try:
            self.service.fail(operation_id, reason)
        except (ConflictError, NotFoundError):
            pass  # it ended (or vanished) meanwhile
        except TrainOpsError as error:
            logger.warning("could not fail %s: %s", operation_id, error.message)
