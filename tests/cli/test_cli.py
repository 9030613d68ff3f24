"""The ``trainops`` command, end to end: on the local database, against a live server, and as a process."""

from __future__ import annotations

import contextlib
import doctest
import json
import math
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

import trainops.cli.common
import trainops.cli.listing
import trainops.cli.ops
import trainops.cli.render
from tests.live_server import LiveServer
from tests.policies import CLI_PATIENCE_RULE
from trainops.api.routes.events import EventTiming
from trainops.cli.main import app
from trainops.client import HttpTrainOps
from trainops.core import EpochRecord, OperationStatus, ProgressState
from trainops.errors import ServiceUnavailableError
from trainops.schemas.operations import ExecutorJob
from trainops.schemas.training import StrategyResult
from trainops.service.operations import OperationsService
from trainops.settings import Settings, get_settings
from trainops.store.migrate import SCHEMA_REVISION

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "160"})
    return result.exit_code, result.stdout, result.stderr


def finished_run(service: OperationsService, epochs: int = 12) -> str:
    operation = service.create(total_epochs=epochs, metadata={"strategy": "cli-test"})
    service.add_epochs(
        operation.operation_id,
        [EpochRecord(epoch=e, train_loss=1.0 / (e + 1), val_loss=1.0 / (e + 1) + 0.01, f1=0.5) for e in range(epochs)],
    )
    service.complete(operation.operation_id, result={"accuracy": 0.93})
    return operation.operation_id


def test_list_show_and_metrics(service: OperationsService) -> None:
    code, out, _ = invoke("ops", "list")
    assert code == 0 and "Nothing yet" in out

    operation_id = finished_run(service)
    code, out, _ = invoke("ops", "list")
    assert code == 0 and operation_id in out and "completed" in out and "12/12" in out

    code, out, _ = invoke("ops", "show", operation_id)
    assert code == 0 and "strategy=cli-test" in out and "accuracy = 0.9300" in out
    assert "job" not in panel_rows(out)  # no executor knows a script's operation: nothing to say

    code, out, _ = invoke("ops", "metrics", operation_id)
    assert code == 0
    assert "val_loss" in out and "f1" in out and "recommendation" in out
    assert "best               epoch 11" in out


def test_the_diagnosis_panel_shows_the_forecast_and_never_contradicts_its_recommendation(
    service: OperationsService,
) -> None:
    # still improving at its planned end: healthy, continue, and how many epochs more would pay
    improving = service.create(total_epochs=40)
    service.add_epochs(
        improving.operation_id, [EpochRecord(epoch=e, val_loss=0.2 + math.exp(-0.04 * e)) for e in range(40)]
    )
    extend_by = json.loads(invoke("ops", "metrics", improving.operation_id, "--json")[1])["metrics"]["recommendation"][
        "extend_by"
    ]
    assert isinstance(extend_by, int)

    code, out, _ = invoke("ops", "metrics", improving.operation_id)

    rows = panel_rows(out)
    assert code == 0 and rows["verdict"] == "healthy" and rows["recommendation"] == "continue"
    assert rows["extend by"].startswith(f"{extend_by} epoch(s) (")
    assert rows["forecast"].endswith("best so far")  # no epochs left: the forecast is the best so far

    # a run that has levelled off near its floor: nothing wrong, nothing left to gain, and the verdict says so
    converged = service.create(total_epochs=220)
    service.add_epochs(
        converged.operation_id, [EpochRecord(epoch=e, val_loss=0.2 + math.exp(-0.08 * e)) for e in range(200)]
    )
    code, out, _ = invoke("ops", "metrics", converged.operation_id)
    rows = panel_rows(out)
    assert code == 0 and rows["recommendation"] == "stop"
    assert rows["verdict"] == "converged: little left to gain"
    assert rows["forecast"].startswith("0.2000 by epoch")


def test_a_forecast_best_already_reached_reads_as_the_best_so_far(service: OperationsService) -> None:
    # best at epoch 5, worse since, at epoch 13 of 40: no curve projects a new best, so the forecast's best is the
    # one of epoch 5; "by epoch 5" would read as a prediction about an epoch long past
    past_its_best = service.create(total_epochs=40)
    losses = [0.3 + 1 / (e + 1) if e <= 5 else 0.3 + 1 / 6 + 0.01 * (e - 5) for e in range(14)]
    service.add_epochs(past_its_best.operation_id, [EpochRecord(epoch=e, val_loss=v) for e, v in enumerate(losses)])

    code, out, _ = invoke("ops", "metrics", past_its_best.operation_id)

    assert code == 0
    assert panel_rows(out)["forecast"] == "0.4667, the best so far (epoch 5): no new best expected"

    # ops watch and train show the diagnosis the events stream sends, without its epochs: the same words
    diagnosis = service.metrics(past_its_best.operation_id).metrics.model_copy(update={"epochs": []})
    console = Console(width=160, record=True)
    console.print(trainops.cli.render.diagnosis_panel(diagnosis))
    assert panel_rows(console.export_text())["forecast"] == "0.4667, the best so far (epoch 5): no new best expected"


