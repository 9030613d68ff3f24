"""Which process runs an operation, and whether that process is still alive.

Operations that trainops runs itself (``executor=local``) record their worker as ``host:pid``. When a process
starts it fails the local operations whose worker process is gone, on this host: a server restart must not
leave them "running" forever, and must not touch runs that another live process (``trainops train`` in a
terminal, a second server) is still reporting.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from trainops import extras
from trainops.core.operation import Operation, OperationStatus, ended_after_cancel
from trainops.errors import InvalidInputError
from trainops.schemas.training import Resources
from trainops.settings import Settings

if TYPE_CHECKING:  # the service imports this module
    from trainops.service.operations import OperationsService

PROCESS_STARTED = datetime.now(UTC)
"""When this process started (as near as trainops can tell: when it first imported this module). A record of this
process's pid made before then was made by another process that had the same pid: a container's server is pid 1
after every restart."""

TAKEOVER_SECONDS = 120.0
"""How long a process that starts a worker waits for it to take its operation over. A pending operation whose
recorded process is gone and that is older than this will never start: nobody queues or runs it any more."""


def this_worker() -> str:
    """``host:pid`` of the current process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_is_gone(worker: str | None, recorded_at: datetime | None = None) -> bool:
    """Whether ``worker`` (``host:pid``) is a process of this host that no longer runs.

    A worker on another host cannot be checked from here and counts as alive; an operation with no worker at
    all (recorded before workers were) counts as gone. A process that has exited but that its parent has not
    waited for yet (a zombie) is gone. This process's own pid, recorded (``recorded_at``) before it started, was
    another process's: gone too.
    """
    if not worker:
        return True
    host, _, pid_text = worker.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return recorded_at is not None and recorded_at < PROCESS_STARTED
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    except OverflowError:
        return True
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited and waits for its parent to collect it (``Z`` in ``/proc``; Linux only)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]  # the command, in parentheses, may hold spaces


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment of a worker process: this one's, pinned to the same database and directories."""
    env = {key: value for key, value in os.environ.items() if key not in ("TRAINOPS_URL",)}
    env.update(
        TRAINOPS_HOME=str(settings.home.expanduser()),
        TRAINOPS_DATABASE_URL=settings.resolved_database_url,
        TRAINOPS_DATA_DIR=str(settings.resolved_data_dir),
        TRAINOPS_MODELS_DIR=str(settings.resolved_models_dir),
        TRAINOPS_STRATEGIES_DIR=str(settings.resolved_strategies_dir),
    )
    return env


def worker_log_path(settings: Settings, operation_id: str) -> Path:
    return settings.home.expanduser() / "logs" / f"{operation_id}.log"


def spawn_worker(operation_id: str, settings: Settings) -> subprocess.Popen[bytes]:
    """Start ``python -m trainops.executors.worker OPERATION_ID``: a process that runs one training operation.

    The worker reads everything it needs from the operation (the strategy is recorded in it) and reports to the
    database directly, so it outlives the process that started it: a server restart or a closed terminal does
    not stop a training. Its own session keeps a Ctrl-C meant for the parent away from it; its output goes to
    :func:`worker_log_path`.
    """
    log_path = worker_log_path(settings, operation_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "trainops.executors.worker", operation_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=worker_environment(settings),
            start_new_session=True,
        )


def check_local_resources(resources: Resources | None) -> None:
    """Refuse resources this machine cannot give one training: more CPUs than it has, or GPUs it lacks.

    Raises:
        InvalidInputError: naming what was asked and what this machine has.
    """
    if resources is None:
        return
    cpus = os.cpu_count() or 1
    if resources.cpus is not None and resources.cpus > cpus:
        raise InvalidInputError(
            f"resources.cpus: {resources.cpus:g} asked, but this machine has {cpus} CPUs; ask for at most {cpus}, or "
            "run the server with TRAINOPS_EXECUTOR=ray to train on a cluster",
            details={"cpus": resources.cpus, "available": cpus},
        )
    if resources.gpus:
        gpus = local_gpu_count()
        if resources.gpus > gpus:
            raise InvalidInputError(
                f"resources.gpus: {resources.gpus:g} asked, but this machine has {gpus} CUDA GPUs; ask for at most "
                f"{gpus}, or run the server with TRAINOPS_EXECUTOR=ray to train on a cluster's GPU nodes",
                details={"gpus": resources.gpus, "available": gpus},
            )


def local_gpu_count() -> int:
    """CUDA devices torch sees here (0 without the train extra)."""
    if not extras.is_installed("train"):
        return 0
    import torch  # the train extra; already loaded by a server that trains

    return int(torch.cuda.device_count())


# -- local workers, whoever started them -------------------------------------------------------------------------


def local_workers_lost(
    operations: Sequence[Operation], *, exclude: Collection[str] = (), now: datetime | None = None
) -> dict[str, str]:
    """The active local operations (not in ``exclude``) whose process on this host is gone, with why.

    A running one's process is its worker. A pending one's is the process that queued it (a server) or started
    its worker (``trainops train --detach``), which waits until the worker takes the operation over: once that
    process is gone and :data:`~trainops.service.workers.TAKEOVER_SECONDS` have passed since the operation was
    created, nobody will ever start it (a server killed with trainings in its queue).
    """
    now = now or datetime.now(UTC)
    lost: dict[str, str] = {}
    for operation in operations:
        worker = operation.metadata.worker
        if operation.metadata.executor != "local" or operation.operation_id in exclude or not worker:
            continue
        if operation.status is OperationStatus.RUNNING and worker_is_gone(worker, operation.started_at):
            lost[operation.operation_id] = (
                f"the worker process {worker} is gone (killed, out of memory or crashed) and the training never "
                "ended; start it again"
            )
        elif (
            operation.status is OperationStatus.PENDING
            and (now - operation.created_at).total_seconds() > TAKEOVER_SECONDS
            and worker_is_gone(worker, operation.created_at)
        ):
            lost[operation.operation_id] = (
                f"the process that queued it ({worker}: a server, or the process that started its worker) is gone "
                "and the training never started; start it again"
            )
    return lost


def end_lost(service: OperationsService, operation_id: str, reason: str) -> OperationStatus:
    """End an operation whose job died (``reason`` says how): ``failed``; or ``cancelled`` when its cancel had been
    asked (perhaps by a forced stop on another thread or server), its job's end said in ``error``. Answers which.

    Raises:
        ConflictError: it ended meanwhile.
        NotFoundError: it was deleted meanwhile.
    """
    request = service.get(operation_id).cancel_request
    if request is None:
        service.fail(operation_id, reason)
        return OperationStatus.FAILED
    service.finish(
        operation_id,
        OperationStatus.CANCELLED,
        error=ended_after_cancel(request.reason, reason),
    )
    return OperationStatus.CANCELLED
