"""The reaper: a server thread that notices trainings whose worker or job died, and cancels not heeded.

Every ``TRAINOPS_REAPER_INTERVAL`` seconds it reads the active operations and

- fails those whose job died without ending them, with the reason: a local worker process gone from this host
  (killed, out of memory), a Ray job that ended FAILED or STOPPED (Ray's message: node lost, OOM, stopped) or that
  the cluster no longer knows and whose worker has gone quiet. Before it, only a server restart failed them, so a
  worker that died after one stayed ``running`` until the next;
- stops by force the running trainings cancelled more than ``TRAINOPS_CANCEL_GRACE`` seconds ago whose worker did
  not stop at a batch (Ray: ``stop_job``; local: the worker's process group), and marks them cancelled;
- ends cancelled a run this server cannot stop (an outside script's, reporting over the API) whose cancel is past
  its grace and from which nothing has been heard for as long: its process has ended without saying so (killed,
  SIGTERM from a scheduler). A run still reporting is left alone: it hears the cancel with its next answer.

It works from the database and the executors' view, not from memory, so it also covers runs started by a previous
server, by ``trainops train --detach``, or by another server of the deployment (several may run a reaper: ending
an operation twice is refused, and stopping a stopped job is a no-op).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from trainops.core.operation import Operation, OperationStatus
from trainops.errors import ConflictError, NotFoundError, TrainOpsError
from trainops.executors.base import Executor
from trainops.executors.local import mark_cancelled, stop_local_worker
from trainops.service.operations import OperationsService
from trainops.service.workers import end_lost, local_workers_lost

logger = logging.getLogger("trainops.executors")

PAGE = 1000


class Reaper:
    """Sweeps the active operations for dead jobs and unheeded cancels; :meth:`start` runs it on a thread.

    Args:
        service: Where operations live.
        executor: The server's executor: its view of its jobs, and how it stops one.
        interval: Seconds between sweeps.
        grace: Seconds a cancelled training gets to stop by itself.
        clock: Current time (tests pass a fake one).
    """

    def __init__(
        self,
        service: OperationsService,
        executor: Executor,
        *,
        interval: float,
        grace: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.service = service
        self.executor = executor
        self.interval = interval
        self.grace = grace
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()
        """Operations whose overdue cancel was logged: a job this server cannot stop stays overdue every sweep."""

    def start(self) -> None:
        """Sweep every ``interval`` seconds on a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="trainops-reaper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def sweep(self) -> list[str]:
        """One pass: fail the operations whose job died, force the cancels past their grace. Answers the ids of
        the operations it ended."""
        active = self._active()
        ended: list[str] = []
        lost = self.executor.lost(active)
        if self.executor.name != "local":  # local runs left by `trainops train --detach` or an earlier server
            lost.update(local_workers_lost(active, now=self._clock()))
        for operation_id, reason in lost.items():
            try:
                self._end_lost(operation_id, reason)
            except (ConflictError, NotFoundError):
                continue  # it ended meanwhile
            ended.append(operation_id)
        now = self._clock()
        self._warned &= {operation.operation_id for operation in active}
        for operation in active:
            request = operation.cancel_request
            if (
                operation.operation_id in lost
                or request is None
                or operation.status is not OperationStatus.RUNNING
                or (now - request.requested_at).total_seconds() < self.grace
            ):
                continue
            if self._force_cancel(operation, request.reason, now):
                ended.append(operation.operation_id)
        return ended

    def _end_lost(self, operation_id: str, reason: str) -> None:
        if end_lost(self.service, operation_id, reason) is OperationStatus.FAILED:
            logger.warning("failed %s: %s", operation_id, reason)
        else:
            logger.warning("cancelled %s: its job ended after the cancel: %s", operation_id, reason)

    def _force_cancel(self, operation: Operation, reason: str, now: datetime) -> bool:
        executor = operation.metadata.executor
        if operation.operation_id not in self._warned:
            self._warned.add(operation.operation_id)
            logger.warning(
                "%s did not stop within %.0f s of its cancel; stopping its %s job",
                operation.operation_id,
                self.grace,
                executor,
            )
        if executor == self.executor.name:
            self.executor.cancel(operation.operation_id, reason)
        elif executor == "local" and stop_local_worker(operation):
            mark_cancelled(self.service, operation.operation_id, reason, "its worker process was terminated")
        elif (silence := _silent_for(operation, now)) >= self.grace:
            # a job this server cannot reach (an outside script's) that has gone quiet: nobody else will end it
            with contextlib.suppress(ConflictError, NotFoundError):  # it ended (or vanished) meanwhile
                self.service.finish(
                    operation.operation_id,
                    OperationStatus.CANCELLED,
                    error=f"ended by the server: nothing was heard from the run for {silence:.0f} s after its cancel "
                    f"({reason}); its process ended without saying so",
                )
        else:
            return False  # a job this server cannot reach, still reporting: it hears the cancel at its next write
        return not self.service.get(operation.operation_id).is_active

    def _active(self) -> list[Operation]:
        active: list[Operation] = []
        while True:
            page = self.service.list_operations(active_only=True, limit=PAGE, offset=len(active))
            active.extend(page.items)
            if len(page.items) < PAGE:
                return active

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep()
            except TrainOpsError as error:
                logger.warning("the reaper's sweep failed: %s", error.message)
            except Exception:  # the reaper must outlive any one bad sweep (a database blip)
                logger.exception("the reaper's sweep failed")


def _silent_for(operation: Operation, now: datetime) -> float:
    """Seconds since the operation last wrote anything (an epoch, progress, a heartbeat), started, or was created."""
    return (now - (operation.last_heard_at or operation.created_at)).total_seconds()
