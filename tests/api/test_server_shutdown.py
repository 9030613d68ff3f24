"""A stopped server stops: open events streams (``trainops ops watch``, a dashboard tab) do not keep it alive."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

from tests.server_process import ServerProcess
from trainops.api.server import GRACEFUL_SHUTDOWN_SECONDS


def test_a_server_told_to_stop_exits_while_someone_follows_a_run(tmp_path: Path) -> None:
    """It closed its port and lived on for as long as anyone watched, its executor still starting queued
    trainings; a new server could bind the same port meanwhile."""
    with ServerProcess(f"sqlite:///{tmp_path / 'trainops.db'}", tmp_path / "server") as server:
        assert server.process is not None
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            created = client.post("/api/v1/operations", json={"operation_type": "training", "total_epochs": 10})
            operation_id = created.json()["data"]["operation_id"]
            written = client.post(f"/api/v1/operations/{operation_id}/metrics", json={"epochs": [{"epoch": 0}]})
            assert written.status_code == 200  # running now: its events stream stays open until it ends
        following = threading.Event()

        def follow() -> None:
            url = f"{server.url}/api/v1/operations/{operation_id}/events"
            try:
                with httpx.stream("GET", url, timeout=httpx.Timeout(10.0, read=None)) as stream:
                    for _ in stream.iter_lines():
                        following.set()
            except httpx.HTTPError:
                pass  # the server went away: what a follower sees

        threading.Thread(target=follow, daemon=True).start()
        assert following.wait(15), "the events stream never answered"

        told = time.monotonic()
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS + 20)

        assert time.monotonic() - told < GRACEFUL_SHUTDOWN_SECONDS + 15
