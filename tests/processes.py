"""Other programs the tests run: throwaway virtual environments, and servers started as processes of their own.

Shared by the base-install test (``trainops serve`` of an environment without extras) and the MLflow tests (a real
``mlflow server`` from an environment of its own).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

LOOPBACK = "127.0.0.1"


def base_interpreter() -> str:
    """The interpreter this test's venv was made from, so a throwaway one gets the same Python (3.11)."""
    base = getattr(sys, "_base_executable", None) or shutil.which("python3")
    assert base, "no base interpreter: neither sys._base_executable nor a python3 on PATH"
    return base


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without ``TRAINOPS_*`` settings and without anything that would make a throwaway venv's
    Python see this venv or this source tree instead of what pip installed."""
    dropped = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAINOPS_") and key not in dropped}
    env["COLUMNS"] = "200"  # messages that rich would otherwise wrap stay on one line for the asserts
    env.update(extra)
    return env


def run(
    argv: Sequence[str | Path], *, env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to its end, its output captured as text."""
    return subprocess.run(
        [str(arg) for arg in argv],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stop_group(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Stop a process started with ``start_new_session=True`` and everything in its group, if it still runs:
    SIGTERM, then SIGKILL after ``grace`` seconds."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: each probe stays bound until all are drawn (drawn one by one, the kernel may
    hand out the same port twice, and a Ray head refuses a port used twice)."""
    with contextlib.ExitStack() as probes:
        ports = []
        for _ in range(count):
            probe = probes.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((LOOPBACK, 0))
            ports.append(probe.getsockname()[1])
        return ports


@contextlib.contextmanager
def serving(
    argv: Sequence[str | Path], *, env: dict[str, str], cwd: Path, log: Path, health: str, timeout: float
) -> Iterator[None]:
    """Run a server in a process group of its own until the block ends, once ``health`` answers 200.

    The test fails with the end of the server's ``log`` when it exits early or does not answer in ``timeout``
    seconds. At the end the whole group is stopped (SIGTERM, then SIGKILL): a server's workers go with it.
    """
    name = f"`{Path(argv[0]).name} {argv[1]}`" if len(argv) > 1 else f"`{argv[0]}`"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(part) for part in argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"{name} exited with code {process.returncode}:\n{log.read_text()[-5000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(health, timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not answer {health} in {timeout:.0f} s:\n{log.read_text()[-5000:]}")
            time.sleep(0.1)
        yield
    finally:
        stop_group(process)
