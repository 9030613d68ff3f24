"""LocalExecutor: training operations in worker processes, one at a time here, watched for crashes.

The trainings are real: 2 epochs of ``mean_reversion`` on the sample data, or one that runs until it is stopped
(cancelled or killed as soon as it runs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trainops.core import OperationStatus
from trainops.core.operation import Operation
from trainops.errors import ConflictError, ServiceUnavailableError
from trainops.executors.local import LocalExecutor
from trainops.schemas.training import ConfigOverrides, EarlyStoppingOverride, TrainingRequest
from trainops.service.operations import OperationsService
from trainops.service.training import create_training, resolve_request
from trainops.service.workers import worker_environment, worker_log_path
from trainops.settings import Settings
from trainops.store import OperationStore, create_database_engine

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
TIMEOUT = 90.0
"""Seconds a 2-epoch training gets, worker start-up (importing torch) included."""
SHORT = ConfigOverrides(epochs=2)
UNTIL_STOPPED = ConfigOverrides(epochs=5000, early_stopping=EarlyStoppingOverride(patience=100_000))
"""A training that runs until it is stopped: epochs take milliseconds here, and the strategy's own early stopping
would end even a 200-epoch training within seconds."""


@pytest.fixture
def settings(training_settings: Settings) -> Settings:
    return training_settings


@pytest.fixture
def executor(service: OperationsService, settings: Settings) -> Iterator[LocalExecutor]:
    executor = LocalExecutor(service, settings, max_concurrent=1)
    yield executor
    executor.shutdown()


@pytest.fixture
def submit(service: OperationsService, executor: LocalExecutor) -> Iterator[Callable[[ConfigOverrides], str]]:
    """Create a pending ``mean_reversion`` training with these overrides and submit it; anything still active
    at the end is cancelled, so no worker outlives its test."""
    submitted: list[str] = []

    def submit(overrides: ConfigOverrides) -> str:
        request = TrainingRequest(strategy="mean_reversion", config=overrides)
        config = resolve_request(request, STRATEGIES, allow_paths=False)
        operation = create_training(service, config)
        submitted.append(operation.operation_id)
        executor.submit(operation.operation_id)
        return operation.operation_id

    yield submit
    for operation_id in submitted:
        if service.get(operation_id).is_active:
            service.cancel(operation_id, "test cleanup")
    for operation_id in submitted:
        wait_for(service, operation_id, has_ended)


def eventually(condition: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen in {timeout:.0f}s")
        time.sleep(0.05)


def wait_for(
    service: OperationsService, operation_id: str, done: Callable[[Operation], bool], timeout: float = TIMEOUT
) -> Operation:
    eventually(lambda: done(service.get(operation_id)), f"{operation_id}: {done.__name__}", timeout)
    return service.get(operation_id)


def is_running(operation: Operation) -> bool:
    return operation.status is OperationStatus.RUNNING


def has_ended(operation: Operation) -> bool:
    return operation.status.is_terminal


def test_trainings_run_one_after_the_other(
    service: OperationsService, executor: LocalExecutor, submit: Callable[[ConfigOverrides], str]
) -> None:
    first, second = submit(SHORT), submit(SHORT)

    wait_for(service, first, is_running)
    assert service.get(second).status is OperationStatus.PENDING
    assert executor.running == [first] and executor.queued == [second]

    done_first = wait_for(service, first, has_ended)
    done_second = wait_for(service, second, has_ended)

    assert done_first.status is done_second.status is OperationStatus.COMPLETED, (done_first, done_second)
    assert done_first.completed_at and done_second.started_at
    assert done_second.started_at >= done_first.completed_at
    assert done_first.epochs_completed == done_second.epochs_completed == 2


def test_a_training_cancelled_while_queued_never_starts(
    service: OperationsService, executor: LocalExecutor, settings: Settings, submit: Callable[[ConfigOverrides], str]
) -> None:
    running, queued = submit(UNTIL_STOPPED), submit(SHORT)
    wait_for(service, running, is_running)

    cancelled = service.cancel(queued, "not needed after all")

    assert cancelled.status is OperationStatus.CANCELLED  # at once: nothing runs it
    service.cancel(running, "free the slot")
    eventually(lambda: not executor.queued and not executor.running, "the queue to empty")
    never_started = service.get(queued)
    assert never_started.status is OperationStatus.CANCELLED
    assert never_started.started_at is None
    assert not worker_log_path(settings, queued).exists()


def ask_while_stuck(pid: int, operation_id: str, settings: Settings) -> None:
    """Stop the worker (SIGSTOP: stuck, it cannot heed a cancel before it is killed) and ask the cancel. Stopped
    inside a write it holds the operation's lock, and the cancel waits for it: then let it finish that write and
    stop it again."""
    impatient = OperationsService(
        OperationStore(create_database_engine(settings.resolved_database_url, busy_timeout=0.5))
    )
    try:
        for _ in range(20):
            os.kill(pid, signal.SIGSTOP)
            try:
                impatient.cancel(operation_id, "stuck run", requested_by="user")
                return
            except ServiceUnavailableError:
                os.kill(pid, signal.SIGCONT)
                time.sleep(0.05)
        raise AssertionError("the worker held the operation's lock at every try")
    finally:
        impatient.store.engine.dispose()


@pytest.mark.parametrize("cancel_asked", [False, True], ids=["dies", "dies-after-its-cancel"])
def test_a_worker_that_dies_gets_its_operation_ended(
    service: OperationsService,
    executor: LocalExecutor,
    settings: Settings,
    submit: Callable[[ConfigOverrides], str],
    cancel_asked: bool,
) -> None:
    """Failed, saying it was killed (it said "exited with code -9"); cancelled when its cancel had been asked, as the
    reaper and a restart end it (it ended failed here)."""
    operation_id = submit(UNTIL_STOPPED)
    running = wait_for(service, operation_id, is_running)
    assert executor.running == [operation_id]
    assert running.metadata.worker
    pid = int(running.metadata.worker.rpartition(":")[2])
    assert pid != os.getpid()
    if cancel_asked:
        ask_while_stuck(pid, operation_id, settings)

    os.kill(pid, signal.SIGKILL)

    ended = wait_for(service, operation_id, has_ended, timeout=10)
    assert ended.status is (OperationStatus.CANCELLED if cancel_asked else OperationStatus.FAILED)
    assert f"the worker process (pid {pid}) was killed by SIGKILL (signal 9)" in (ended.error or "")
    assert str(worker_log_path(settings, operation_id)) in (ended.error or "")
    if cancel_asked:
        assert (ended.error or "").startswith("its job ended after the cancel (stuck run)")
    assert executor.running == []


def test_shutdown_fails_the_queued_trainings(
    service: OperationsService, executor: LocalExecutor, submit: Callable[[ConfigOverrides], str]
) -> None:
    running, queued = submit(UNTIL_STOPPED), submit(SHORT)
    wait_for(service, running, is_running)

    executor.shutdown()

    stopped = service.get(queued)
    assert stopped.status is OperationStatus.FAILED
    assert "the server stopped before this training started; start it again" in (stopped.error or "")
    assert service.get(running).status is OperationStatus.RUNNING  # its worker goes on, reporting to the database
    with pytest.raises(ConflictError, match="the executor is shutting down"):
        executor.submit(queued)


def test_the_worker_refuses_an_unknown_operation(settings: Settings) -> None:
    unknown = "op_training_20250101_000000_deadbeef"

    finished = subprocess.run(
        [sys.executable, "-m", "trainops.executors.worker", unknown],
        env=worker_environment(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 1
    assert f"training {unknown} did not complete: " in finished.stderr
    assert unknown in finished.stderr.partition("did not complete: ")[2]  # the store's "no such operation"
    assert "Traceback" not in finished.stderr