def test_a_large_change_the_fit_cannot_tell_from_noise_reads_as_flat_within_its_noise(
    service: OperationsService,
) -> None:
    noisy = service.create(total_epochs=40)
    values = [1.0, 2.0, 0.5, 1.8, 0.7, 0.2, 1.5, 0.4, 1.9, 2.4]
    service.add_epochs(noisy.operation_id, [EpochRecord(epoch=e, val_loss=v) for e, v in enumerate(values)])
    trend = service.metrics(noisy.operation_id).metrics.trend
    assert trend.direction.value == "flat" and trend.within_noise and trend.percent_change is not None

    code, out, _ = invoke("ops", "metrics", noisy.operation_id)

    assert code == 0
    assert panel_rows(out)["trend"] == f"flat {trend.percent_change:+.2f}% over epochs 0-9, within its noise"


def test_show_puts_the_test_accuracy_beside_that_of_always_the_most_frequent_class(service: OperationsService) -> None:
    result = json.loads(STORED_RESULT.read_text(encoding="utf-8"))
    result["test_metrics"].update(baseline_accuracy=0.4136, baseline_class="BUY")
    operation = service.create(total_epochs=3, metadata={"strategy": "mean_reversion"})
    service.complete(operation.operation_id, result=result)

    code, out, _ = invoke("ops", "show", operation.operation_id)

    assert code == 0
    assert panel_rows(out)["test"] == "accuracy 46.8% (always BUY: 41.4%), F1 0.4710 (macro)"


def test_json_output_is_machine_readable(service: OperationsService) -> None:
    operation_id = finished_run(service)

    page = json.loads(invoke("ops", "list", "--json")[1])
    assert page["items"][0]["operation_id"] == operation_id
    shown = json.loads(invoke("ops", "show", operation_id, "--json")[1])
    assert shown["status"] == "completed"
    assert shown["job"] is None  # no executor runs a script's operation (a Ray job's: tests/executors)
    metrics = json.loads(invoke("ops", "metrics", operation_id, "--since-epoch", "9", "--json")[1])
    assert metrics["operation_id"] == operation_id
    assert [e["epoch"] for e in metrics["metrics"]["epochs"]] == [10, 11]
    assert metrics["metrics"]["best_epoch"] == 11


STORED_RESULT = Path(__file__).parents[1] / "schemas" / "stored_strategy_result.json"
"""A real strategy training's result as the operations table holds it (see tests/schemas)."""


def strategy_run(service: OperationsService, **training_metrics: Any) -> tuple[str, dict[str, Any]]:
    result = json.loads(STORED_RESULT.read_text(encoding="utf-8"))
    result["training_metrics"].update(training_metrics)
    operation = service.create(total_epochs=3, metadata={"strategy": "mean_reversion"})
    service.complete(operation.operation_id, result=result)
    return operation.operation_id, result


def panel_rows(out: str) -> dict[str, str]:
    """``label -> value`` of a panel's rows (the label is what precedes the first run of two spaces)."""
    rows = {}
    for line in out.splitlines():
        label, _, value = line.strip("│ ").partition("  ")
        if value:
            rows[label] = value.strip()
    return rows


def test_show_reads_a_strategy_training_s_result(service: OperationsService) -> None:
    operation_id, stored = strategy_run(service)

    code, out, _ = invoke("ops", "show", operation_id)

    assert code == 0
    rows = panel_rows(out)
    assert rows["test"] == "accuracy 46.8%, F1 0.4710 (macro)"
    assert rows["best epoch"] == "2 of epochs 0-2 (val_loss 0.9877)"
    assert rows["early stopping"] == "no, every planned epoch ran"
    assert rows["model version"] == (
        "mean_reversion/EURUSD_1h_v1 in /home/trader/.trainops/models/mean_reversion/EURUSD_1h_v1"
    )
    assert rows["duration"] == "4.0 s"
    assert "fields}" not in out

    shown = json.loads(invoke("ops", "show", operation_id, "--json")[1])
    assert shown["result"] == stored  # --json is the stored result, untouched


@pytest.mark.parametrize(
    ("training_metrics", "ending"),
    [
        pytest.param(
            {
                "early_stopped": True,
                "stopped_reason": "early stopping: val_loss did not improve by more than 0 for 5 epochs (patience 5); "
                "best 0.98 at epoch 7",
            },
            "yes: val_loss did not improve by more than 0 for 5 epochs (patience 5); best 0.98 at epoch 7",
            id="early-stopped",
        ),
        pytest.param(
            {"stopped_reason": "cancelled by agent: val_loss rising"},
            "no; cancelled by agent: val_loss rising",
            id="cancelled",
        ),
        pytest.param(
            {"diverged": "train_loss became nan at epoch 1", "stopped_reason": "train_loss became nan at epoch 1"},
            "no; diverged: train_loss became nan at epoch 1",
            id="diverged",
        ),
    ],
)
def test_show_says_how_a_strategy_training_ended(
    service: OperationsService, training_metrics: dict[str, Any], ending: str
) -> None:
    operation_id, _ = strategy_run(service, **training_metrics)

    code, out, _ = invoke("ops", "show", operation_id)

    assert code == 0 and panel_rows(out)["early stopping"] == ending


