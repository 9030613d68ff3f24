"""Hugging Face DDP: a real two-process ``Trainer.train()`` (CPU, gloo) reports from rank 0 only, and a stop ends
both ranks' loops.

The training is ``hf_ddp_fit.py``, run by ``torchrun`` against a live server (``TRAINOPS_URL``). Each rank writes
what its loop did to a JSON file the test reads.
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
from tests.processes import LOOPBACK, clean_env, free_port, stop_group
from trainops.client import TrainOps
from trainops.core.operation import OperationStatus

SCRIPT = Path(__file__).with_name("hf_ddp_fit.py")

# the processes' behaviour does not depend on the database: SQLite alone keeps the file short
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def start_training(url: str, tmp_path: Path, epochs: int, seconds_per_epoch: float) -> subprocess.Popen[bytes]:
    """``torchrun`` of ``hf_ddp_fit.py`` on two ranks, in a process group of its own, with only ``TRAINOPS_URL``
    to go on."""
    env = clean_env(
        TRAINOPS_URL=url,
        TRAINOPS_HOME=str(tmp_path / "client-home"),  # where a run would spill what the server did not take
        HF_HUB_OFFLINE="1",  # the model is built from a config: nothing to download
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",  # two ranks on two cores
        PYTHONUNBUFFERED="1",
    )
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    rendezvous = ["--master_addr", LOOPBACK, "--master_port", str(free_port())]
    with (tmp_path / "fit.log").open("wb") as log:
        return subprocess.Popen(
            [*launcher, *rendezvous, str(SCRIPT), str(tmp_path), str(epochs), str(seconds_per_epoch)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def finish(process: subprocess.Popen[bytes], tmp_path: Path, timeout: float) -> list[dict[str, Any]]:
    """Each rank's report, by rank, once the training exited 0.

    The process started is torchrun, which exits once both ranks did, and with 0 only when both did: a rank left
    waiting for the other forever keeps it running. One still running after ``timeout`` is stopped, and the test
    fails with its log.
    """
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the DDP training hung for {timeout:.0f} s:\n{log_tail(tmp_path)}")
    assert code == 0, f"the DDP training exited with code {code}:\n{log_tail(tmp_path)}"
    reports = [tmp_path / f"rank{rank}.json" for rank in (0, 1)]
    missing = ", ".join(report.name for report in reports if not report.exists())
    assert not missing, f"no {missing}: that rank's training did not end normally:\n{log_tail(tmp_path)}"
    return [json.loads(report.read_text()) for report in reports]


@contextlib.contextmanager
def training(url: str, tmp_path: Path, epochs: int, seconds_per_epoch: float) -> Iterator[subprocess.Popen[bytes]]:
    """:func:`start_training` for the block; whatever of it is left afterwards is stopped.

    torchrun stops its ranks when it is asked to (SIGTERM); it starts each in a session of its own, so a rank that
    outlived it is stopped by the id it wrote, if that process still runs this script.
    """
    process = start_training(url, tmp_path, epochs, seconds_per_epoch)
    try:
        yield process
    finally:
        stop_group(process, grace=10)
        for pid_file in tmp_path.glob("rank*.pid"):
            pid = int(pid_file.read_text())
            with contextlib.suppress(OSError):  # nobody left: the rank ended
                if SCRIPT.name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.killpg(pid, signal.SIGKILL)


def test_only_rank_zero_reports_a_ddp_training(live_server: LiveServer, server_ops: TrainOps, tmp_path: Path) -> None:
    with training(live_server.url, tmp_path, epochs=3, seconds_per_epoch=0) as process:
        rank0, rank1 = finish(process, tmp_path, timeout=90)

    assert (rank0["rank"], rank1["rank"]) == (0, 1) and rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["epochs"] == rank1["epochs"] == [0, 1, 2]
    assert rank0["global_step"] == rank1["global_step"] == 6
    # rank 1 opened nothing: no operation, no run, so nothing to send
    assert rank1["operation_id"] is None and rank1["reporting"] is False
    assert rank0["reporting"] is True

    page = server_ops.list_operations()
    assert [operation.operation_id for operation in page.items] == [rank0["operation_id"]] and page.total == 1
    operation = server_ops.get_operation(rank0["operation_id"])
    assert operation.status is OperationStatus.COMPLETED
    assert operation.total_epochs == 3
    parameters = operation.metadata.parameters  # the TrainingArguments, from rank 0
    assert (parameters["learning_rate"], parameters["ddp_backend"], parameters["model"]["hidden_size"]) == (
        1e-3,
        "gloo",
        16,
    )

    metrics = server_ops.get_metrics(rank0["operation_id"]).metrics
    # every epoch, once, at the global step: 2 steps an epoch (the sampler splits 64 samples between the ranks)
    assert [(record.epoch, record.step) for record in metrics.epochs] == [(0, 2), (1, 4), (2, 6)]
    assert all(record.train_loss is not None and record.val_loss is not None for record in metrics.epochs)
    points = server_ops.get_steps(rank0["operation_id"]).points
    assert [point.step for point in points] == [1, 2, 3, 4, 5, 6]  # one training log a step (logging_steps=1)
    assert all("train_loss" in point.metrics for point in points)
    assert metrics.best_epoch is not None and rank0["best_epoch"] == metrics.best_epoch


def test_a_stop_asked_through_the_api_ends_both_ranks_loops(
    live_server: LiveServer, server_ops: TrainOps, tmp_path: Path
) -> None:
    epochs = 6  # 9 s of epochs: the stop, seen within a second or two of the first epoch stored, comes before
    with training(live_server.url, tmp_path, epochs=epochs, seconds_per_epoch=1.5) as process:
        operation_id = under_way(server_ops, process, tmp_path, epochs=1, within=60)
        server_ops.cancel_operation(operation_id, "eval_loss has plateaued", requested_by="agent")
        asked = time.monotonic()
        rank0, rank1 = finish(process, tmp_path, timeout=30)
    stopped_after = time.monotonic() - asked

    last = assert_stopped_together(server_ops, operation_id, "eval_loss has plateaued", (rank0, rank1), epochs)
    assert rank0["global_step"] == rank1["global_step"] == 2 * (last + 1)
    assert stopped_after < 15  # an epoch or two of 1.5 s, and torchrun's exit
