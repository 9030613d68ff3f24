"""With no server, whose reaper ends a local training whose process died, the in-process client does: a run whose
``trainops train`` was killed (SIGKILL, out of memory) is ended the next time anyone on its host looks at it, by the
same rule as the reaper's. Runs of live processes, of other hosts and of outside scripts are left alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from trainops import OperationStatus
from trainops.client import LocalTrainOps
from trainops.core.operation import OperationMetadata
from trainops.service.bootstrap import open_service
from trainops.settings import Settings


@pytest.fixture
def ops(settings: Settings) -> Iterator[LocalTrainOps]:
    client = LocalTrainOps(open_service(settings))
    yield client
    client.close()


@pytest.fixture(scope="module")
def gone_pid() -> int:
    """The pid of a process of this host that has exited (and been collected)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def running(ops: LocalTrainOps, worker: str, executor: str = "local") -> str:
    operation = ops.create_operation(metadata=OperationMetadata(executor=executor), total_epochs=10)
    ops.start_operation(operation.operation_id, worker=worker)
    return operation.operation_id


def test_a_local_run_whose_process_is_gone_is_ended_when_read(ops: LocalTrainOps, gone_pid: int) -> None:
    worker = f"{socket.gethostname()}:{gone_pid}"
    operation_id = running(ops, worker)
    ops.cancel_operation(operation_id, "enough", requested_by="agent")
    lost = running(ops, worker)

    read = ops.get_operation(lost)

    assert read.status is OperationStatus.FAILED
    assert f"the worker process {worker} is gone (killed, out of memory or crashed)" in (read.error or "")
    assert read.completed_at is not None
    # listed: each one ended, not only the first
    listed = {item.operation_id: item.status for item in ops.list_operations().items}
    assert listed == {lost: OperationStatus.FAILED, operation_id: OperationStatus.CANCELLED}
    assert ops.list_operations(active_only=True).items == []
    cancelled = ops.get_operation(operation_id)
    assert cancelled.cancel_request is not None and cancelled.cancel_request.reason == "enough"
    assert "its job ended after the cancel (enough)" in (cancelled.error or "")


def test_live_remote_and_outside_runs_are_left_alone(ops: LocalTrainOps, gone_pid: int) -> None:
    alive = running(ops, f"{socket.gethostname()}:{os.getpid()}")
    elsewhere = running(ops, f"another-host-{socket.gethostname()}:{gone_pid}")
    script = running(ops, f"{socket.gethostname()}:{gone_pid}", executor="external")

    for operation_id in (alive, elsewhere, script):
        assert ops.get_operation(operation_id).status is OperationStatus.RUNNING
    assert len(ops.list_operations(active_only=True).items) == 3
