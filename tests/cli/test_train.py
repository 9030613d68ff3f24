"""``trainops train`` and ``trainops strategies``, as a user runs them: in this process, detached into a worker
process, and against a live server; errors as one-line messages.

The trainings are real (2 epochs of ``strategies/mean_reversion.yaml`` on the sample data).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import trainops
import trainops.cli.train
from tests.live_server import LiveServer
from trainops.cli.main import app
from trainops.core import OperationStatus
from trainops.core.operation import Operation
from trainops.errors import ServiceUnavailableError
from trainops.service.workers import worker_log_path
from trainops.settings import Settings, get_settings

REPO = Path(__file__).resolve().parents[2]
STRATEGIES = REPO / "strategies"
MEAN_REVERSION = "strategies/mean_reversion.yaml"
TRAINING_TIMEOUT = 90.0
TASK_ID = re.compile(r"op_training_\d{8}_\d{6}_[0-9a-f]{8}")

runner = CliRunner()


@pytest.fixture
def settings(training_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Run from the repository root, so ``strategies/mean_reversion.yaml`` is the path a user would type."""
    monkeypatch.chdir(REPO)
    return training_settings


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "300"})
    return result.exit_code, result.stdout, result.stderr


def operations() -> list[Operation]:
    with trainops.connect() as ops:
        return ops.list_operations().items


def wait_until_ended(task_id: str) -> Operation:
    """Poll the local database (as another terminal would) until the training ends."""
    deadline = time.monotonic() + TRAINING_TIMEOUT
    with trainops.connect() as ops:
        while True:
            operation = ops.get_operation(task_id)
            if operation.status.is_terminal:
                return operation
            if time.monotonic() > deadline:
                pytest.fail(f"training {task_id} did not end in {TRAINING_TIMEOUT:.0f}s: {operation}")
            time.sleep(0.2)


def worker_pid(operation: Operation) -> int:
    """The pid of the process that ran ``operation`` (its ``metadata.worker`` is ``host:pid``)."""
    assert operation.metadata.worker, operation
    return int(operation.metadata.worker.rpartition(":")[2])


def one_line_error(err: str, out: str = "") -> str:
    assert err.startswith("Error: "), err
    assert err.strip().count("\n") == 0, err
    assert "Traceback" not in out + err
    return err.strip()


# -- training ----------------------------------------------------------------------------------------------------


def test_train_in_this_process_shows_the_performance_and_the_next_step(settings: Settings) -> None:
    code, out, err = invoke("train", MEAN_REVERSION, "--epochs", "2")

    assert code == 0, err
    [operation] = operations()
    task_id = operation.operation_id
    assert f"Training mean_reversion as {task_id} on EURUSD [1h]" in err
    assert operation.status is OperationStatus.COMPLETED
    assert worker_pid(operation) == os.getpid()  # trained right here
    assert f"performance of {task_id}" in out
    assert "2 of 2" in out
    assert "mlp_32_16" in out
    assert f"Next: keep the model with `trainops models save {task_id} NAME`" in out

    # and `ops show` reads the training's result as its headline
    code, shown, _ = invoke("ops", "show", task_id)
    assert code == 0
    rows = {
        label: value.strip()
        for label, _, value in (line.strip("│ ").partition("  ") for line in shown.splitlines())
        if value
    }
    assert re.fullmatch(
        r"accuracy \d+\.\d% \(always (BUY|HOLD|SELL): \d+\.\d%\), F1 0\.\d{4} \(macro\)", rows["test"]
    ), rows
    assert re.fullmatch(r"[01] of epochs 0-1 \(val_loss \d\.\d{4}\)", rows["best epoch"]), rows
    assert rows["early stopping"] == "no, every planned epoch ran"
    assert rows["model version"].startswith("mean_reversion/EURUSD_1h_v1 in ")
    assert re.fullmatch(r"\d+\.\d s", rows["duration"]), rows
    assert [line for line in shown.splitlines() if "fields}" in line and "metadata" not in line] == []