def test_the_panel_shows_a_job_that_failed_before_its_worker_reported(service: OperationsService) -> None:
    operation = service.create()
    job = ExecutorJob(
        executor="ray", job_id=operation.operation_id, status="FAILED", message="runtime env setup failed", exit_code=1
    )
    console = Console(width=160, record=True)

    console.print(trainops.cli.render.operation_panel(operation, job))

    rows = panel_rows(console.export_text())
    assert rows["status"] == "pending"
    assert rows["job"] == "FAILED on ray (exit code 1) — runtime env setup failed"


def test_the_panel_says_when_a_silent_cluster_last_told_the_jobs_state(service: OperationsService) -> None:
    operation = service.create()
    now = datetime.now(UTC)
    fresh = ExecutorJob(executor="ray", job_id=operation.operation_id, status="RUNNING", read_at=now)
    stale = fresh.model_copy(update={"read_at": now - timedelta(seconds=42)})

    shown = []
    for job in (fresh, stale):
        console = Console(width=160, record=True)
        console.print(trainops.cli.render.operation_panel(operation, job))
        shown.append(panel_rows(console.export_text())["job"])

    assert shown[0] == "RUNNING on ray"
    assert shown[1] == "RUNNING on ray (as of 42 s ago: the ray cluster has not answered since)"


def test_the_panel_says_a_job_running_under_an_ended_operation_is_its_process_exiting(
    service: OperationsService,
) -> None:
    """A worker writes its operation's end, then exits: for that moment its job is still RUNNING."""
    operation = service.create()
    service.start(operation.operation_id)
    service.finish(operation.operation_id, OperationStatus.COMPLETED)
    job = ExecutorJob(executor="local", job_id="host:42", status="RUNNING")
    console = Console(width=160, record=True)

    console.print(trainops.cli.render.operation_panel(service.get(operation.operation_id), job))

    rows = panel_rows(console.export_text())
    assert rows["status"] == "completed"
    assert rows["job"] == "RUNNING on local (the operation has ended; its process is exiting)"


def test_the_performance_panel_names_features_that_never_vary() -> None:
    stored = json.loads(STORED_RESULT.read_text(encoding="utf-8"))
    stored["data"]["constant_features"] = ["rsi_14_impossible", "rsi_14_impossible_lag1"]
    console = Console(width=200, record=True)

    console.print(trainops.cli.render.performance_panel(StrategyResult.model_validate(stored), "op_x"))

    assert panel_rows(console.export_text())["never vary"] == (
        "rsi_14_impossible, rsi_14_impossible_lag1: one value over every training row, nothing to learn (a fuzzy "
        "set no bar reaches?)"
    )


def test_show_lists_any_other_result_value_by_value(service: OperationsService) -> None:
    operation = service.create()
    result = {"test_accuracy": 0.9, "model": {"path": "m/v1", "layers": [32, 16]}, "notes": "[bold]as typed[/bold]"}
    service.complete(operation.operation_id, result=result)

    code, out, _ = invoke("ops", "show", operation.operation_id)

    assert code == 0
    lines = [line.strip("│ ") for line in out.splitlines()]
    start = next(index for index, line in enumerate(lines) if line.startswith("result"))
    # in the stored order of the keys, which PostgreSQL's JSONB does not keep
    assert sorted(line.removeprefix("result").strip() for line in lines[start : start + 4]) == [
        "model.layers = [32, 16]",
        "model.path = m/v1",
        "notes = [bold]as typed[/bold]",  # shown as written, not read as markup
        "test_accuracy = 0.9000",
    ]
    assert "fields}" not in out


def test_show_cuts_a_long_result_short_and_points_at_json(service: OperationsService) -> None:
    operation = service.create()
    service.complete(operation.operation_id, result={f"metric_{number:03d}": number for number in range(100)})

    code, out, _ = invoke("ops", "show", operation.operation_id)

    assert code == 0
    assert sum(" = " in line for line in out.splitlines()) == 39
    assert "... and 61 more (all of them with --json)" in out


@pytest.mark.parametrize("module", [trainops.cli.render, trainops.cli.common, trainops.cli.listing])
def test_docstring_examples(module: Any) -> None:
    result = doctest.testmod(module)

    assert result.attempted > 0 and result.failed == 0


