"""A trainops worker in remote mode, started by hand as a Ray job would start it: its own process group, its own
``TRAINOPS_HOME``, and nothing of the server's in its environment but ``TRAINOPS_URL`` and the token.

For the remote worker's tests and the Ray executor's (which may run the same entrypoint without Ray where Ray
cannot run, e.g. on the GPU machine).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.processes import clean_env, stop_group
from trainops.executors.remote import WORKER_MODULE, remote_worker_environment

WORKER_TIMEOUT = 180.0
"""Seconds a small training gets in a worker process, importing torch included, on a busy machine."""


def remote_worker_env(url: str, token: str | None, home: Path, **extra: str) -> dict[str, str]:
    """This environment without any ``TRAINOPS_*`` (the server's database, data and models directories stay
    out of reach), plus the server's URL and token, the worker's own home, and ``extra``: e.g.
    ``TRAINOPS_DATA_DIR`` for a shared disk, ``CUDA_VISIBLE_DEVICES``. Torch trains on one thread, as the tests'
    in-process trainings do (a busy 2-core machine)."""
    env = clean_env(TRAINOPS_HOME=str(home), OMP_NUM_THREADS="1", **remote_worker_environment(url, token))
    env.pop("COLUMNS", None)
    env.update(extra)
    return env


@contextlib.contextmanager
def remote_worker(
    operation_id: str, *, url: str, token: str | None, home: Path, log: Path | None = None, **extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m trainops.executors.worker OPERATION_ID`` in remote mode, in a process group of its own, until
    the block ends; then the whole group is stopped if it still runs (SIGTERM, then SIGKILL), so no worker
    outlives its test. Its output goes to ``log`` (default ``home/worker.log``).

    Example:
        >>> with remote_worker(op_id, url=server.url, token=TOKEN, home=tmp_path / "node") as worker:  # doctest: +SKIP
        ...     assert worker.wait(WORKER_TIMEOUT) == 0
    """
    home.mkdir(parents=True, exist_ok=True)
    log = log or home / "worker.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, operation_id],
            cwd=home,
            env=remote_worker_env(url, token, home, **extra),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_group(process)
