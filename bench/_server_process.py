"""``trainops serve`` as a process that a benchmark can SIGKILL and start again on the same port and database.

:mod:`_server` starts a server for the length of a ``with`` block; the outage benchmarks need more: kill it with
no goodbye (as a crash or the OOM killer would), leave it down for a while, and start it again where clients
expect it. The outage tests use it too (``tests/server_process.py`` binds it to a test's database), so it
raises ``RuntimeError`` rather than failing through pytest.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
from _server import LOOPBACK, free_port

START_TIMEOUT = 120.0
"""Seconds a server gets to answer its health check (imports on a busy 2-core machine included)."""


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any ``TRAINOPS_*`` setting (a token or database from the shell must not
    leak in), plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAINOPS_")}
    env.update(extra)
    return env


class ServerProcess:
    """``python -m trainops.cli serve`` on one loopback port, with ``home`` as ``TRAINOPS_HOME`` (its SQLite
    database lives there), in a process group of its own.

    The port is chosen at construction, so a server's URL is known before it starts (``TRAINOPS_PUBLIC_URL``).
    As a context manager it is started on entry and stopped, whole process group, on exit whatever happened.
    """

    def __init__(self, home: Path, env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.home = home
        self.env = clean_env(TRAINOPS_HOME=str(home), **dict(env or {}))
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.home / f"server-{self.starts}.log"

    def start(self) -> float:
        """Start it and wait until ``/api/v1/health`` answers 200; returns that moment (``time.monotonic()``).

        Raises:
            RuntimeError: it exited or did not answer within ``START_TIMEOUT``; the message ends with its log.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "trainops.cli", "serve", "--port", str(self.port)],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with code {self.process.returncode}; its log ({self.log}):\n"
                    f"{self.log.read_text(errors='replace')[-3000:]}"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/api/v1/health", timeout=1.0).status_code == 200:
                    return time.monotonic()
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"the server did not answer within {START_TIMEOUT:.0f} s; its log ({self.log}):\n"
                    f"{self.log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.05)

    def kill(self) -> float:
        """SIGKILL the whole process group: no shutdown, no goodbye. Returns the moment it was sent."""
        killed = time.monotonic()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        return killed

    def stop(self) -> None:
        """SIGTERM to the process group, then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
