"""The reaper: local workers that died are noticed while the server runs; cancels not heeded are enforced.

The Ray side (a job stopped behind the server's back) is in test_ray_executor.py, against a real head.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.live_server import LiveServer
from trainops.core import OperationStatus
from trainops.core.operation import Operation
from trainops.executors.local import LocalExecutor
from trainops.executors.reaper import Reaper
from trainops.schemas.training import ConfigOverrides, EarlyStoppingOverride, TrainingRequest
from trainops.service.operations import OperationsService, utcnow
from trainops.service.training import create_training, resolve_request
from trainops.service.workers import (
    PROCESS_STARTED,
    TAKEOVER_SECONDS,
    local_workers_lost,
    spawn_worker,
    this_worker,
    worker_is_gone,
)
from trainops.settings import Settings

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
UNTIL_STOPPED = ConfigOverrides(epochs=5000, early_stopping=EarlyStoppingOverride(patience=100_000))
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"
)
"""A stand-in worker that heeds nothing: no cancel, no SIGTERM; only SIGKILL ends it."""


@pytest.fixture
def settings(training_settings: Settings) -> Settings:
    return training_settings


@pytest.fixture
def executor(service: OperationsService, settings: Settings) -> Iterator[LocalExecutor]:
    executor = LocalExecutor(service, settings, max_concurrent=1)
    yield executor
    executor.shutdown()


def pending_training(service: OperationsService) -> Operation:
    config = resolve_request(
        TrainingRequest(strategy="mean_reversion", config=UNTIL_STOPPED), STRATEGIES, allow_paths=False
    )
    return create_training(service, config)


def eventually(service: OperationsService, operation_id: str, status: OperationStatus, timeout: float) -> Operation:
    deadline = time.monotonic() + timeout
    while (operation := service.get(operation_id)).status is not status:
        assert time.monotonic() < deadline, f"{operation_id} is {operation.status}, not {status}: {operation.error}"
        time.sleep(0.1)
    return operation


def test_a_worker_killed_while_the_server_runs_gets_its_training_failed(
    settings: Settings, service: OperationsService
) -> None:
    # a worker the server did not start (trainops train --detach, or a server before a restart): only the reaper
    # can notice it die
    operation = pending_training(service)
    worker = spawn_worker(operation.operation_id, settings)
    try:
        running = eventually(service, operation.operation_id, OperationStatus.RUNNING, timeout=90)
        assert running.metadata.worker == f"{socket.gethostname()}:{worker.pid}"
        with LiveServer(settings.model_copy(update={"reaper_interval": 0.5})):
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()  # its parent reaps it, as init does for a worker whose parent is gone

            failed = eventually(service, operation.operation_id, OperationStatus.FAILED, timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    assert f"the worker process {running.metadata.worker} is gone" in (failed.error or "")


def test_a_worker_gone_after_its_cancel_was_asked_ends_cancelled_not_failed(
    service: OperationsService, executor: LocalExecutor
) -> None:
    # the cancel's own stop (another thread, another server) can end the job before this sweep sees the request
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    operation = pending_training(service)
    service.start(operation.operation_id, worker=f"{socket.gethostname()}:{gone.pid}")
    service.cancel(operation.operation_id, "the agent saw it diverge", requested_by="agent")

    assert Reaper(service, executor, interval=1, grace=30).sweep() == [operation.operation_id]

    ended = service.get(operation.operation_id)
    assert ended.status is OperationStatus.CANCELLED
    assert ended.cancel_request is not None and ended.cancel_request.reason == "the agent saw it diverge"
    assert "its job ended after the cancel (the agent saw it diverge)" in (ended.error or "")
    assert f"the worker process {socket.gethostname()}:{gone.pid} is gone" in (ended.error or "")


def test_a_live_worker_and_a_pending_training_are_left_alone(
    service: OperationsService, executor: LocalExecutor
) -> None:
    pending = pending_training(service)
    running = pending_training(service)
    service.start(running.operation_id, worker=f"{socket.gethostname()}:{os.getpid()}")

    assert Reaper(service, executor, interval=1, grace=30).sweep() == []

    assert service.get(pending.operation_id).status is OperationStatus.PENDING
    assert service.get(running.operation_id).status is OperationStatus.RUNNING


def test_a_cancel_not_heeded_within_the_grace_period_is_enforced(
    service: OperationsService, executor: LocalExecutor
) -> None:
    operation = pending_training(service)
    stubborn = subprocess.Popen(
        [sys.executable, "-c", STUBBORN, "trainops.executors.worker", operation.operation_id],
        start_new_session=True,
        stdout=subprocess.PIPE,
    )
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"  # SIGTERM ignored from here
        service.start(operation.operation_id, worker=f"{socket.gethostname()}:{stubborn.pid}")
        service.cancel(operation.operation_id, "val_loss diverged", requested_by="agent")
        early = Reaper(service, executor, interval=1, grace=30)
        late = Reaper(service, executor, interval=1, grace=30, clock=lambda: utcnow() + timedelta(seconds=31))

        assert early.sweep() == []  # within its grace: the worker may still stop at its next batch
        assert stubborn.poll() is None
        assert late.sweep() == [operation.operation_id]

        assert stubborn.wait(timeout=10) == -signal.SIGKILL  # SIGTERM ignored, then SIGKILL
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
            stubborn.wait()
    cancelled = service.get(operation.operation_id)
    assert cancelled.status is OperationStatus.CANCELLED
    assert cancelled.cancel_reason == "val_loss diverged"
    assert "stopped by force (its worker process was terminated)" in (cancelled.error or "")


def test_a_reused_pid_is_never_signalled(service: OperationsService, executor: LocalExecutor) -> None:
    operation = pending_training(service)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        service.start(operation.operation_id, worker=f"{socket.gethostname()}:{bystander.pid}")
        service.cancel(operation.operation_id, "stop")
        late = Reaper(service, executor, interval=1, grace=0, clock=lambda: utcnow() + timedelta(seconds=5))

        assert late.sweep() == [operation.operation_id]  # its worker is gone: the pid is another process's now

        assert bystander.poll() is None  # not the worker of this operation: never signalled
        cancelled = service.get(operation.operation_id)
        assert cancelled.status is OperationStatus.CANCELLED
        assert "no worker process of it runs on this host" in (cancelled.error or "")
    finally:
        bystander.kill()
        bystander.wait()


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    with LiveServer(settings) as server, httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as client:
        yield client


def test_resources_are_validated_and_recorded(api: httpx.Client) -> None:
    for resources, problem in [
        ({"cpus": 1, "tpus": 1}, "tpus"),
        ({"gpus": -1}, "gpus"),
        ({"cpus": "many"}, "cpus"),
        ({"cpus": 0}, "cpus"),  # had run with no CPU counted, so any number of them piled onto one node
    ]:
        answer = api.post("/training/start", json={"strategy": "mean_reversion", "resources": resources})
        assert answer.status_code == 422, answer.text
        assert problem in answer.text

    too_many = api.post("/training/start", json={"strategy": "mean_reversion", "resources": {"cpus": 1000}})
    assert too_many.status_code == 422
    assert f"this machine has {os.cpu_count()} CPUs" in too_many.json()["error"]["message"]
    assert api.get("/operations").json()["data"]["total"] == 0  # refused before anything was recorded

    started = api.post(
        "/training/start",
        json={"strategy": "mean_reversion", "config": {"epochs": 1}, "resources": {"cpus": 1}},
    )
    assert started.status_code == 200, started.text
    task_id = started.json()["task_id"]
    recorded = api.get(f"/operations/{task_id}").json()["data"]
    assert recorded["metadata"]["parameters"]["resources"] == {"cpus": 1.0}
    assert recorded["metadata"]["executor"] == "local"
    deadline = time.monotonic() + 90
    while api.get(f"/operations/{task_id}").json()["data"]["is_active"]:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_gpus_this_machine_lacks_are_refused_locally(api: httpx.Client) -> None:
    import torch

    gpus = torch.cuda.device_count()
    answer = api.post("/training/start", json={"strategy": "mean_reversion", "resources": {"gpus": gpus + 1}})

    assert answer.status_code == 422, answer.text
    assert f"this machine has {gpus} CUDA GPUs" in answer.json()["error"]["message"]
    assert "TRAINOPS_EXECUTOR=ray" in answer.json()["error"]["message"]


def test_an_outside_run_silent_since_its_cancel_is_ended_and_one_still_reporting_is_not(
    service: OperationsService, executor: LocalExecutor
) -> None:
    """An outside script's run (registered over the API) cannot be stopped by the server: once its cancel is past
    the grace period and nothing has been heard from it for as long, its process has died (a scheduler's
    SIGTERM), and only the server can end it; one still writing hears the cancel with its next answer."""
    gone = service.create(metadata={"executor": "external"})
    service.start(gone.operation_id)
    alive = service.create(metadata={"executor": "external"})
    service.start(alive.operation_id)
    for operation in (gone, alive):
        service.cancel(operation.operation_id, "enough", requested_by="agent")
    later = utcnow() + timedelta(seconds=31)
    service._clock = lambda: later - timedelta(seconds=2)  # the live one's heartbeat, 29 s after the cancel
    service.heartbeat(alive.operation_id)

    assert Reaper(service, executor, interval=1, grace=30, clock=lambda: later).sweep() == [gone.operation_id]

    ended = service.get(gone.operation_id)
    assert ended.status is OperationStatus.CANCELLED and ended.cancel_reason == "enough"
    assert "nothing was heard from the run for 3" in (ended.error or "")
    assert service.get(alive.operation_id).status is OperationStatus.RUNNING


def test_a_pending_training_whose_queuing_process_is_gone_is_lost_after_the_takeover_time(
    service: OperationsService,
) -> None:
    """A server killed with trainings in its queue left them pending for ever while another server ran."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    config = resolve_request(
        TrainingRequest(strategy="mean_reversion", config=UNTIL_STOPPED), STRATEGIES, allow_paths=False
    )
    orphan = service.get(create_training(service, config, worker=f"{socket.gethostname()}:{gone.pid}").operation_id)
    queued_here = service.get(create_training(service, config, worker=this_worker()).operation_id)
    soon = orphan.created_at + timedelta(seconds=5)
    later = orphan.created_at + timedelta(seconds=TAKEOVER_SECONDS + 1)

    assert local_workers_lost([orphan, queued_here], now=soon) == {}  # its worker may be taking it over
    lost = local_workers_lost([orphan, queued_here], now=later)
    assert list(lost) == [orphan.operation_id]
    assert f"the process that queued it ({socket.gethostname()}:{gone.pid}" in lost[orphan.operation_id]
    assert "never started; start it again" in lost[orphan.operation_id]


def test_a_zombie_worker_and_a_pid_from_before_this_process_are_gone() -> None:
    """A killed worker of a long-lived caller (a notebook, an in-process MCP server) stayed a zombie, which
    os.kill(pid, 0) counts as alive; a container's server is pid 1 after every restart, so the runs its last life
    queued looked like its own."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while not worker_is_gone(f"{socket.gethostname()}:{child.pid}"):  # exited, not yet waited for
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.05)
        assert Path(f"/proc/{child.pid}").exists()  # still there: a zombie, not a process gone from the table
    finally:
        child.wait()

    me = this_worker()
    assert worker_is_gone(me, PROCESS_STARTED - timedelta(seconds=1))
    assert not worker_is_gone(me, utcnow())
    assert not worker_is_gone(me)
