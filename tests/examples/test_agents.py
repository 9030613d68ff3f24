"""The example agents (``examples/agents/``) end to end: each runs as a subprocess that launches ``trainops mcp``
and talks to it with the MCP SDK's client over stdio, against real runs on a temporary home.

- ``training_monitor.py`` follows a real strategy training to its end, and with ``--auto-stop`` stops a run
  whose diagnosis says stop (an overfitting run a training loop in this test reports through ``trainops.connect``).
- ``loss_analyzer.py`` reports on the finished training, a run with no epochs yet, one with too few to judge a
  trend, and an unknown id.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import trainops
from trainops.core.operation import Operation, OperationStatus
from trainops.pipeline.data_files import write_sample_data
from trainops.schemas.training import ConfigOverrides, EarlyStoppingOverride, TrainingRequest
from trainops.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "examples" / "agents"
TIMEOUT = 120.0
UNKNOWN_ID = "op_training_20250101_000000_deadbeef"


@dataclass
class Home:
    settings: Settings
    env: dict[str, str]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    root = tmp_path_factory.mktemp("agents")
    write_sample_data(root / "data")
    settings = Settings(
        home=root / "home", data_dir=root / "data", models_dir=root / "models", strategies_dir=ROOT / "strategies"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAINOPS_")}
    env.update(
        TRAINOPS_HOME=str(settings.home),
        TRAINOPS_DATA_DIR=str(settings.data_dir),
        TRAINOPS_MODELS_DIR=str(settings.models_dir),
        TRAINOPS_STRATEGIES_DIR=str(settings.strategies_dir),
    )
    return Home(settings=settings, env=env)


@pytest.fixture(scope="module")
def ops(home: Home) -> Iterator[trainops.TrainOps]:
    with trainops.connect(settings=home.settings) as client:
        yield client


def start_agent(home: Home, script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(AGENTS / script), *args],
        env=home.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=TIMEOUT)
    return process.returncode, out, err


def wait_until_ended(ops: trainops.TrainOps, operation_id: str) -> Operation:
    deadline = time.monotonic() + TIMEOUT
    while True:
        operation = ops.get_operation(operation_id)
        if operation.status.is_terminal:
            return operation
        if time.monotonic() > deadline:
            pytest.fail(f"{operation_id} did not end in {TIMEOUT:.0f}s: {operation}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def training(ops: trainops.TrainOps) -> str:
    """A real strategy training, started in a worker process (it runs while the monitor starts)."""
    overrides = ConfigOverrides(epochs=40, early_stopping=EarlyStoppingOverride(patience=100_000))
    return ops.start_training(TrainingRequest(strategy="mean_reversion", config=overrides)).task_id


@pytest.fixture(scope="module")
def finished_training(ops: trainops.TrainOps, training: str) -> str:
    assert wait_until_ended(ops, training).status is OperationStatus.COMPLETED
    return training


# -- training_monitor.py -------------------------------------------------------------------------------------------


def test_monitor_follows_a_training_until_it_ends(home: Home, ops: trainops.TrainOps, training: str) -> None:
    assert not ops.get_operation(training).status.is_terminal  # it follows the run live, poll after poll
    code, out, err = finish(start_agent(home, "training_monitor.py", training, "--interval", "0.2"))
    assert code == 0, err
    history = ops.get_metrics(training).metrics.epochs
    assert history
    lines = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert lines == [
        f"Epoch {record.epoch}: train_loss={record.train_loss:.4f}, val_loss={record.val_loss:.4f}, "
        f"train_accuracy={record.train_accuracy:.4f}, val_accuracy={record.val_accuracy:.4f}"
        + "".join(f", {name}={value:.4f}" for name, value in sorted(record.metrics.items()))
        for record in history
    ]
    assert out.splitlines()[-1] == f"Run {training} ended completed"


def overfitting_loop(settings: Settings, started: threading.Event, box: dict[str, object]) -> None:
    """A training loop reporting through trainops: train_loss falls all along, val_loss from epoch 5 rises. It
    stops when asked, as any loop using ``run.should_stop()`` does."""
    with trainops.connect(settings=settings) as client, client.run(total_epochs=300) as run:
        box["operation_id"] = run.operation_id
        started.set()
        for epoch in range(300):
            val_loss = 1.0 - 0.1 * epoch if epoch <= 5 else 0.5 + 0.01 * (epoch - 5)
            run.log(epoch, train_loss=1.0 - 0.003 * epoch, val_loss=val_loss)
            if run.should_stop():
                box["stopped_at"] = epoch
                break
            time.sleep(0.1)


def test_monitor_auto_stop_cancels_a_run_whose_diagnosis_says_stop(home: Home, ops: trainops.TrainOps) -> None:
    started, box = threading.Event(), {}
    loop = threading.Thread(target=overfitting_loop, args=(home.settings, started, box), daemon=True)
    loop.start()
    assert started.wait(30)
    operation_id = str(box["operation_id"])

    code, out, err = finish(start_agent(home, "training_monitor.py", operation_id, "--auto-stop", "--interval", "0.2"))
    loop.join(30)
    assert code == 0, err
    operation = ops.get_operation(operation_id)
    assert operation.status is OperationStatus.CANCELLED
    assert operation.cancel_request is not None
    assert operation.cancel_request.requested_by == "agent"
    reason = operation.cancel_request.reason
    assert reason.startswith("Stop")
    assert f"Stopping {operation_id}: {reason}" in out
    assert "Signal [warning] overfitting: val_loss rose" in out
    assert out.splitlines()[-1] == f"Run {operation_id} ended cancelled ({reason}, requested by agent)"
    assert isinstance(box.get("stopped_at"), int)
    # the history is intact: every epoch the loop logged is stored
    assert [record.epoch for record in ops.get_metrics(operation_id).metrics.epochs] == list(
        range(int(str(box["stopped_at"])) + 1)
    )


def test_monitor_on_an_unknown_id_says_how_to_find_one(home: Home) -> None:
    code, out, err = finish(start_agent(home, "training_monitor.py", UNKNOWN_ID))
    assert code == 2
    assert err.startswith(f"Error: no operation '{UNKNOWN_ID}'")
    assert "Call list_operations" in err
    assert "Traceback" not in out + err


# -- loss_analyzer.py ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reports(home: Home, ops: trainops.TrainOps, finished_training: str) -> dict[str, tuple[int, str, str]]:
    """The analyzer on four runs at once (each starts its own MCP server: in parallel, that costs one start)."""
    waiting = ops.create_operation("training", total_epochs=10, metadata={"strategy": "waiting"})
    with ops.run(total_epochs=10, metadata={"strategy": "young"}) as run:
        run.log(0, train_loss=0.9, val_loss=1.0)
        run.log(1, train_loss=0.8, val_loss=0.95)
    cases = {
        "finished": finished_training,
        "no metrics": waiting.operation_id,
        "too few": run.operation_id,
        "unknown": UNKNOWN_ID,
    }
    processes = {case: start_agent(home, "loss_analyzer.py", operation_id) for case, operation_id in cases.items()}
    return {case: finish(process) for case, process in processes.items()}


def test_analyzer_reports_on_a_finished_run(
    reports: dict[str, tuple[int, str, str]], ops: trainops.TrainOps, finished_training: str
) -> None:
    code, out, err = reports["finished"]
    assert code == 0, err
    metrics = ops.get_metrics(finished_training).metrics
    lines = out.splitlines()
    assert lines[0] == f"Loss analysis of {finished_training} (training, completed; mean_reversion on EURUSD 1h)"
    assert lines[1] == f"Epochs: {len(metrics.epochs)} recorded of 40 planned; judged on val_loss (lower is better)"
    assert re.fullmatch(r"Trend: val_loss (improving|flat|worsening), [+-]\d+\.\d% over epochs \d+-\d+, .+", lines[2])
    assert lines[3].startswith(f"Best: val_loss {metrics.best_value:.4g} at epoch {metrics.best_epoch}; ")
    for verdict, flag in (
        ("Overfitting", metrics.is_overfitting),
        ("Plateau", metrics.is_plateaued),
        ("Divergence", metrics.is_diverging),
    ):
        assert any(line.startswith(f"{verdict}: {'yes' if flag else ''}") for line in lines), verdict
    advice = {"continue": "continue training", "stop": "stop now"}.get(
        metrics.recommendation.action.value, f"stop and use epoch {metrics.recommendation.restore_epoch}"
    )
    assert f"Recommendation: {advice}" in lines
    assert metrics.projection is not None
    projection = next(line for line in lines if line.startswith("Projection: "))
    assert re.fullmatch(
        r"Projection: [+-]\d+\.\d% on the best over \d+ more epoch\(s\) \((not )?worth continuing: needs more "
        r"than 1\.0%\)",
        projection,
    ), projection
    gain, left = metrics.projection.evidence["projected_improvement_pct"], metrics.projection.evidence["epochs_left"]
    assert isinstance(gain, float)
    assert projection.startswith(f"Projection: {gain:+.1f}% on the best over {left} more epoch(s)")


def test_analyzer_on_a_run_without_epochs_says_to_wait(reports: dict[str, tuple[int, str, str]]) -> None:
    code, out, err = reports["no metrics"]
    assert code == 0, err
    assert "No metrics yet: no epoch recorded (pending, 0%)" in out


def test_analyzer_on_too_few_epochs_says_so(reports: dict[str, tuple[int, str, str]]) -> None:
    code, out, err = reports["too few"]
    assert code == 0, err
    assert "Epochs: 2 recorded of 10 planned" in out
    assert "Trend: too few epochs to judge (2 with val_loss; the trend needs at least 3)" in out
    assert "Best: val_loss 0.95 at epoch 1; 0 epoch(s) since improvement" in out
    assert "Recommendation: continue training" in out


def test_analyzer_on_an_unknown_id_says_how_to_find_one(reports: dict[str, tuple[int, str, str]]) -> None:
    code, out, err = reports["unknown"]
    assert code == 2
    assert out == ""
    assert err.startswith(f"Error: no operation '{UNKNOWN_ID}'")
    assert "Call list_operations" in err
    assert "Traceback" not in err
