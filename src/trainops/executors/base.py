"""What the server asks of an executor: run a training operation somewhere, stop it, say what became of it.

Two implementations: :class:`~trainops.executors.local.LocalExecutor` (worker processes of the server's machine)
and :class:`~trainops.executors.ray.RayExecutor` (Ray jobs on a cluster). Either way the job is the same worker
(``python -m trainops.executors.worker OPERATION_ID``) reporting into the operation; the executor only starts it,
stops it when a cancel is not heeded, and tells the :mod:`~trainops.executors.reaper` which jobs died.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from trainops.core.operation import Operation
from trainops.executors.local import LocalExecutor
from trainops.schemas.operations import ExecutorJob
from trainops.schemas.training import Resources
from trainops.service.operations import OperationsService
from trainops.settings import Settings


class Executor(Protocol):
    """Runs training operations (created pending, with ``metadata.executor`` = :attr:`name`)."""

    name: str
    """``local`` or ``ray``: recorded on the operations it runs (``metadata.executor``)."""

    def check(self, resources: Resources | None) -> None:
        """Refuse, before anything is recorded, resources this executor can never give.

        Raises:
            InvalidInputError: naming what was asked and what there is.
        """

    def submit(self, operation_id: str, resources: Resources | None = None) -> None:
        """Run a pending training operation, now or when a slot (Ray: the resources) frees.

        Raises:
            TrainOpsError: it could not be handed over (the caller fails the operation with the message).
        """

    def cancel(self, operation_id: str, reason: str) -> bool:
        """Stop the operation's job by force (its worker did not heed the cancel), then mark the operation
        cancelled with ``reason``. Answers whether there was a job to stop."""

    def view(self, operation_id: str) -> ExecutorJob | None:
        """What this executor knows of the operation's job, or ``None`` when it knows nothing of it."""

    def lost(self, operations: Sequence[Operation]) -> dict[str, str]:
        """Which of these active operations (of any executor) have a job of this executor that died without
        ending them, each with the reason (Ray's message: node lost, out of memory, stopped)."""

    def shutdown(self) -> None:
        """Stop taking jobs. Jobs already running go on: they report to the server, not to the executor."""


def open_executor(service: OperationsService, settings: Settings) -> Executor:
    """The executor ``TRAINOPS_EXECUTOR`` names: ``local`` worker processes, or ``ray`` jobs.

    Raises:
        MissingExtraError: ``ray`` without the ``trainops[ray]`` extra.
        ConfigurationError: ``ray`` without its addresses, or with a cluster that cannot be reached.
    """
    if settings.executor == "ray":
        from trainops.executors.ray import RayExecutor  # the ray extra: imported only when chosen

        return RayExecutor(service, settings)
    return LocalExecutor(service, settings)
