"""A Ray head of the benchmark's own, on loopback, stopped by its own process tree when the block ends.

``ray start --head --block`` on free ports (every port Ray would otherwise take a fixed default for), under a
temporary ``--temp-dir``, with token authentication on and a token of its own (Ray 2.60's default for new
clusters; ``~/.ray`` is left alone). Its processes, and the job processes they start, carry a marker in their
environment: the end stops the head's process tree, then every process with that marker, never anything else
(no ``ray stop``, which stops every Ray on the machine). The same as the tests' ``tests/executors/conftest.py``,
without pytest.
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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from _server import LOOPBACK, free_ports
from _server_process import clean_env

RAY = Path(sys.executable).with_name("ray")
START_TIMEOUT = 180.0
"""Seconds the head gets to answer: it starts several processes, slowly on a busy 2-core machine."""
MARKER = "TRAINOPS_BENCH_RAY_HEAD"


@dataclass(frozen=True)
class RayHead:
    address: str
    """The job-submission (dashboard) address: ``http://127.0.0.1:PORT``."""
    token: str
    """The cluster's authentication token (``RAY_AUTH_TOKEN``)."""
    node_home: Path
    """``TRAINOPS_HOME`` of the jobs' workers: their download cache, apart from any server's disk."""


@contextlib.contextmanager
def ray_head(cpus: int = 2, env: Mapping[str, str] | None = None) -> Iterator[RayHead]:
    """Start a head with ``cpus`` CPUs and no GPU; ``env`` is added to its (and so its jobs') environment.

    Raises:
        RuntimeError: Ray is not installed here, or the head did not come up (the message ends with its log).
    """
    if not RAY.exists():
        raise RuntimeError(f"no `ray` beside {sys.executable}: install the ray extra (pip install 'trainops[ray]')")
    temp_dir = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))  # short: Ray's socket paths must stay < 108 bytes
    token = secrets.token_hex(32)
    marker = secrets.token_hex(8)
    node_home = temp_dir / "trainops"
    head_env = clean_env(
        PATH=f"{RAY.parent}{os.pathsep}{os.environ.get('PATH', '')}",  # `python` in a job is this venv's
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        RAY_USAGE_STATS_ENABLED="0",
        TRAINOPS_HOME=str(node_home),
        **dict(env or {}),
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
    argv += ["--num-cpus", str(cpus), "--num-gpus", "0", "--object-store-memory", str(100 * 1024 * 1024)]
    for flag, port in ports.items():
        argv += [flag, str(port)]
    log_path = temp_dir / "head.log"
    log = log_path.open("wb")
    head = subprocess.Popen(argv, env=head_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://{LOOPBACK}:{dashboard}"
    try:
        _wait_until_up(head, address, token, log_path)
        yield RayHead(address=address, token=token, node_home=node_home)
    finally:
        left = _stop(head, marker)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
        if left:
            print(f"WARNING: processes of the benchmark's Ray head are still running: {left}", file=sys.stderr)


def _wait_until_up(head: subprocess.Popen[bytes], address: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"the Ray head exited with code {head.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{address}/api/jobs/", headers=headers, timeout=5).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(
        f"the Ray head did not answer at {address} within {START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}"
    )


def _stop(head: subprocess.Popen[bytes], marker: str) -> list[str]:
    """Stop the head's process tree, then any process still carrying this head's marker (job processes that
    left the tree); answers those still alive after that (none, normally)."""
    tree = _tree(head.pid)
    for process in tree:
        _signal(process, signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=5)
    for process in alive + _marked(marker):
        _signal(process, signal.SIGKILL)
    psutil.wait_procs(_marked(marker), timeout=10)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(timeout=10)
    return [str(process.pid) for process in _marked(marker)]


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