def test_train_refuses_a_models_dir_that_is_a_file_before_training(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """It had trained to the end, then failed writing the model version with a raw NotADirectoryError."""
    (tmp_path / "models.txt").write_text("not a folder", encoding="utf-8")
    request.addfinalizer(get_settings.cache_clear)  # no later test may read this test's settings
    answers = []
    for models_dir in (tmp_path / "models.txt", tmp_path / "models.txt" / "sub"):
        monkeypatch.setenv("TRAINOPS_MODELS_DIR", str(models_dir))
        get_settings.cache_clear()
        code, out, err = invoke("train", MEAN_REVERSION, "--epochs", "2")
        answers.append((code, one_line_error(err, out)))

    assert answers == [
        (
            1,
            f"Error: the models directory {tmp_path / 'models.txt'} (TRAINOPS_MODELS_DIR) is a file: point "
            "TRAINOPS_MODELS_DIR at a directory, where trainings keep their model versions",
        ),
        (
            1,
            f"Error: the models directory {tmp_path / 'models.txt' / 'sub'} (TRAINOPS_MODELS_DIR) cannot be created: "
            f"{tmp_path / 'models.txt'} is a file: point TRAINOPS_MODELS_DIR at a directory, where trainings keep "
            "their model versions",
        ),
    ]
    assert operations() == []  # nothing recorded


def test_a_training_that_cannot_write_its_model_version_fails_saying_where_and_offers_no_model(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "mean_reversion").write_text("a file where the strategy's folder goes", encoding="utf-8")
    monkeypatch.setenv("TRAINOPS_MODELS_DIR", str(models_dir))
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)

    code, out, _ = invoke("train", MEAN_REVERSION, "--epochs", "2")

    [operation] = operations()
    assert code == 1 and operation.status is OperationStatus.FAILED
    assert f"cannot write the model version into {models_dir / 'mean_reversion'}: a file is in the way of a folder" in (
        operation.error or ""
    )
    assert f"performance of {operation.operation_id}" in out  # the evaluation is kept and shown
    assert "Next: keep the model" not in out  # there is no model to keep


def test_train_watches_again_when_the_database_is_away_for_a_while(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few seconds of PostgreSQL away ended the command with exit 1 under the training thread, and the run was
    then recorded as completed at 1 of 40 epochs."""
    watches: list[str] = []
    real_follow = trainops.cli.train.follow

    def follow_through_an_outage(ops: Any, task_id: str, *args: Any) -> OperationStatus:
        watches.append(task_id)
        if len(watches) == 1:
            raise ServiceUnavailableError("the database is busy or unreachable (connection refused)")
        return real_follow(ops, task_id, *args)

    monkeypatch.setattr(trainops.cli.train, "follow", follow_through_an_outage)
    code, out, err = invoke("train", MEAN_REVERSION, "--epochs", "2")

    [operation] = operations()
    assert code == 0, err
    assert operation.status is OperationStatus.COMPLETED and operation.epochs_completed == 2
    assert f"Lost sight of {operation.operation_id}: the database is busy or unreachable" in err
    assert "The training goes on" in err and len(watches) == 2
    assert f"performance of {operation.operation_id}" in out


def test_lost_sight_puts_no_period_after_a_question(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The HTTP client's reason ends with a question mark, and the line read ``is TRAINOPS_URL right?. The training
    goes on``."""
    reason = (
        "cannot reach the trainops server at http://127.0.0.1:1 (ConnectError: connection refused); is "
        "`trainops serve` running, and is TRAINOPS_URL right?"
    )
    watches: list[str] = []

    def follow_after_an_outage(ops: Any, task_id: str, *args: Any) -> OperationStatus:
        watches.append(task_id)
        if len(watches) == 1:
            raise ServiceUnavailableError(reason)
        return OperationStatus.COMPLETED

    monkeypatch.setattr(trainops.cli.train, "follow", follow_after_an_outage)
    monkeypatch.setattr(trainops.cli.train.time, "sleep", lambda seconds: None)

    unused: Any = None  # the patched follow never asks it
    assert trainops.cli.train._follow(unused, "op_x", json=False) is OperationStatus.COMPLETED
    err = capsys.readouterr().err
    assert f"Lost sight of op_x: {reason} The training goes on; watching again" in err


def test_train_json_streams_events_ending_with_the_performance(settings: Settings) -> None:
    code, out, _ = invoke("train", MEAN_REVERSION, "--epochs", "2", "--json")

    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [event["event"] for event in events]
    assert [event["epoch"] for event in events if event["event"] == "epoch"] == [0, 1]
    assert kinds[-2:] == ["operation", "performance"]
    performance = events[-1]
    assert performance["status"] == "completed"
    assert performance["task_id"] == events[-2]["operation_id"]
    assert performance["training_metrics"]["epochs_completed"] == 2
    assert {"test_accuracy", "precision", "recall", "f1_score"} <= performance["test_metrics"].keys()


def test_train_detach_returns_and_the_worker_process_trains(settings: Settings) -> None:
    began = time.monotonic()
    code, out, err = invoke("train", MEAN_REVERSION, "--epochs", "2", "--detach")
    returned_after = time.monotonic() - began

    assert code == 0, err
    match = TASK_ID.search(err)
    assert match, err
    task_id = match.group()
    assert f"trainops ops watch {task_id}" in err
    assert "performance of" not in out  # it did not wait for the training
    assert returned_after < 60

    final = wait_until_ended(task_id)

    assert final.status is OperationStatus.COMPLETED, final.error
    assert final.epochs_completed == 2
    assert worker_pid(final) != os.getpid()
    assert worker_log_path(settings, task_id).is_file()


def test_train_with_url_trains_on_the_server(settings: Settings) -> None:
    with LiveServer(settings) as server:
        code, out, err = invoke("train", "mean_reversion", "--epochs", "2", "--url", server.url)

    assert code == 0, err
    [operation] = operations()
    assert operation.status is OperationStatus.COMPLETED
    assert worker_pid(operation) != os.getpid()  # a worker process the server spawned
    assert f"performance of {operation.operation_id}" in out
    assert "Next: " in out


def broken_strategy(directory: Path) -> Path:
    path = directory / "broken.yaml"
    text = (STRATEGIES / "mean_reversion.yaml").read_text()
    path.write_text(
        text.replace("parameters: [0, 0, 30, 42]}", "parameters: [30, 20]}").replace(
            "trapezoidal, parameters: [30, 20]", "triangular, parameters: [30, 20]"
        )
    )
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["strategies/no_such.yaml"], "strategy file 'strategies/no_such.yaml' does not exist", id="file"),
        pytest.param(["no_such_strategy"], "no strategy named 'no_such_strategy'", id="name"),
        pytest.param(
            ["{broken}"],
            "fuzzy_sets.rsi_14.oversold: triangular needs 3 numbers a <= b <= c, got [30, 20]",
            id="invalid-strategy",
        ),
        pytest.param(
            [MEAN_REVERSION, "--symbol", "GBPUSD"],
            "no market data for GBPUSD_1h in ",
            id="unknown-symbol",
        ),
        pytest.param(
            [MEAN_REVERSION, "--start", "2018-01-01", "--end", "2017-01-01"],
            "--start 2018-01-01 is after --end 2017-01-01",
            id="start-after-end",
        ),
    ],
)
def test_train_errors_are_one_line_messages(settings: Settings, tmp_path: Path, args: list[str], message: str) -> None:
    broken = broken_strategy(tmp_path)

    code, out, err = invoke("train", *[arg.format(broken=broken) for arg in args], "--epochs", "2")

    assert code == 1
    assert message in one_line_error(err, out)
    assert operations() == []  # refused before anything was stored


