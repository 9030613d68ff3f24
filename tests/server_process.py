"""``trainops serve`` as a process of its own that a test can kill with SIGKILL and start again on the same port
and database: the server side of the outage tests (the client side is ``tests/resilience_loop.py``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import LOOPBACK, clean_env, free_port

START_TIMEOUT = 90.0
"""Seconds a server gets to answer its health check (imports on a busy 2-core machine included)."""


class ServerProcess:
    """``python -m trainops.cli serve`` on one loopback port, on ``database_url``, in its own process group.

    Use it as a context manager: it is stopped (the whole group) at the end whatever happened.
    """

    def __init__(self, database_url: str, home: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.home = home
        self.env = clean_env(TRAINOPS_HOME=str(home), TRAINOPS_DATABASE_URL=database_url, **env)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.home / f"server-{self.starts}.log"

    def start(self) -> None:
        """Start it and wait until it answers (the test fails with its log when it does not)."""
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
                pytest.fail(f"the server exited with code {self.process.returncode}:\n{self.log.read_text()[-5000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/api/v1/health", timeout=1.0).status_code == 200:
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer in {START_TIMEOUT:.0f} s:\n{self.log.read_text()[-5000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the server's whole process group: no shutdown, no goodbye, as a crash or the OOM killer."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
