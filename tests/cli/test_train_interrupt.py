"""Ctrl-C during ``trainops train``: the cancellation is recorded, the run keeps its history and best weights, and
the command exits 130 as a shell expects of an interrupted command.

The command runs as a user runs it, in its own process, and gets a real SIGINT.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import trainops
from trainops.core import OperationStatus
from trainops.settings import Settings

REPO = Path(__file__).resolve().parents[2]
TRAINOPS = Path(sys.executable).parent / "trainops"


@pytest.fixture
def settings(training_settings: Settings) -> Settings:
    return training_settings


@pytest.mark.parametrize(
    ("stop", "exit_code", "reason"),
    [
        pytest.param("ctrl-c", 130, "interrupted from the terminal (Ctrl-C)", id="ctrl-c"),
        # a second Ctrl-C leaves at once: the run is ended cancelled now (this process was its only worker), and the
        # training thread, deep inside torch, must not abort the interpreter ("terminate called ...")
        pytest.param("ctrl-c twice", 130, "interrupted from the terminal (Ctrl-C)", id="ctrl-c-twice"),
        # a cancel asked elsewhere (an agent, `trainops ops cancel`) is a run that ended as asked: the command succeeds
        pytest.param("agent", 0, "enough", id="agent-cancel"),
    ],
)
def test_a_stopped_training_records_the_cancellation_and_exits_as_a_shell_expects(
    settings: Settings, tmp_path: Path, stop: str, exit_code: int, reason: str
) -> None:
    env = {key: value for key, value in os.environ.items() if key.startswith("TRAINOPS_") or key == "PATH"}
    env |= {"COLUMNS": "200", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    # early stopping out of reach, so only the stop can end the run before its 500 epochs
    strategy = tmp_path / "long_mean_reversion.yaml"
    strategy.write_text(
        (REPO / "strategies" / "mean_reversion.yaml")
        .read_text()
        .replace("patience: 8, min_delta: 0.0001", "patience: 100000, min_delta: 0.0")
    )
    assert "patience: 100000" in strategy.read_text()
    log = tmp_path / "train.log"
    # As a terminal starts a command: SIGINT at its default, even when the suite itself runs in the background of a
    # shell, which ignores SIGINT there (an ignored signal is inherited; a handler is reset to the default on exec).
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(TRAINOPS), "train", str(strategy), "--epochs", "500", "--json"],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
    finally:
        signal.signal(signal.SIGINT, inherited)
    try:
        with trainops.connect() as ops:
            deadline = time.monotonic() + 120
            while True:  # wait until it trains: a few epochs stored
                running = ops.list_operations(status=OperationStatus.RUNNING).items
                if running and ops.get_metrics(running[0].operation_id).metrics.total_epochs_completed >= 2:
                    break
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"the training did not reach epoch 2 in 120 s:\n{log.read_text()}"
                time.sleep(0.1)
            operation_id = running[0].operation_id
            if stop.startswith("ctrl-c"):
                process.send_signal(signal.SIGINT)
                if stop == "ctrl-c twice":
                    time.sleep(0.05)
                    process.send_signal(signal.SIGINT)
            else:
                ops.cancel_operation(operation_id, reason, requested_by="agent")
            code = process.wait(120)
            operation = ops.get_operation(operation_id)
            epochs = ops.get_metrics(operation_id).metrics.total_epochs_completed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    output = log.read_text()
    assert code == exit_code, output
    assert "Traceback" not in output and "terminate called" not in output, output
    assert operation.status is OperationStatus.CANCELLED
    assert operation.cancel_request is not None
    assert operation.cancel_request.reason == reason
    assert 2 <= epochs < 500
    if stop == "ctrl-c twice":
        assert f"Left at once: {operation_id} is recorded cancelled" in output
        assert operation.error is not None and operation.error.startswith("left with a second Ctrl-C")
        return
    # still evaluated on its best weights, and its model version written
    assert operation.result is not None and "test_metrics" in operation.result
    assert operation.result["training_metrics"]["early_stopped"] is False
