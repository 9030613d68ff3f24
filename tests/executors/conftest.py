"""A real Ray head for the Ray executor's tests: started once per session, and only when such a test runs.

``ray start --head --block`` on loopback, on free ports of its own (every port Ray would otherwise take a fixed
default for, so two sessions on one machine never meet), under a temporary ``--temp-dir``, with token
authentication on and a token of its own (Ray 2.60's default for new clusters; ``~/.ray`` is left alone). Its
processes, and the job processes they start, carry a marker in their environment: the teardown stops the head's
process tree and then every process with that marker, never anything else (no ``ray stop``, which stops every
Ray on the machine).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.processes import LOOPBACK, clean_env, free_ports

RAY = Path(sys.executable).with_name("ray")
START_TIMEOUT = 180.0
"""Seconds the head gets to answer: it starts several processes, slowly on a busy 2-core machine."""
MARKER = "TRAINOPS_TEST_RAY_HEAD"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", 'ray: starts a real Ray head (deselect with -m "not ray")')


@dataclass(frozen=True)
class RayHead:
    address: str
    """The job-submission (dashboard) address: ``http://127.0.0.1:PORT``."""
    token: str
    """The cluster's authentication token (``RAY_AUTH_TOKEN``)."""


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    if not RAY.exists():
        pytest.skip("the ray extra is not installed in this environment")
    temp_dir = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths must stay < 108 bytes
    token = secrets.token_hex(32)
    marker = secrets.token_hex(8)
    env = clean_env(
        PATH=f"{RAY.parent}{os.pathsep}{os.environ.get('PATH', '')}",  # `python` in a job is this venv's
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        RAY_USAGE_STATS_ENABLED="0",
        TRAINOPS_HOME=str(temp_dir / "trainops"),  # a job's worker keeps its downloads here
        **{MARKER: marker},
    )
    flags = [
        "--port",
        "--dashboard-port",
        "--ray-client-server-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--metrics-export-port",
        "--node-manager-port",
        "--object-manager-port",
        "--runtime-env-agent-port",
    ]
    ports = dict(zip(flags, free_ports(len(flags)), strict=True))  # nine distinct ports, or Ray refuses to start
    dashboard = ports["--dashboard-port"]
    argv = [str(RAY), "start", "--head", "--block", "--disable-usage-stats", "--node-ip-address", LOOPBACK]
    argv += ["--dashboard-host", LOOPBACK, "--include-dashboard", "true", "--temp-dir", str(temp_dir)]
    argv += ["--num-cpus", "2", "--num-gpus", "0", "--object-store-memory", str(100 * 1024 * 1024)]
    for flag, port in ports.items():
        argv += [flag, str(port)]
    log = (temp_dir / "head.log").open("wb")
    head = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://{LOOPBACK}:{dashboard}"
    try:
        _wait_until_up(head, address, token, temp_dir / "head.log")
        yield RayHead(address=address, token=token)
    finally:
        _stop(head, marker)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_until_up(head: subprocess.Popen[bytes], address: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        if head.poll() is not None:
            pytest.fail(f"the Ray head exited with code {head.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{address}/api/jobs/", headers=headers, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"the Ray head did not answer at {address} within {START_TIMEOUT:.0f}s:\n{log.read_text()[-3000:]}")


def _stop(head: subprocess.Popen[bytes], marker: str) -> None:
    """Stop the head's process tree, then any process still carrying this head's marker (job processes that
    left the tree), and check none is left."""
    tree = _tree(head.pid)
    for process in tree:
        _signal(process, signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=5)
    for process in alive + _marked(marker):
        _signal(process, signal.SIGKILL)
    psutil.wait_procs(_marked(marker), timeout=10)
    head.wait(timeout=10)
    left = [f"{process.pid} {process.name()}" for process in _marked(marker)]
    assert not left, f"processes of the test's Ray head are still running: {left}"


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _marked(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(MARKER) == marker:
                found.append(process)
        except (psutil.Error, OSError):
            continue  # gone, or another user's
    return found


def _signal(process: psutil.Process, signum: int) -> None:
    with contextlib.suppress(psutil.Error):
        process.send_signal(signum)
