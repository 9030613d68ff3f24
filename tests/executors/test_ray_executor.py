"""RayExecutor against a real Ray head (tests/executors/conftest.py), through the API as users drive it.

Each test serves the API on a loopback port it knows beforehand (``TRAINOPS_PUBLIC_URL``, which the job's worker
reports to) with ``TRAINOPS_EXECUTOR=ray``. The jobs' workers share no disk with the server: their environment
holds the head's ``TRAINOPS_HOME`` (a temporary directory) and the URL and token the executor adds, so they
download the market data and upload their model version over HTTP.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from mcp.client import Client
from ray.job_submission import JobSubmissionClient
from typer.testing import CliRunner

from tests.executors.conftest import RayHead
from tests.live_server import LiveServer
from trainops.api import create_app
from trainops.cli.main import app as cli
from trainops.client import HttpTrainOps
from trainops.errors import ConfigurationError, MissingExtraError
from trainops.executors import ray as ray_executor
from trainops.executors.ray import RayExecutor
from trainops.executors.reaper import Reaper
from trainops.mcp.server import create_server
from trainops.pipeline.strategy import StrategyConfig
from trainops.schemas.training import TrainingRequest
from trainops.service.bootstrap import open_service
from trainops.service.operations import OperationsService, utcnow
from trainops.service.training import create_training, resolve_request
from trainops.settings import Settings
from trainops.store import create_database_engine, upgrade

pytestmark = pytest.mark.ray

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
TOKEN = "ray-test-token-0123456789abcdef"
TIMEOUT = 180.0
"""Seconds a tiny training gets through Ray: the job's supervisor and the worker (importing torch) start first."""
TINY = {"epochs": 3, "early_stopping": {"patience": 1000}}
UNTIL_STOPPED = {"epochs": 5000, "early_stopping": {"patience": 100_000}}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the executor, not the store, is under test here (and a Ray test costs tens of seconds)."""
    url = f"sqlite:///{tmp_path / 'trainops.db'}"
    engine = create_database_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def ray_settings(training_settings: Settings, ray_head: RayHead, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("RAY_AUTH_TOKEN", ray_head.token)  # the server finds the cluster's token as Ray's tools do
    return training_settings.model_copy(
        update={
            "executor": "ray",
            "ray_address": ray_head.address,
            "api_token": TOKEN,
            "reaper_interval": 1.0,
        }
    )


@contextmanager
def serving(settings: Settings, port: int = 0) -> Iterator[httpx.Client]:
    """The API on a loopback port chosen before it starts (``port``, or a free one), so ``public_url`` can name
    it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(settings.model_copy(update={"public_url": url}))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    headers = {"Authorization": f"Bearer {TOKEN}"} if settings.api_token else {}
    try:
        with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def start(api: httpx.Client, config: dict[str, Any], **fields: Any) -> str:
    answer = api.post("/training/start", json={"strategy": "mean_reversion", "config": config, **fields})
    assert answer.status_code == 200, answer.text
    task_id: str = answer.json()["task_id"]
    return task_id


