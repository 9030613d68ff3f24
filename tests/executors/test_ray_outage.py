"""The issue's kill -9 test through a Ray job: the client loop (``tests/resilience_loop.py``) runs as the entrypoint
of a job on the test's Ray head, reporting to a server (a process of its own) that is SIGKILLed mid-run and
restarted 10 s later on the same port and database. The job ends with 300 of 300 epochs stored and no exception.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ray.job_submission import JobSubmissionClient

from tests.executors.conftest import RayHead
from tests.server_process import ServerProcess
from trainops.store import create_database_engine, upgrade

pytestmark = pytest.mark.ray

LOOP = Path(__file__).resolve().parents[1] / "resilience_loop.py"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the store's side of an outage is tested on both databases in tests/client/test_outages.py."""
    url = f"sqlite:///{tmp_path / 'trainops.db'}"
    engine = create_database_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def the_loops_operation(server: ServerProcess) -> dict[str, Any] | None:
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=5) as api:
        items: list[dict[str, Any]] = api.get("/operations").json()["data"]["items"]
    return next((item for item in items if item["metadata"].get("strategy") == "resilience-loop"), None)


def test_a_loop_in_a_ray_job_outlives_a_server_killed_mid_run(
    database_url: str, tmp_path: Path, ray_head: RayHead
) -> None:
    ray = JobSubmissionClient(ray_head.address, headers={"Authorization": f"Bearer {ray_head.token}"})
    with ServerProcess(database_url, tmp_path / "server") as server:
        job = ray.submit_job(
            entrypoint=shlex.join(["python", str(LOOP), "--url", server.url, "--epochs", "300", "--pause", "0.1"])
        )
        deadline = time.monotonic() + 120
        while (found := the_loops_operation(server)) is None or found["epochs_completed"] < 80:
            assert time.monotonic() < deadline, f"the loop did not reach epoch 80: {ray.get_job_logs(job)[-3000:]}"
            time.sleep(0.2)

        server.kill()
        time.sleep(10)
        server.start()

        deadline = time.monotonic() + 240
        while (state := str(ray.get_job_status(job).value)) not in {"SUCCEEDED", "FAILED", "STOPPED"}:
            assert time.monotonic() < deadline, f"the job is still {state}"
            time.sleep(0.5)
        logs = ray.get_job_logs(job)
        assert state == "SUCCEEDED", logs[-3000:]
        outcome = json.loads(logs.strip().splitlines()[-1])
        with httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as api:
            stored = api.get(f"/operations/{outcome['operation_id']}").json()["data"]
            epochs = api.get(f"/operations/{outcome['operation_id']}/metrics").json()["data"]["metrics"]["epochs"]

    assert outcome["exception"] is None, outcome["exception"]
    assert (outcome["epochs_logged"], outcome["status"], outcome["unsent"]) == (300, "completed", None)
    assert outcome["slowest_check"] < 0.5  # should_stop() never waited on the dead server
    assert stored["status"] == "completed" and stored["epochs_completed"] == 300
    assert [epoch["epoch"] for epoch in epochs] == list(range(300))