def test_unknown_symbol_error_lists_the_available_data(settings: Settings) -> None:
    _, _, err = invoke("train", MEAN_REVERSION, "--symbol", "GBPUSD")

    assert "available: EURUSD_1h, EURUSD_4h, EURUSD_1d, GOOG_1d, GOOG_1w" in err


def test_train_request_errors_read_like_the_other_messages(settings: Settings) -> None:
    _, _, err = invoke("train", MEAN_REVERSION, "--start", "2018-01-01", "--end", "2017-01-01")

    assert err.strip() == "Error: --start 2018-01-01 is after --end 2017-01-01"


def test_train_bad_date_format_is_a_usage_error(settings: Settings) -> None:
    code, out, err = invoke("train", MEAN_REVERSION, "--start", "2018/01/01")

    # Typer checks the format before the command runs: a usage error (exit 2), as for other bad option values
    assert code == 2
    assert "'2018/01/01' does not match the formats '%Y-%m-%d'" in " ".join(err.split())
    assert "Traceback" not in out + err
    assert operations() == []


# -- strategies --------------------------------------------------------------------------------------------------


def test_strategies_list(settings: Settings) -> None:
    code, out, _ = invoke("strategies", "list")

    assert code == 0
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 2}
    shipped = sorted(path.stem for path in STRATEGIES.glob("*.yaml"))
    assert sorted(name for name in rows if name and name != "name") == shipped
    assert all("valid" in rows[name] and "invalid" not in rows[name] for name in shipped)
    assert "mlp_32_16" in rows["mean_reversion"]

    code, out, _ = invoke("strategies", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert sorted(item["name"] for item in listed) == shipped
    assert all(item["valid"] for item in listed)


def test_strategies_list_names_the_file_train_takes_when_the_name_inside_differs(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    shutil.copy(STRATEGIES / "mean_reversion.yaml", tmp_path / "my_copy.yaml")
    monkeypatch.setenv("TRAINOPS_STRATEGIES_DIR", str(tmp_path))
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)  # no later test may read this test's settings

    code, out, _ = invoke("strategies", "list")

    assert code == 0 and "my_copy (named mean_reversion)" in out


def test_strategies_validate(settings: Settings, tmp_path: Path) -> None:
    code, out, _ = invoke("strategies", "validate", MEAN_REVERSION)
    assert code == 0
    assert "valid: mean_reversion is a valid strategy" in out

    code, out, _ = invoke("strategies", "validate", str(broken_strategy(tmp_path)))
    assert code == 1
    assert "invalid" in out
    assert "  - fuzzy_sets.rsi_14.oversold: triangular needs 3 numbers a <= b <= c, got [30, 20]" in out

    code, out, _ = invoke("strategies", "validate", str(broken_strategy(tmp_path)), "--json")
    assert code == 1
    result = json.loads(out)
    assert result["valid"] is False and len(result["problems"]) == 1

    code, out, err = invoke("strategies", "validate", "strategies/no_such.yaml")
    assert code == 1
    assert "strategy file 'strategies/no_such.yaml' does not exist" in one_line_error(err, out)