def test_metrics_policy_options_change_the_verdict(service: OperationsService) -> None:
    operation = service.create()
    # flat for six epochs after the first: the three evaluations a projected stop needs, and fewer than patience 10
    service.add_epochs(operation.operation_id, [EpochRecord(epoch=e, val_loss=0.5 if e else 1.0) for e in range(7)])
    patience_rule = ("--stop-rule", "patience")
    patient = json.loads(invoke("ops", "metrics", operation.operation_id, *patience_rule, "--json")[1])
    strict = json.loads(
        invoke("ops", "metrics", operation.operation_id, *patience_rule, "--patience", "3", "--json")[1]
    )
    assert patient["metrics"]["recommendation"]["action"] == "continue"
    assert strict["metrics"]["recommendation"]["action"] == "stop_and_restore_best"
    # the default projection rule judges the flat run over the next `patience` epochs: nothing to gain
    projected = json.loads(invoke("ops", "metrics", operation.operation_id, "--json")[1])["metrics"]
    assert projected["recommendation"]["action"] == "stop_and_restore_best"
    assert projected["projection"]["evidence"]["epochs_left"] == 10
    demanding = json.loads(
        invoke("ops", "metrics", operation.operation_id, "--min-improvement-pct", "50", "--json")[1]
    )["metrics"]
    assert demanding["projection"]["parameters"]["min_improvement_pct"] == 50
    by_setting = invoke("ops", "metrics", operation.operation_id, "--set", "patience=3", *patience_rule, "--json")
    assert json.loads(by_setting[1])["metrics"] == strict["metrics"]  # --set reaches every field too
    code, _, err = invoke("ops", "metrics", operation.operation_id, "--mode", "sideways")
    assert code == 2 and "'sideways' is not one of 'min', 'max', 'auto'" in err
    code, _, err = invoke("ops", "metrics", operation.operation_id, "--stop-rule", "hopeful")
    assert code == 2 and "'hopeful' is not one of 'projection', 'patience'" in err


def test_metrics_refuses_a_monitor_the_run_never_reported(service: OperationsService) -> None:
    done = finished_run(service)
    code, out, err = invoke("ops", "metrics", done, "--monitor", "val_los")
    assert code == 1
    assert " ".join(err.split()) == (
        "Error: monitor 'val_los' is not a metric this run has reported; it has reported: f1, train_loss, val_loss. "
        "Pass one of them as monitor (metrics a run reports later become available then)"
    )
    assert "Traceback" not in out + err
    code, _, err = invoke("ops", "diagnose", done, "--monitor", "val_los")
    assert code == 1 and "it has reported: f1, train_loss, val_loss" in " ".join(err.split())
    assert invoke("ops", "metrics", done, "--monitor", "f1", "--json")[0] == 0


def plateau_run(service: OperationsService) -> str:
    """Best at epoch 1, then flat: patience 3 would have stopped at epoch 4, patience 20 never."""
    operation = service.create(total_epochs=30)
    service.add_epochs(operation.operation_id, [EpochRecord(epoch=e, val_loss=0.5 if e else 1.0) for e in range(15)])
    return operation.operation_id


def table_epochs(out: str) -> list[int]:
    """The epochs of the table's rows (a row starts with its epoch; wrapped lines start with a blank cell)."""
    cells = [line.strip("│┃ ").split("│")[0].strip() for line in out.splitlines() if line.startswith("│")]
    return [int(cell) for cell in cells if cell.isdigit()]


def test_diagnose_says_where_a_policy_would_have_stopped(service: OperationsService) -> None:
    operation_id = plateau_run(service)
    version = service.version(operation_id).version

    code, out, _ = invoke("ops", "diagnose", operation_id, "--patience", "3", *CLI_PATIENCE_RULE)

    assert code == 0
    text = " ".join(out.split())
    assert "patience=3" in text
    assert "15 epoch(s) of 30 planned" in text
    assert "would stop at epoch 4 (stop_and_restore_best)" in text
    assert "restore epoch 1" in text and "saved 25 epoch(s)" in text
    assert "where the advice changed (2 of 15 epochs; --all for every epoch)" in text
    assert table_epochs(out) == [0, 4]  # only where the recommendation changed
    assert "plateau" in out

    code, out, _ = invoke("ops", "diagnose", operation_id, "--patience", "3", "--all", *CLI_PATIENCE_RULE)
    assert code == 0 and table_epochs(out) == list(range(15))

    code, out, _ = invoke("ops", "diagnose", operation_id, "--patience", "20", *CLI_PATIENCE_RULE)
    assert code == 0
    assert "never: it says continue through epoch 14" in " ".join(out.split())
    assert table_epochs(out) == [0]
    assert service.version(operation_id).version == version  # a dry run writes nothing


def test_diagnose_json_and_policy_options(service: OperationsService) -> None:
    operation_id = plateau_run(service)

    code, out, _ = invoke(
        "ops",
        "diagnose",
        operation_id,
        "--patience",
        "3",
        "--planned",
        "100",
        "--min-delta",
        "0.001",
        "--window",
        "5",
        "--monitor",
        "val_loss",
        "--mode",
        "min",
        "--divergence-threshold",
        "50",
        "--divergence-factor",
        "4",
        "--no-check-finite",
        "--set",
        "flat_tolerance_pct=2",
        *CLI_PATIENCE_RULE,
        "--json",
    )

    assert code == 0
    replay = json.loads(out)
    assert (replay["stop_epoch"], replay["restore_epoch"], replay["epochs_saved"]) == (4, 1, 95)
    assert replay["total_epochs_planned"] == 100
    assert len(replay["steps"]) == 15
    assert {key: replay["policy"][key] for key in ("patience", "min_delta", "window", "monitor", "mode")} == {
        "patience": 3,
        "min_delta": 0.001,
        "window": 5,
        "monitor": "val_loss",
        "mode": "min",
    }
    assert replay["policy"]["divergence_threshold"] == 50.0
    assert replay["policy"]["divergence_factor"] == 4.0
    assert replay["policy"]["check_finite"] is False
    assert replay["policy"]["flat_tolerance_pct"] == 2.0


