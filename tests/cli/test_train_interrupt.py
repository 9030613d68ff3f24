"""Ctrl-C, SIGTERM or SIGHUP during ``trainops train``: the cancellation is recorded, the run keeps its history and
best weights, and the command exits 128 + the signal's number (130 for Ctrl-C) as a shell expects.

The command runs as a user runs it, in its own process, and gets real signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import trainops
from trainops.cli.train import STOP_SIGNALS, _catching_stops, _until_interrupted
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
        # `timeout`, a scheduler, a closed terminal or a dropped ssh session: as the first Ctrl-C, not a silent death
        # that leaves the run `running` for ever
        pytest.param("SIGTERM", 128 + signal.SIGTERM, "stopped by SIGTERM", id="sigterm"),
        pytest.param(
            "SIGHUP",
            128 + getattr(signal, "SIGHUP", 1),
            "stopped by SIGHUP",
            id="sighup",
            marks=pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on Windows"),
        ),
        # a cancel asked elsewhere (an agent, `trainops ops cancel`) is a run that ended as asked: the command succeeds
        pytest.param("agent", 0, "enough", id="agent-cancel"),
    ],
)
def test_a_stopped_training_records_the_cancellation_and_exits_as_a_shell_expects(
    settings: Settings, tmp_path: Path, stop: str, exit_code: int, reason: str
) -> None:
    process, log = start_training(tmp_path)
    try:
        with trainops.connect() as ops:
            operation_id = wait_for_epochs(ops, process, log)
            if stop.startswith("ctrl-c"):
                process.send_signal(signal.SIGINT)
                if stop == "ctrl-c twice":
                    # the second press once the first was heard: two signals sent before the command's handler has
                    # run can arrive as one
                    deadline = time.monotonic() + 30
                    while "Ctrl-C again to leave now" not in log.read_text():
                        assert time.monotonic() < deadline and process.poll() is None, log.read_text()
                        time.sleep(0.01)
                    process.send_signal(signal.SIGINT)
            elif stop.startswith("SIG"):
                process.send_signal(getattr(signal, stop))
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
    if stop.startswith("SIG"):
        assert f"{stop}: stopping at the next batch; the best weights are kept" in output, output
    # still evaluated on its best weights, and its model version written
    assert operation.result is not None and "test_metrics" in operation.result
    assert operation.result["training_metrics"]["early_stopped"] is False


def test_a_killed_training_with_no_server_is_ended_for_whoever_follows_it(settings: Settings, tmp_path: Path) -> None:
    """SIGKILL (or the kernel's OOM killer) leaves ``trainops train`` no chance to record anything. With no server
    (whose reaper notices in seconds), the next look at the run from this host ends it: ``ops watch`` following
    it when it died, and ``ops list`` (the run was listed ``running`` for ever)."""
    env = {key: value for key, value in os.environ.items() if key.startswith("TRAINOPS_") or key == "PATH"}
    env |= {"COLUMNS": "200", "HOME": str(tmp_path), "TRAINOPS_EVENTS_POLL_INTERVAL": "0.05"}
    process, log = start_training(tmp_path)
    try:
        with trainops.connect() as ops:
            operation_id = wait_for_epochs(ops, process, log)
        watch = subprocess.Popen(
            [str(TRAINOPS), "ops", "watch", operation_id, "--json"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)  # following it
        process.kill()
        process.wait(30)
        watched, errors = watch.communicate(timeout=60)
    finally:
        for started in (process, locals().get("watch")):
            if isinstance(started, subprocess.Popen) and started.poll() is None:
                started.kill()
                started.wait(10)
    assert watch.returncode == 1, errors.decode()
    last = json.loads(watched.decode().splitlines()[-1])
    assert last["event"] == "operation" and last["status"] == "failed", last
    assert "is gone (killed, out of memory or crashed)" in last["error"], last
    with trainops.connect() as ops:
        operation = ops.get_operation(operation_id)
    assert operation.status is OperationStatus.FAILED
    assert operation.completed_at is not None


def start_training(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """``trainops train`` of a 500-epoch training in its own process, as a terminal starts it; its output goes to
    the log answered."""
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
    # As a terminal starts a command: the stop signals at their default, even when the suite itself runs in the
    # background of a shell (which ignores SIGINT there) or under nohup (SIGHUP): an ignored signal is inherited, and
    # the command leaves it ignored; a handler is reset to the default on exec.
    inherited = {signum: signal.signal(signum, signal.default_int_handler) for signum in STOP_SIGNALS}
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
        for signum, handler in inherited.items():
            signal.signal(signum, handler)
    return process, log


def wait_for_epochs(ops: trainops.TrainOps, process: subprocess.Popen[bytes], log: Path) -> str:
    """The id of the training ``process`` runs, once it has stored two epochs."""
    deadline = time.monotonic() + 120
    while True:
        running = ops.list_operations(status=OperationStatus.RUNNING).items
        if running and ops.get_metrics(running[0].operation_id).metrics.total_epochs_completed >= 2:
            return running[0].operation_id
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"the training did not reach epoch 2 in 120 s:\n{log.read_text()}"
        time.sleep(0.1)


class ServerRun:
    """A training on a server as ``trainops train --url`` follows it: it ends cancelled once asked to stop."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def cancel_operation(self, task_id: str, reason: str, *, requested_by: str) -> None:
        self.reasons.append(reason)

    def get_operation(self, task_id: str) -> SimpleNamespace:
        return SimpleNamespace(status=OperationStatus.CANCELLED if self.reasons else OperationStatus.RUNNING)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_stop_signal_to_the_follower_of_a_server_run_stops_it_as_ctrl_c_does(name: str) -> None:
    if not hasattr(signal, name):
        pytest.skip(f"no {name} here")
    signum = getattr(signal, name)
    run = ServerRun()
    before = signal.getsignal(signum)

    def watch() -> OperationStatus:
        os.kill(os.getpid(), signum)
        time.sleep(30)  # the handler interrupts this
        raise AssertionError(f"{name} did not reach the command")

    final, stopped_by = _until_interrupted(run, "op_training_x", watch)  # type: ignore[arg-type]

    assert (final, stopped_by) == (OperationStatus.CANCELLED, signum)
    assert run.reasons == [f"stopped by {name}"]
    assert signal.getsignal(signum) is before  # the previous handler is back


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on Windows")
def test_a_stop_signal_ignored_when_the_command_starts_stays_ignored() -> None:
    """``nohup trainops train ...``: its user asked that a closed terminal not stop it."""
    hangup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with _catching_stops() as stops:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is stops
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, hangup)
