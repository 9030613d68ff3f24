"""Lightning DDP: a real two-process fit (CPU, gloo) reports from rank 0 only, and a stop ends both ranks' loops.

The fit is ``ddp_fit.py``, run as a program of its own against a live server (``TRAINOPS_URL``); Lightning starts
the second rank by running it again. Each rank writes what its loop did to a JSON file the test reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.ddp import assert_stopped_together, log_tail, under_way
from tests.live_server import LiveServer
from tests.processes import LOOPBACK, clean_env, free_port
from trainops.client import TrainOps
from trainops.core.operation import OperationStatus

SCRIPT = Path(__file__).with_name("ddp_fit.py")

# the processes' behaviour does not depend on the database: SQLite alone keeps the file short
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def start_fit(url: str, tmp_path: Path, max_epochs: int, seconds_per_epoch: float) -> subprocess.Popen[bytes]:
    """``ddp_fit.py`` in a process group of its own (rank 1 is its child), with only ``TRAINOPS_URL`` to go on."""
    env = clean_env(
        TRAINOPS_URL=url,
        TRAINOPS_HOME=str(tmp_path / "client-home"),  # where a run would spill what the server did not take
        MASTER_ADDR=LOOPBACK,
        MASTER_PORT=str(free_port()),
        OMP_NUM_THREADS="1",  # two ranks on two cores
        PYTHONUNBUFFERED="1",
    )
    with (tmp_path / "fit.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, str(SCRIPT), str(tmp_path), str(max_epochs), str(seconds_per_epoch)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def finish(process: subprocess.Popen[bytes], tmp_path: Path, timeout: float) -> list[dict[str, Any]]:
    """Each rank's report, by rank, once the fit exited 0 and both ranks wrote theirs.

    The process started is rank 0, which does not wait for rank 1 at the end of a fit: rank 1 writing its report
    is what shows its loop ended too (a rank 1 left behind dies on its next collective, reportless). A fit still
    running after ``timeout`` (a rank waiting for the other forever) is killed, and the test fails with its log.
    """
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the DDP fit hung for {timeout:.0f} s:\n{log_tail(tmp_path)}")
    assert code == 0, f"the DDP fit exited with code {code}:\n{log_tail(tmp_path)}"
    reports = [tmp_path / f"rank{rank}.json" for rank in (0, 1)]
    deadline = time.monotonic() + 10
    while not all(report.exists() for report in reports):
        if time.monotonic() > deadline:
            missing = ", ".join(report.name for report in reports if not report.exists())
            pytest.fail(f"no {missing}: that rank's fit did not end normally:\n{log_tail(tmp_path)}")
        time.sleep(0.1)
    return [json.loads(report.read_text()) for report in reports]


@contextlib.contextmanager
def fitting(url: str, tmp_path: Path, max_epochs: int, seconds_per_epoch: float) -> Iterator[subprocess.Popen[bytes]]:
    """:func:`start_fit` for the block; whatever of its process group is left afterwards is killed."""
    process = start_fit(url, tmp_path, max_epochs, seconds_per_epoch)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):  # nobody left: both ranks ended
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def test_only_rank_zero_reports_a_ddp_fit(live_server: LiveServer, server_ops: TrainOps, tmp_path: Path) -> None:
    with fitting(live_server.url, tmp_path, max_epochs=3, seconds_per_epoch=0) as process:
        rank0, rank1 = finish(process, tmp_path, timeout=60)

    assert (rank0["global_rank"], rank1["global_rank"]) == (0, 1)
    assert rank0["epochs"] == rank1["epochs"] == [0, 1, 2]
    # rank 1 opened nothing: no operation, no run, so nothing to send
    assert rank1["operation_id"] is None and rank1["reporting"] is False
    assert rank0["reporting"] is True

    page = server_ops.list_operations()
    assert [operation.operation_id for operation in page.items] == [rank0["operation_id"]] and page.total == 1
    operation = server_ops.get_operation(rank0["operation_id"])
    assert operation.status is OperationStatus.COMPLETED
    assert operation.total_epochs == 3
    assert operation.metadata.parameters["lr"] == 0.05  # the module's hparams, from rank 0

    metrics = server_ops.get_metrics(rank0["operation_id"]).metrics
    assert [record.epoch for record in metrics.epochs] == [0, 1, 2]  # every epoch, once
    # 2 batches per rank and epoch (the sampler splits 64 samples between the ranks): rank 0's global step
    assert [record.step for record in metrics.epochs] == [2, 4, 6]
    assert all(record.train_loss is not None and record.val_loss is not None for record in metrics.epochs)
    points = server_ops.get_steps(rank0["operation_id"]).points
    assert [point.step for point in points] == [1, 2, 3, 4, 5, 6]
    assert all("train_loss" in point.metrics for point in points)
    assert metrics.best_epoch is not None and rank0["best_epoch"] == metrics.best_epoch


def test_a_stop_asked_through_the_api_ends_both_ranks_loops(
    live_server: LiveServer, server_ops: TrainOps, tmp_path: Path
) -> None:
    max_epochs = 200  # 40 s of epochs: only the stop ends this fit in time
    with fitting(live_server.url, tmp_path, max_epochs=max_epochs, seconds_per_epoch=0.2) as process:
        operation_id = under_way(server_ops, process, tmp_path, epochs=2, within=45)
        server_ops.cancel_operation(operation_id, "val_loss has plateaued", requested_by="agent")
        asked = time.monotonic()
        ranks = finish(process, tmp_path, timeout=20)
    stopped_after = time.monotonic() - asked

    assert_stopped_together(server_ops, operation_id, "val_loss has plateaued", ranks, planned=max_epochs)
    assert stopped_after < 10  # a few epochs of 0.2 s: the stop is seen within a second or two