def test_diagnose_errors(service: OperationsService) -> None:
    code, out, err = invoke("ops", "diagnose", "op_training_20250101_000000_00000000")
    assert code == 1 and err.startswith("Error: no operation")
    assert "Traceback" not in out + err

    operation_id = plateau_run(service)
    code, _, err = invoke("ops", "diagnose", operation_id, "--mode", "sideways")
    assert code == 2 and "'sideways' is not one of 'min', 'max', 'auto'" in err
    code, _, err = invoke("ops", "diagnose", operation_id, "--patience", "0")
    assert code == 1 and err.startswith("Error: patience: Input should be greater than or equal to 1")
    code, _, err = invoke("ops", "diagnose", operation_id, "--planned", "0")
    assert code == 2 and "--planned" in err
    code, _, err = invoke("ops", "diagnose", operation_id, "--set", "flat_tolerance_pct")
    assert code == 2 and "use FIELD=VALUE" in " ".join(err.split())
    code, _, err = invoke("ops", "diagnose", operation_id, "--patience", "5", "--set", "patience=3")
    assert code == 2 and "patience is given twice: use --patience or --set patience=..., once" in " ".join(err.split())
    code, _, err = invoke("ops", "diagnose", operation_id, "--set", "patiense=3")
    assert code == 1 and err.startswith("Error: --set patiense=3: 'patiense' is not a policy setting; use one of")
    assert "monitor, mode, min_delta, patience" in " ".join(err.split())
    code, _, err = invoke("ops", "diagnose", operation_id, "--set", "min_delta=1_000")
    assert code == 1 and "'1_000' is not a number in plain decimal notation" in " ".join(err.split())

    empty = service.create().operation_id
    code, out, _ = invoke("ops", "diagnose", empty)
    assert code == 0 and "No epochs recorded yet" in out


def test_diagnose_works_against_a_server(live_server: LiveServer, service: OperationsService) -> None:
    operation_id = plateau_run(service)
    code, out, _ = invoke(
        "ops", "diagnose", operation_id, "--patience", "3", *CLI_PATIENCE_RULE, "--url", live_server.url, "--json"
    )
    assert code == 0 and json.loads(out)["stop_epoch"] == 4


def test_cancel(service: OperationsService) -> None:
    operation = service.create()
    service.start(operation.operation_id)

    code, out, _ = invoke("ops", "cancel", operation.operation_id, "--reason", "loss exploded")
    assert code == 0 and f"trainops ops watch {operation.operation_id}" in out
    assert service.get(operation.operation_id).cancel_reason == "loss exploded"

    code, _, err = invoke("ops", "cancel", operation.operation_id)
    assert code == 2 and "--reason" in err


def test_errors_are_one_line_messages_not_tracebacks(service: OperationsService) -> None:
    code, out, err = invoke("ops", "show", "op_training_20250101_000000_00000000")
    assert code == 1
    assert err.startswith("Error: no operation")
    assert "Traceback" not in out + err

    done = finished_run(service)
    code, _, err = invoke("ops", "cancel", done, "--reason", "late")
    assert code == 1 and "already completed" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["metrics", "{done}", "--monitor", ""], "monitor: String should have at least 1", id="monitor"),
        pytest.param(["metrics", "{done}", "--min-delta", "inf"], "min_delta: Input should be a finite", id="delta"),
        pytest.param(["metrics", "{done}", "--patience", "200000"], "patience: Input should be less", id="patience"),
        pytest.param(
            ["diagnose", "{done}", "--divergence-factor", "1"],
            "divergence_factor: Input should be greater than 1",
            id="factor",
        ),
        pytest.param(
            ["diagnose", "{done}", "--window", "100001"], "window: Input should be less", id="diagnose-window"
        ),
        pytest.param(
            ["diagnose", "{done}", "--divergence-threshold", "nan"],
            "divergence_threshold: Input should be a finite",
            id="threshold",
        ),
        pytest.param(["list", "--url", "localhost:8000"], "needs http:// or https://", id="url-scheme"),
        pytest.param(["list", "--url", "http:///no-host"], "is not usable", id="url-host"),
        pytest.param(["list", "--offset", "99999999999999999999"], "offset must be between 0 and", id="offset"),
    ],
)
def test_bad_options_are_one_line_messages(service: OperationsService, args: list[str], message: str) -> None:
    done = finished_run(service)
    code, out, err = invoke("ops", *[arg.format(done=done) for arg in args])
    assert code == 1
    assert err.startswith("Error: ")
    assert message in " ".join(err.split())
    assert "Traceback" not in out + err