def operation(api: httpx.Client, operation_id: str) -> dict[str, Any]:
    answer = api.get(f"/operations/{operation_id}")
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def wait_for(
    api: httpx.Client, operation_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        current = operation(api, operation_id)
        if done(current):
            return current
        if time.monotonic() > deadline:
            pytest.fail(f"{operation_id} did not get there in {timeout:.0f}s: {current}")
        time.sleep(0.5)


def ended(current: dict[str, Any]) -> bool:
    return current["status"] in {"completed", "failed", "cancelled"}


def job_state(head: RayHead, job_id: str, states: set[str], timeout: float = 60) -> str:
    client = JobSubmissionClient(head.address, headers={"Authorization": f"Bearer {head.token}"})
    deadline = time.monotonic() + timeout
    while (state := str(client.get_job_status(job_id).value)) not in states:
        assert time.monotonic() < deadline, f"the Ray job {job_id} is {state}, not one of {states}"
        time.sleep(0.5)
    return state


def outcome(api: httpx.Client, operation_id: str) -> dict[str, Any]:
    """What a finished training left: its operation, history length, diagnosis fields and model version."""
    final = wait_for(api, operation_id, ended)
    metrics = api.get(f"/operations/{operation_id}/metrics").json()["data"]["metrics"]
    return {
        "status": final["status"],
        "error": final["error"],
        "epochs": len(metrics["epochs"]),
        "epochs_completed": final["epochs_completed"],
        "diagnosis": sorted(key for key in metrics if key != "epochs"),
        "has_model_version": bool((final["result"] or {}).get("model_version")),
        "test_metrics": sorted((final["result"] or {}).get("test_metrics", {})),
        "metadata": final["metadata"],
    }


def without_read_at(job: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in job.items() if key != "read_at"}


def job_everywhere(api: httpx.Client, operation_id: str) -> dict[str, Any]:
    """The operation's job as each interface shows it: the Python facade over HTTP, ``trainops ops show`` (its
    ``job`` row and ``--json``) and the MCP ``get_operation_status`` tool (a real MCP client, in memory)."""
    url = str(api.base_url).rstrip("/")
    with HttpTrainOps(url, token=TOKEN, retries=0) as ops:
        job = ops.get_job(operation_id)
    assert job is not None
    facade = (job.executor, job.job_id, job.status, job.message)

    runner = CliRunner()
    shown = runner.invoke(cli, ["ops", "show", operation_id, "--url", url, "--token", TOKEN], env={"COLUMNS": "500"})
    assert shown.exit_code == 0, shown.output
    row = next((line.strip("│ ") for line in shown.stdout.splitlines() if line.strip("│ ").startswith("job ")), "")
    state, _, rest = row.removeprefix("job").strip().partition(" on ")
    executor, _, message = rest.partition(" — ")
    as_json = runner.invoke(cli, ["ops", "show", operation_id, "--url", url, "--token", TOKEN, "--json"])
    assert as_json.exit_code == 0, as_json.output

    async def status() -> dict[str, Any]:
        async with Client(create_server(url, token=TOKEN, read_only=True)) as agent:
            answer = await agent.call_tool("get_operation_status", {"operation_id": operation_id})
        assert not answer.is_error, answer.content
        assert answer.structured_content is not None
        return answer.structured_content

    return {
        "facade": facade,
        "cli": (state, executor, bool(job.message) and message == job.message.strip()),
        "cli_output": shown.stdout,
        "cli_json": json.loads(as_json.stdout)["job"],
        "mcp": anyio.run(status).get("job"),
    }


def test_a_training_lands_the_same_through_ray_as_locally(
    ray_settings: Settings, training_settings: Settings, ray_head: RayHead
) -> None:
    with LiveServer(training_settings) as local_server, httpx.Client(base_url=f"{local_server.url}/api/v1") as api:
        local = outcome(api, start(api, TINY))
    with serving(ray_settings) as api:
        task_id = start(api, TINY, resources={"cpus": 1})
        through_ray = outcome(api, task_id)
        assert job_state(ray_head, task_id, {"SUCCEEDED", "FAILED", "STOPPED"}) == "SUCCEEDED"

    assert local["status"] == "completed", local["error"]
    assert through_ray["status"] == "completed", through_ray["error"]
    assert through_ray["epochs"] == through_ray["epochs_completed"] == local["epochs"] == 3
    assert through_ray["diagnosis"] == local["diagnosis"]
    assert "recommendation" in through_ray["diagnosis"] and "best_epoch" in through_ray["diagnosis"]
    assert through_ray["test_metrics"] == local["test_metrics"] != []
    assert local["has_model_version"] and through_ray["has_model_version"]
    meta = through_ray["metadata"]
    assert meta["executor"] == "ray" and local["metadata"]["executor"] == "local"
    assert meta["ray_job_id"] == task_id and meta["ray_address"] == ray_head.address
    assert meta["parameters"]["resources"] == {"cpus": 1.0}
    assert meta["node"] == socket.gethostname() and meta["device"] == "cpu"
    assert meta["worker"].startswith(f"{socket.gethostname()}:")


def test_a_cancel_through_the_api_stops_the_ray_job(ray_settings: Settings, ray_head: RayHead) -> None:
    with serving(ray_settings) as api:
        task_id = start(api, UNTIL_STOPPED)
        running = wait_for(
            api,
            task_id,
            lambda now: (now["status"] == "running" and "ray_node_id" in now["metadata"]) or ended(now),
            timeout=TIMEOUT,
        )  # recorded by the reaper's sweep (every second here) from Ray's view of the job
        assert running["status"] == "running", running
        assert running["job"]["status"] == "RUNNING" and running["job"]["executor"] == "ray"

        answer = api.request("DELETE", f"/operations/{task_id}", json={"reason": "enough for the test"})
        assert answer.status_code == 200, answer.text

        final = wait_for(api, task_id, ended, timeout=60)
        assert final["status"] == "cancelled", final
        assert final["cancel_reason"] == "enough for the test"
        assert job_state(ray_head, task_id, {"SUCCEEDED", "FAILED", "STOPPED"}) in {"STOPPED", "SUCCEEDED"}


def test_a_ray_job_outlives_a_restart_of_the_api(ray_settings: Settings, ray_head: RayHead) -> None:
    with serving(ray_settings) as first:
        port = httpx.URL(str(first.base_url)).port
        assert port is not None
        task_id = start(first, UNTIL_STOPPED)
        before = wait_for(first, task_id, lambda now: now["epochs_completed"] >= 3 or ended(now))["epochs_completed"]
    # the API is down: the job trains on, its epochs wait in its worker
    time.sleep(3)
    assert job_state(ray_head, task_id, {"RUNNING", "FAILED", "STOPPED", "SUCCEEDED"}) == "RUNNING"
    with serving(ray_settings, port=port) as second:
        going_on = wait_for(second, task_id, lambda now: now["epochs_completed"] > before + 20 or ended(now))
        assert going_on["status"] == "running", going_on

        second.request("DELETE", f"/operations/{task_id}", json={"reason": "restart survived"})
        final = wait_for(second, task_id, ended, timeout=60)
        epochs = [
            record["epoch"]
            for record in second.get(f"/operations/{task_id}/metrics").json()["data"]["metrics"]["epochs"]
        ]

    assert final["status"] == "cancelled", final
    assert epochs == list(range(final["epochs_completed"]))  # nothing lost across the outage


def test_a_job_waiting_for_resources_shows_pending_and_a_cancel_ends_it_at_once(
    ray_settings: Settings, ray_head: RayHead
) -> None:
    with serving(ray_settings) as api:
        task_id = start(api, TINY, resources={"gpus": 1})  # the test head has none: the job waits

        pending = operation(api, task_id)
        assert pending["status"] == "pending"
        assert pending["job"]["status"] == "PENDING", pending["job"]
        assert "waiting for resources" in (pending["job"]["message"] or ""), pending["job"]
        seen = job_everywhere(api, task_id)
        assert seen["facade"] == ("ray", task_id, "PENDING", pending["job"]["message"])
        assert seen["cli"] == ("PENDING", "ray", True), seen["cli_output"]
        # the same job everywhere; read_at says when each view read Ray, and the server's sweep for lost jobs
        # (every second here) may make a view read it afresh
        assert without_read_at(seen["cli_json"]) == without_read_at(pending["job"])
        assert without_read_at(seen["mcp"]) == without_read_at(pending["job"])

        asked = time.monotonic()
        answer = api.post(f"/operations/{task_id}/cancel", json={"reason": "no GPU today"})
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - asked < 10  # Ray queues the stop of a job it has not started: nothing to wait for
        cancelled = operation(api, task_id)
        assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "no GPU today"
        assert "waiting for resources" in (cancelled["job"]["message"] or "")


def test_a_job_stopped_behind_the_servers_back_fails_its_training(ray_settings: Settings, ray_head: RayHead) -> None:
    with serving(ray_settings) as api:
        task_id = start(api, UNTIL_STOPPED)
        wait_for(api, task_id, lambda current: current["epochs_completed"] >= 1 or ended(current))
        ray = JobSubmissionClient(ray_head.address, headers={"Authorization": f"Bearer {ray_head.token}"})

        assert ray.stop_job(task_id)  # SIGTERM: the worker dies without ending its operation

        failed = wait_for(api, task_id, ended, timeout=30)  # the reaper sweeps every second here
        assert failed["status"] == "failed", failed
        assert f"the Ray job {task_id} ended STOPPED mid-training" in failed["error"]


def test_ray_settings_that_cannot_work_are_refused_at_start(
    ray_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = open_service(ray_settings)
    try:
        closed = ray_settings.model_copy(update={"ray_address": "http://127.0.0.1:9", "public_url": "http://x:1"})
        with pytest.raises(ConfigurationError, match=r"cannot reach the Ray cluster at http://127.0.0.1:9"):
            RayExecutor(service, closed)
        with pytest.raises(ConfigurationError, match="TRAINOPS_EXECUTOR=ray needs TRAINOPS_PUBLIC_URL"):
            RayExecutor(service, ray_settings.model_copy(update={"public_url": None}))
        with pytest.raises(ConfigurationError, match="TRAINOPS_EXECUTOR=ray needs TRAINOPS_RAY_ADDRESS"):
            RayExecutor(service, ray_settings.model_copy(update={"ray_address": None, "public_url": "http://x:1"}))
        monkeypatch.setenv("RAY_AUTH_TOKEN", "not-the-token")
        with pytest.raises(ConfigurationError, match="refused this server"):
            RayExecutor(service, ray_settings.model_copy(update={"public_url": "http://x:1"}))
    finally:
        service.store.engine.dispose()


def test_the_ray_executor_without_the_ray_extra_names_it(
    ray_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainops import extras

    monkeypatch.setitem(extras.EXTRA_MODULES, "ray", ("ray", "no_such_module_for_trainops"))
    extras.missing_modules.cache_clear()
    service = open_service(ray_settings)
    try:
        with pytest.raises(MissingExtraError, match=r"pip install 'trainops\[ray\]'"):
            RayExecutor(service, ray_settings.model_copy(update={"public_url": "http://x:1"}))
    finally:
        extras.missing_modules.cache_clear()
        service.store.engine.dispose()


@dataclass
class Sweeping:
    """A Ray executor on the test cluster (its public URL unreachable: nothing runs), its service, the shipped
    strategy, and the service five minutes ago (to create operations that old)."""

    service: OperationsService
    executor: RayExecutor
    config: StrategyConfig
    five_minutes_ago: OperationsService


@pytest.fixture
def sweeping(ray_settings: Settings) -> Iterator[Sweeping]:
    settings = ray_settings.model_copy(update={"public_url": "http://127.0.0.1:1"})
    service = open_service(settings)
    executor = RayExecutor(service, settings)
    try:
        config = resolve_request(TrainingRequest(strategy="mean_reversion"), STRATEGIES, allow_paths=False)
        earlier = OperationsService(service.store, clock=lambda: utcnow() - timedelta(minutes=5))
        yield Sweeping(service, executor, config, earlier)
    finally:
        executor.shutdown()
        service.store.engine.dispose()


def test_a_ray_training_that_never_reached_the_cluster_is_failed_by_the_sweep(sweeping: Sweeping) -> None:
    service, config = sweeping.service, sweeping.config
    stranded = create_training(sweeping.five_minutes_ago, config, executor="ray")  # its server died submitting it
    just_now = create_training(service, config, executor="ray")  # being submitted: not judged yet
    elsewhere = create_training(sweeping.five_minutes_ago, config, executor="ray")
    service.update_metadata(elsewhere.operation_id, {"ray_job_id": "x", "ray_address": "http://other:8265"})
    active = [service.get(op.operation_id) for op in (stranded, just_now, elsewhere)]

    ended = Reaper(service, sweeping.executor, interval=1, grace=30).sweep()

    assert ended == [stranded.operation_id]
    assert "never reached the Ray cluster" in (service.get(stranded.operation_id).error or "")
    assert all(service.get(op.operation_id).status.value == "pending" for op in active[1:])


def test_a_job_the_cluster_forgot_fails_its_training_only_once_its_worker_is_silent(sweeping: Sweeping) -> None:
    """A head restarted without fault tolerance forgets its jobs, but their workers may live on and report."""
    service, executor = sweeping.service, sweeping.executor
    forgotten = [create_training(sweeping.five_minutes_ago, sweeping.config, executor="ray") for _ in range(3)]
    for op in forgotten:  # submitted five minutes ago to this cluster, which knows none of them now
        service.update_metadata(op.operation_id, {"ray_job_id": op.operation_id, "ray_address": executor.address})
    reporting, silent, never_heard = (op.operation_id for op in forgotten)
    service.heartbeat(reporting)
    sweeping.five_minutes_ago.heartbeat(silent)

    ended = Reaper(service, executor, interval=1, grace=30).sweep()

    assert sorted(ended) == sorted([silent, never_heard])
    assert service.get(reporting).status.value == "pending"
    error = service.get(silent).error or ""
    assert f"no longer knows the job {silent}" in error and "nothing was heard from its worker for 300 s" in error
    assert "and its worker never reported" in (service.get(never_heard).error or "")


class FreezableProxy:
    """A TCP relay to the cluster's dashboard that can stop relaying (:attr:`frozen`), as a hung head would: it
    accepts connections and reads requests, but answers nothing until thawed. It counts the connections made."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.frozen = threading.Event()
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.frozen.clear()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with source, sink:
            while True:
                try:
                    data = source.recv(65536)
                    while self.frozen.is_set():
                        time.sleep(0.05)
                    if not data:
                        return
                    sink.sendall(data)
                except OSError:
                    return


def test_a_hung_cluster_costs_one_short_wait_then_views_answer_its_last_state(
    ray_settings: Settings, ray_head: RayHead, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poller of ``GET /operations/{id}`` waits on the cluster for a view: a hung head must not hold each one."""
    monkeypatch.setattr(ray_executor, "VIEW_SECONDS", 0.0)  # every view would ask the cluster
    monkeypatch.setattr(ray_executor, "VIEW_REQUEST_SECONDS", 2.0)
    monkeypatch.setattr(ray_executor, "RETRY_VIEW_SECONDS", 3.0)
    proxy = FreezableProxy(ray_head.address)
    settings = ray_settings.model_copy(update={"ray_address": proxy.address, "public_url": "http://127.0.0.1:1"})
    service = open_service(settings)
    executor = RayExecutor(service, settings)
    ray = JobSubmissionClient(ray_head.address, headers={"Authorization": f"Bearer {ray_head.token}"})
    job_id = ray.submit_job(entrypoint="sleep 300", entrypoint_num_cpus=0)
    try:
        answered = executor.view(job_id)
        assert answered is not None and answered.read_at is not None

        proxy.frozen.set()
        before = proxy.connections
        views: list[Any] = []
        asked = time.monotonic()
        pollers = [threading.Thread(target=lambda: views.append(executor.view(job_id))) for _ in range(8)]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join(timeout=30)
        waited = time.monotonic() - asked
        again = time.monotonic()
        last = executor.view(job_id)  # the cluster was silent: asked again only after RETRY_VIEW_SECONDS
        assert time.monotonic() - again < 0.5

        assert 2.0 <= waited < 5.0  # one read timed out; the other pollers answered meanwhile
        assert proxy.connections - before <= 1
        assert views == [answered] * 8 and last == answered  # the last state Ray told, with when it told it
        proxy.frozen.clear()
        time.sleep(3.0)  # RETRY_VIEW_SECONDS
        thawed = executor.view(job_id)
        assert thawed is not None and thawed.read_at is not None and thawed.read_at > answered.read_at
    finally:
        proxy.close()
        ray.stop_job(job_id)
        executor.shutdown()
        service.store.engine.dispose()


def test_a_forced_cancel_stops_the_ray_job_and_ends_the_training_cancelled(
    ray_settings: Settings, ray_head: RayHead
) -> None:
    with serving(ray_settings) as api:
        task_id = start(api, UNTIL_STOPPED)
        wait_for(api, task_id, lambda now: now["epochs_completed"] >= 1 or ended(now))
        service = open_service(ray_settings)
        executor = RayExecutor(service, ray_settings.model_copy(update={"public_url": "http://127.0.0.1:1"}))
        try:
            # what the reaper does to a worker deaf to its cancel: here it never even heard of one
            assert executor.cancel(task_id, "the worker ignored its cancel")
        finally:
            executor.shutdown()
            service.store.engine.dispose()

        final = operation(api, task_id)
        assert job_state(ray_head, task_id, {"STOPPED", "FAILED", "SUCCEEDED"}, timeout=5) == "STOPPED"
    assert final["status"] == "cancelled", final
    assert final["cancel_reason"] == "the worker ignored its cancel"
    assert final["cancel_request"]["requested_by"] == "trainops"
    # whoever records the end first words it: the executor's forced stop, or the server's reaper finding the job
    # STOPPED after the cancel was recorded; either way the run ends cancelled, for the reason given
    assert (
        f"stopped by force (its Ray job was stopped ({ray_head.address}))" in final["error"]
        or "its job ended after the cancel (the worker ignored its cancel)" in final["error"]
    ), final["error"]
