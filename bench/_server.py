"""Real servers for the benchmarks: each one a subprocess on a free loopback port, stopped when the block ends.

Benchmarks measure what a user gets, so the server runs exactly as ``trainops serve`` would run it (uvicorn, one
process, SQLite in WAL mode) in a separate process from the clients, never in-process behind a test transport.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class RunningServer:
    """A started server: where to reach it, its process, and the folder holding its data and log."""

    url: str
    process: subprocess.Popen[bytes]
    home: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: each probe stays bound until all are drawn (drawn one by one, the kernel may
    hand out the same port twice, and a Ray head refuses a port used twice)."""
    with ExitStack() as probes:
        ports = []
        for _ in range(count):
            probe = probes.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((LOOPBACK, 0))
            ports.append(probe.getsockname()[1])
        return ports


def _wait_healthy(process: subprocess.Popen[bytes], health_url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the server exited with code {process.returncode} before answering {health_url}; "
                f"its log ({log}):\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            if httpx.get(health_url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"the server did not answer {health_url} within {timeout:.0f} s; "
        f"its log ({log}):\n{log.read_text(errors='replace')[-3000:]}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (a server may fork workers), then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def serve(
    argv: Sequence[str],
    *,
    url: str,
    health_path: str,
    home: Path,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[RunningServer]:
    """Run ``argv`` as a server in its own process group, wait until ``url + health_path`` answers 200, and
    stop it (with any workers it forked) when the block ends, even on errors."""
    log = home / "server.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            list(argv),
            cwd=home,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(process, url + health_path, log, startup_timeout)
        yield RunningServer(url=url, process=process, home=home, log=log)
    finally:
        _stop(process)


def _trainops_env(home: Path) -> dict[str, str]:
    """The caller's environment with every ``TRAINOPS_*`` setting dropped (a token or database URL from the
    shell must not leak into the benchmark) and a fresh home, hence a fresh SQLite database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAINOPS_")}
    env["TRAINOPS_HOME"] = str(home)
    return env


@contextmanager
def trainops_server(home: Path | None = None, *, python: str = sys.executable) -> Iterator[RunningServer]:
    """A trainops API server (uvicorn, one process) on a fresh SQLite database.

    Args:
        home: ``TRAINOPS_HOME`` for the server; a new temporary folder, removed afterwards, when omitted.
        python: The interpreter whose environment has trainops installed.
    """
    with tempfile.TemporaryDirectory(prefix="trainops-bench-") as scratch:
        where = home or Path(scratch)
        port = free_port()
        argv = [
            python,
            "-m",
            "uvicorn",
            "--factory",
            "trainops.api.app:create_app",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        with serve(
            argv, url=f"http://{LOOPBACK}:{port}", health_path="/api/v1/health", home=where, env=_trainops_env(where)
        ) as server:
            yield server


def database_file(server_home: Path) -> Path:
    """Where a trainops server started by :func:`trainops_server` keeps its SQLite database."""
    return server_home / "trainops.db"