@pytest.mark.parametrize("how", [[], ["--poll", "--interval", "0.05"]], ids=["stream", "poll"])
def test_watch_follows_a_run_to_its_end(service: OperationsService, how: list[str]) -> None:
    operation = service.create(total_epochs=6)

    def train() -> None:
        for epoch in range(6):
            time.sleep(0.05)
            service.report_progress(operation.operation_id, ProgressState.training(epoch + 1, 6))
            service.add_epoch(
                operation.operation_id, EpochRecord(epoch=epoch, train_loss=1 / (epoch + 1), val_loss=0.5)
            )
        service.complete(operation.operation_id)

    trainer = threading.Thread(target=train)
    trainer.start()
    code, out, _ = invoke("ops", "watch", operation.operation_id, *how, "--timeout", "60")
    trainer.join()

    assert code == 0
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [int(row[0]) for row in rows[:6]] == list(range(6))
    assert out.splitlines()[0].split() == ["epoch", "train_loss", "val_loss", "duration"]
    assert "completed" in out
    assert "diagnosis" in out


@pytest.mark.parametrize(
    ("option", "value"), [("--timeout", "inf"), ("--timeout", "nan"), ("--timeout", "-1"), ("--interval", "inf")]
)
def test_watch_refuses_a_time_that_is_no_number_of_seconds(service: OperationsService, option: str, value: str) -> None:
    operation_id = finished_run(service)

    code, _, err = invoke("ops", "watch", operation_id, option, value, "--poll")

    assert code != 0 and "Traceback" not in err
    assert f"{option} is a number of seconds, 0 or more; got {float(value)}" in err, err


def test_watch_json_streams_events_and_fails_with_the_run(service: OperationsService) -> None:
    operation = service.create()
    service.add_epochs(
        operation.operation_id, [EpochRecord(epoch=0, val_loss=1.0), EpochRecord(epoch=1, val_loss="NaN")]
    )
    service.fail(operation.operation_id, "NaN loss")

    code, out, _ = invoke("ops", "watch", operation.operation_id, "--json")

    events = [json.loads(line) for line in out.splitlines()]
    kinds = [event["event"] for event in events]
    assert code == 1
    assert kinds == ["epoch", "epoch", "signal", "operation"]
    assert events[1]["val_loss"] == "NaN"
    assert events[2]["rule"] == "non_finite"
    assert events[3]["status"] == "failed"


def test_watch_follows_a_live_run_through_the_events_stream_of_a_server(
    live_server: LiveServer, service: OperationsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    live_server.server.config.app.state.event_timing = EventTiming(poll_interval=0.02, keepalive=0.2)
    operation = service.create(total_epochs=8)
    following = threading.Event()
    streamed = HttpTrainOps.events

    def events(self: HttpTrainOps, *args: Any, **kwargs: Any) -> Any:
        following.set()
        return streamed(self, *args, **kwargs)

    def no_polling(*_: object, **__: object) -> None:
        raise AssertionError("watch polled the metrics instead of following the stream")

    monkeypatch.setattr(HttpTrainOps, "events", events)
    monkeypatch.setattr(HttpTrainOps, "get_metrics", no_polling)

    def train() -> None:
        assert following.wait(timeout=30)  # every epoch is stored while watch follows the stream
        for epoch in range(8):
            time.sleep(0.05)
            service.report_progress(operation.operation_id, ProgressState.training(epoch + 1, 8))
            service.add_epoch(
                operation.operation_id, EpochRecord(epoch=epoch, train_loss=1 / (epoch + 1), val_loss=0.5)
            )
        service.fail(operation.operation_id, "CUDA out of memory")

    trainer = threading.Thread(target=train)
    trainer.start()
    code, out, _ = invoke("ops", "watch", operation.operation_id, "--url", live_server.url, "--timeout", "60")
    trainer.join()

    assert code == 1  # the run failed
    lines = out.splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "val_loss", "duration"]
    assert [int(line.split()[0]) for line in lines if line.strip()[:1].isdigit()][:8] == list(range(8))
    assert "failed" in out and "CUDA out of memory" in out
    assert "diagnosis" in out


@pytest.mark.parametrize("where", [[], ["--url", "http://trainops.example:8000"]], ids=["local", "url"])
def test_ctrl_c_on_watch_says_the_run_goes_on_and_how_to_cancel_it(
    service: OperationsService, monkeypatch: pytest.MonkeyPatch, where: list[str]
) -> None:
    operation = service.create()

    def ctrl_c(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(trainops.cli.ops, "follow", ctrl_c)
    monkeypatch.setattr(trainops.cli.ops, "open_client", lambda *_: contextlib.nullcontext(None))

    code, _, err = invoke("ops", "watch", operation.operation_id, *where)

    assert code == 130  # 128 + SIGINT, as a shell expects
    assert err.count("\n") == 1, err  # one line
    assert f"Stopped watching; {operation.operation_id} goes on." in err
    assert f'trainops ops cancel {operation.operation_id} --reason "..."{" ".join(["", *where])}' in err
    assert service.get(operation.operation_id).cancel_request is None  # only the watching stopped


@pytest.mark.parametrize("transport", ["local", "http"])
def test_watch_gives_up_after_its_timeout_while_the_stream_is_quiet(
    service: OperationsService, settings: Settings, transport: str
) -> None:
    operation = service.create()
    losses = [1.0, 0.8, 0.5]
    service.add_epochs(operation.operation_id, [EpochRecord(epoch=e, val_loss=loss) for e, loss in enumerate(losses)])
    # running, and nothing more happens

    with contextlib.ExitStack() as stack:
        where = [] if transport == "local" else ["--url", stack.enter_context(LiveServer(settings)).url]
        started = time.monotonic()
        code, out, _ = invoke("ops", "watch", operation.operation_id, "--timeout", "1", *where)
        took = time.monotonic() - started
        json_code, json_out, _ = invoke("ops", "watch", operation.operation_id, "--timeout", "1", "--json", *where)

    assert code == 0
    assert 1 <= took < 10
    assert [line.split()[0] for line in out.splitlines() if line.strip()[:1].isdigit()][:3] == ["0", "1", "2"]
    assert "best               epoch 2 (val_loss 0.5000)" in out  # the diagnosis of the whole history
    assert f"Stopped watching after 1.0s; {operation.operation_id} is still running." in " ".join(out.split())
    assert json_code == 0
    assert [json.loads(line)["event"] for line in json_out.splitlines()] == ["epoch", "epoch", "epoch", "operation"]


def test_commands_work_against_a_server(live_server: LiveServer, service: OperationsService) -> None:
    operation_id = finished_run(service)
    code, out, _ = invoke("ops", "show", operation_id, "--url", live_server.url)
    assert code == 0 and "completed" in out

    dead = f"http://127.0.0.1:{free_port()}"
    code, _, err = invoke("ops", "list", "--url", dead)
    assert code == 1 and "cannot reach the trainops server" in err


def test_db_upgrade_and_current(tmp_path: Path, settings: Settings) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code, out, _ = invoke("db", "upgrade", "--database-url", url)
    assert code == 0 and f"from empty to {SCHEMA_REVISION}" in out
    code, out, _ = invoke("db", "upgrade", "--database-url", url)
    assert code == 0 and f"already at revision {SCHEMA_REVISION}" in out
    code, out, _ = invoke("db", "current", "--database-url", url)
    assert f"database: {SCHEMA_REVISION}" in out
    assert json.loads(invoke("db", "current", "--database-url", url, "--json")[1]) == {
        "revision": SCHEMA_REVISION,
        "required": SCHEMA_REVISION,
        "current": True,
    }
    upgraded = json.loads(invoke("db", "upgrade", "--database-url", url, "--json")[1])
    assert (upgraded["from_revision"], upgraded["to_revision"]) == (SCHEMA_REVISION, SCHEMA_REVISION)


@pytest.mark.parametrize(
    ("database", "problem"),
    [
        pytest.param(
            "garbage", "cannot open the database sqlite:///{tmp}/garbage.db: file is not a database", id="text"
        ),
        pytest.param(
            "folder", "cannot open the database sqlite:///{tmp}/folder: unable to open database file", id="dir"
        ),
        pytest.param(
            "postgresql", "cannot open the database postgresql+psycopg://someone:***@127.0.0.1:9/db: ", id="no-server"
        ),
        pytest.param("newer", "the database is at schema revision 9999, which this trainops does not know", id="newer"),
        pytest.param(
            "mlflow",
            "the database holds another application's schema (Alembic revision 4465047574b1, no trainops tables)",
            id="another-applications-alembic",
        ),
        pytest.param(
            "clash",
            "the database already has tables named models, operations that trainops did not create",
            id="another-applications-tables",
        ),
    ],
)
def test_a_database_that_cannot_be_used_is_an_error_line_not_a_traceback(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, database: str, problem: str
) -> None:
    (tmp_path / "garbage.db").write_text("not a database")
    (tmp_path / "folder").mkdir()
    newer = f"sqlite:///{tmp_path / 'newer.db'}"
    assert invoke("db", "upgrade", "--database-url", newer)[0] == 0
    with sqlite3.connect(tmp_path / "newer.db") as connection:  # as a later trainops would leave it
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    with sqlite3.connect(tmp_path / "mlflow.db") as connection:  # an MLflow tracking database, say
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('4465047574b1')")
        connection.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY)")
    with sqlite3.connect(tmp_path / "clash.db") as connection:
        connection.execute("CREATE TABLE operations (id INTEGER PRIMARY KEY)")
        connection.execute("CREATE TABLE models (id INTEGER PRIMARY KEY)")
    url = {
        "garbage": f"sqlite:///{tmp_path / 'garbage.db'}",
        "folder": f"sqlite:///{tmp_path / 'folder'}",
        "postgresql": "postgresql+psycopg://someone:secret@127.0.0.1:9/db",
        "newer": newer,
        "mlflow": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "clash": f"sqlite:///{tmp_path / 'clash.db'}",
    }[database]
    monkeypatch.setenv("TRAINOPS_DATABASE_URL", url)
    get_settings.cache_clear()

    for command in (("ops", "list"), ("db", "upgrade")):
        code, out, err = invoke(*command)

        assert code == 1, out + err
        assert err.startswith("Error: " + problem.format(tmp=tmp_path)), err
        assert "Traceback" not in err and "secret" not in err
    if database in ("mlflow", "clash"):  # nothing of trainops' was written into another application's database
        with sqlite3.connect(tmp_path / f"{database}.db") as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "epoch_metrics" not in tables and "operation_tags" not in tables


def test_a_home_that_is_a_file_is_an_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.write_text("a file")
    monkeypatch.setenv("TRAINOPS_HOME", str(home))
    monkeypatch.delenv("TRAINOPS_DATABASE_URL", raising=False)
    get_settings.cache_clear()

    code, _, err = invoke("ops", "list")

    assert code == 1
    assert err.startswith(f"Error: cannot create the database's folder {home}: "), err


@pytest.mark.parametrize("command", [["serve"], ["mcp", "--transport", "http"]])
def test_a_port_in_use_is_an_error_line_before_anything_starts(settings: Settings, command: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        code, _, err = invoke(*command, "--host", "127.0.0.1", "--port", str(port))

    assert code == 1
    assert err.startswith(f"Error: port {port} on 127.0.0.1 is in use (another trainops serve?)"), err


def command_paths() -> list[list[str]]:
    """Every command of ``trainops`` as typed (``["ops", "list"]``), groups included (``[]``: trainops itself)."""
    paths = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        for name, subcommand in getattr(command, "commands", {}).items():
            walk(subcommand, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_flags_show_no_value_in_any_help() -> None:
    # Typer's rich help printed a type beside every flag (--json <bool>, --help <bool>), as if it took a value
    for path in command_paths():
        code, out, _ = invoke(*path, "--help")
        assert code == 0 and "--help " in out, path
        assert "<bool>" not in out, f"trainops {' '.join(path)} --help"
    code, out, _ = invoke("serve", "--help")
    assert "--port" in out and "<int range>" in out  # options that take a value still show which


def test_every_command_but_serve_and_mcp_takes_json() -> None:
    # as the README says; ops export writes JSON with --format json
    leaves = [path for path in command_paths() if not getattr(command_at(path), "commands", None)]
    without = [" ".join(path) for path in leaves if "--json" not in option_names(command_at(path))]
    assert sorted(without) == ["mcp", "ops export", "serve"]

    code, out, _ = invoke("version", "--json")
    assert code == 0 and json.loads(out) == {"version": invoke("version")[1].strip()}


def command_at(path: list[str]) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def option_names(command: Any) -> set[str]:
    return {name for param in command.params for name in param.opts}


def test_serve_refuses_an_open_address_without_a_token(settings: Settings) -> None:
    code, _, err = invoke("serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert code == 1
    assert "TRAINOPS_API_TOKEN" in err and "--insecure" in err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_runs_the_api_and_fails_orphaned_local_runs(service: OperationsService, settings: Settings) -> None:
    orphan = service.create(metadata={"executor": "local"})
    service.start(orphan.operation_id)
    port = free_port()
    env = {**os.environ, "TRAINOPS_HOME": str(settings.home), "TRAINOPS_DATABASE_URL": settings.resolved_database_url}
    server = subprocess.Popen(
        [sys.executable, "-m", "trainops.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        client = HttpTrainOps(f"http://127.0.0.1:{port}", retries=0)
        deadline = time.monotonic() + 30
        while True:
            try:
                health = client.health()
                break
            except ServiceUnavailableError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"server did not start: {server.stderr.read() if server.stderr else ''}")
                time.sleep(0.1)
        assert health.status == "ok"
        recovered = client.get_operation(orphan.operation_id)
        assert recovered.status is OperationStatus.FAILED
        assert "stopped before it finished" in (recovered.error or "")
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    banner = " ".join((server.stderr.read().decode() if server.stderr else "").split())  # Rich wraps it
    assert f"dashboard at http://127.0.0.1:{port}/, API at http://127.0.0.1:{port}/api/v1" in banner


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TRAINOPS_API_TOKEN", "short", "TRAINOPS_API_TOKEN must be at least 16 characters"),
        ("TRAINOPS_DATABASE_URL", "mysql://db/trainops", "unsupported database 'mysql'"),
        ("TRAINOPS_DATABASE_URL", "::nonsense::", "not a database URL"),
    ],
)
def test_bad_configuration_is_a_message(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    for command in (["ops", "list"], ["serve", "--port", str(free_port())]):
        code, out, err = invoke(*command)
        assert code == 1
        assert message in err
        assert "Traceback" not in out + err
