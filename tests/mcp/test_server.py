"""``trainops mcp`` as an agent meets it: a real MCP ``ClientSession`` over stdio (and once over streamable HTTP)
launching the real command line, on a temporary home with the sample market data.

One server process serves the whole module (each start costs seconds). The training is real:
``mean_reversion`` with thousands of epochs and early stopping out of reach, stopped by the agent.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from typer.testing import CliRunner

import trainops
from tests.live_server import LiveServer
from tests.policies import patience
from trainops.cli.main import app
from trainops.core import EpochRecord
from trainops.mcp.server import READ_TOOLS, WRITING_TOOLS
from trainops.pipeline.data_files import write_sample_data
from trainops.settings import Settings

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 90.0
EVERY_TOOL = {
    "health",
    "list_strategies",
    "validate_strategy",
    "list_data",
    "start_training",
    "list_operations",
    "get_operation_status",
    "get_training_metrics",
    "get_training_steps",
    "export_metrics",
    "replay_diagnosis",
    "cancel_operation",
    "get_operation_results",
    "get_model_performance",
    "compare_runs",
    "save_model",
    "label_operation",
    "delete_operation",
    "list_models",
    "load_model",
    "predict",
}
UNKNOWN_ID = "op_training_20250101_000000_deadbeef"


@dataclass
class Home:
    env: dict[str, str]
    settings: Settings
    logs: Path


class Agent:
    """A connected MCP client session, driven from synchronous tests through an anyio portal."""

    def __init__(self, portal: BlockingPortal, session: ClientSession) -> None:
        self.portal = portal
        self.session = session

    def tools(self) -> dict[str, Any]:
        return {tool.name: tool for tool in self.portal.call(self.session.list_tools).tools}

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """The tool's JSON answer; fails the test on a tool error."""
        result = self.portal.call(self.session.call_tool, tool, arguments)
        assert not result.is_error, result.content
        assert result.structured_content is not None
        return result.structured_content

    def error(self, tool: str, **arguments: Any) -> str:
        """The message of a tool error; fails the test when the tool succeeds."""
        result = self.portal.call(self.session.call_tool, tool, arguments)
        assert result.is_error, result.structured_content
        return " ".join(block.text for block in result.content if block.type == "text")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    root = tmp_path_factory.mktemp("mcp")
    write_sample_data(root / "data")
    settings = Settings(
        home=root / "home", data_dir=root / "data", models_dir=root / "models", strategies_dir=REPO / "strategies"
    )
    env = {
        "TRAINOPS_HOME": str(settings.home),
        "TRAINOPS_DATA_DIR": str(settings.data_dir),
        "TRAINOPS_MODELS_DIR": str(settings.models_dir),
        "TRAINOPS_STRATEGIES_DIR": str(settings.strategies_dir),
    }
    return Home(env=env, settings=settings, logs=root)


@contextmanager
def stdio_agent(home: Home, *args: str, env: dict[str, str] | None = None) -> Iterator[Agent]:
    """``python -m trainops.cli mcp ARGS`` over stdio, as an agent's host launches it (its stderr to a log)."""
    parameters = StdioServerParameters(
        command=sys.executable, args=["-m", "trainops.cli", "mcp", *args], env={**home.env, **(env or {})}
    )
    with (
        (home.logs / "mcp-stderr.log").open("a") as errlog,
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(stdio_client(parameters, errlog=errlog)) as (read, write),
        portal.wrap_async_context_manager(ClientSession(read, write)) as session,
    ):
        portal.call(session.initialize)
        yield Agent(portal, session)


@pytest.fixture(scope="module")
def agent(home: Home) -> Iterator[Agent]:
    with stdio_agent(home) as connected:
        yield connected


def wait_for(predicate: Any, what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


# -- the catalogue -------------------------------------------------------------------------------------------------


def test_offers_every_tool_with_a_description_an_agent_can_act_on(agent: Agent) -> None:
    tools = agent.tools()
    assert set(tools) == EVERY_TOOL == {*READ_TOOLS, *WRITING_TOOLS}
    for name, tool in tools.items():
        assert tool.description and "Returns" in tool.description, name
        assert not tool.description.startswith(" "), name
        assert tool.annotations.read_only_hint is (name not in WRITING_TOOLS), name
    assert tools["cancel_operation"].input_schema["required"] == ["operation_id", "reason"]
    assert "since_epoch" in tools["get_training_metrics"].input_schema["properties"]
    # every parameter says what it is in the schema too (hosts that show the schema, not the description)
    undescribed = [
        f"{tool.name}.{name}"
        for tool in tools.values()
        for name, schema in tool.input_schema["properties"].items()
        if not schema.get("description")
    ]
    assert undescribed == []
    since = tools["get_training_metrics"].input_schema["properties"]["since_epoch"]["description"]
    assert since.startswith("Return only epochs after this one, oldest first and never thinned")
    assert tools["list_models"].input_schema["properties"]["symbol"]["description"].startswith("Only models of")


def test_discovery_tools(agent: Agent) -> None:
    assert agent.call("health")["status"] == "ok"
    assert agent.call("health")["read_only"] is False
    strategies = {item["name"]: item for item in agent.call("list_strategies")["strategies"]}
    assert strategies["mean_reversion"]["valid"] is True
    data = agent.call("list_data")
    assert "1h" in data["symbols"]["EURUSD"]
    assert {item["bars"] for item in data["files"] if item["symbol"] == "EURUSD" and item["timeframe"] == "1h"} == {
        5000
    }
    text = (REPO / "strategies" / "mean_reversion.yaml").read_text()
    assert agent.call("validate_strategy", strategy=text)["valid"] is True
    broken = agent.call("validate_strategy", strategy={"name": "x"})
    assert broken["valid"] is False
    assert broken["problems"]


# -- an agent steers a real training -------------------------------------------------------------------------------


def test_an_agent_starts_watches_stops_and_keeps_a_training(agent: Agent) -> None:
    started = agent.call(
        "start_training",
        strategy="mean_reversion",
        config={"epochs": 5000, "early_stopping": {"patience": 100000}},
    )
    task_id = started["task_id"]
    assert (started["symbol"], started["timeframe"]) == ("EURUSD", "1h")
    # the tools to follow it by, not the CLI's command
    assert f"follow it with get_training_metrics(operation_id='{task_id}', since_epoch=-1)" in started["message"]
    assert "trainops ops watch" not in started["message"]

    seen: list[dict[str, Any]] = []

    def new_epochs() -> bool:
        since = seen[-1]["epoch"] if seen else None
        answer = agent.call("get_training_metrics", operation_id=task_id, since_epoch=since)
        assert answer["operation_id"] == task_id
        epochs = answer["metrics"]["epochs"]
        assert all(since is None or record["epoch"] > since for record in epochs)
        seen.extend(epochs)
        return len(seen) >= 3

    wait_for(new_epochs, "three epochs")
    assert agent.call("get_operation_status", operation_id=task_id)["training"]["status"] == "training"
    assert "still" in agent.error("get_operation_results", operation_id=task_id)

    reason = "val_loss flat for 10 epochs (test)"
    stopping = agent.call("cancel_operation", operation_id=task_id, reason=reason)
    assert stopping["cancel_request"]["requested_by"] == "agent"
    assert "get_operation_status" in stopping["message"]

    def ended() -> dict[str, Any] | None:
        operation: dict[str, Any] = agent.call("get_operation_status", operation_id=task_id)["operation"]
        return operation if operation["status"] not in ("pending", "running") else None

    operation = wait_for(ended, "the training to stop")
    assert operation["status"] == "cancelled"
    assert operation["cancel_request"]["reason"] == reason
    assert operation["cancel_request"]["requested_by"] == "agent"

    # the history is intact: every epoch, in order, including those seen while it ran
    history = agent.call("get_training_metrics", operation_id=task_id)["metrics"]
    epochs = [record["epoch"] for record in history["epochs"]]
    assert epochs == list(range(len(epochs)))
    assert history["epochs"][: len(seen)] == seen
    assert history["total_epochs_completed"] == len(epochs)

    results = agent.call("get_operation_results", operation_id=task_id)
    assert results["status"] == "cancelled"
    assert results["epochs_completed"] == len(epochs)
    assert results["result"]["model_version"]
    assert results["result"]["cancelled"] == {"reason": reason, "requested_by": "agent"}
    training = results["result"]["training_metrics"]
    assert training["restored_best_weights"] is True
    assert training["best_epoch"] in epochs
    performance = agent.call("get_model_performance", operation_id=task_id)
    assert performance["status"] == "cancelled"
    assert 0.0 <= performance["test_metrics"]["test_accuracy"] <= 1.0

    listed = agent.call("list_operations", status=["cancelled"])
    assert [item["operation_id"] for item in listed["operations"]] == [task_id]
    assert listed["operations"][0]["cancel_reason"] == reason

    # the best weights are a model version: save it, load it, ask it for a signal
    saved = agent.call("save_model", operation_id=task_id, model_name="agent_best", description="stopped by an agent")
    assert saved["model_name"] == "agent_best"
    models = agent.call("list_models", symbol="EURUSD")["models"]
    assert [(model["model_name"], model["source_operation"]) for model in models] == [("agent_best", task_id)]
    assert agent.call("load_model", model_name="agent_best")["model_info"]["strategy"] == "mean_reversion"
    answer = agent.call("predict", model_name="agent_best", symbol="EURUSD", timeframe="1h", test_date="2018-01-10")
    assert answer["prediction"]["signal"] in {"buy", "hold", "sell"}
    week = {"model_name": "agent_best", "symbol": "EURUSD", "timeframe": "1h"}
    answer = agent.call("predict", **week, start_date="2018-01-08", end_date="2018-01-12")
    assert answer["count"] == len(answer["predictions"]) > 100  # a week of hourly bars, less a few the data lacks
    error = agent.error("predict", **week, start_date="2017-04-21", end_date="2018-02-07")  # every bar: 3 MB
    assert re.search(
        r"for [\d,]+ bars from 2017-04-21 to 2018-02-07 would take [\d,]+ characters as this tool's answer, over its "
        r"limit of 1,000,000: ask for at most about [\d,]+ bars at a time",
        error,
    )
    fit = int(re.search(r"at most about ([\d,]+) bars", error)[1].replace(",", ""))  # type: ignore[index]
    assert 500 < fit < 3000
    assert "already exists" in agent.error("save_model", operation_id=task_id, model_name="agent_best")


def test_compare_runs_says_which_is_better_and_why(agent: Agent, home: Home) -> None:
    """Runs reported by outside training loops (through trainops.connect) compare like strategy trainings."""
    ids = []
    with trainops.connect(settings=home.settings) as ops:
        for name, losses in (("steady", [0.9, 0.7, 0.6, 0.55]), ("worse", [0.9, 0.8, 0.75, 0.7])):
            with ops.run(metadata={"strategy": name}, total_epochs=4) as run:
                for epoch, loss in enumerate(losses):
                    run.log(epoch, train_loss=loss, val_loss=loss + 0.05)
            ids.append(run.operation_id)
    comparison = agent.call("compare_runs", operation_ids=[ids[1], ids[0]])
    assert comparison["ranking"] == [ids[0], ids[1]]
    assert comparison["best_run"] == ids[0]
    assert comparison["reason"].startswith(f"{ids[0]} is better: best val_loss 0.6 at epoch 3 vs 0.75")
    assert [run["operation_id"] for run in comparison["runs"]] == [ids[1], ids[0]]
    assert comparison["runs"][1]["final_metrics"] == {"train_loss": 0.55, "val_loss": pytest.approx(0.6)}

    unknown = agent.error("compare_runs", operation_ids=[ids[0], UNKNOWN_ID])
    assert f"compare_runs: {UNKNOWN_ID}: no operation" in unknown and "list_operations" in unknown


def test_compare_runs_judges_task_runs_as_get_training_metrics_does(agent: Agent, home: Home) -> None:
    """A detection run is judged on its mAP50 (higher is better) by every tool, compare_runs included."""
    ids = []
    with trainops.connect(settings=home.settings) as ops:
        for name, maps in (("sharp", [0.2, 0.5, 0.7, 0.72]), ("blurry", [0.1, 0.3, 0.4, 0.45])):
            with ops.run(name=name, total_epochs=4, metadata={"task": "object_detection"}) as run:
                for epoch, value in enumerate(maps):
                    # a loss that rises while the mAP climbs: judged on val_loss the ranking would turn over
                    run.log(
                        epoch, train_loss=1 - value, val_loss=1 + value * (2 if name == "sharp" else 1), mAP50=value
                    )
            ids.append(run.operation_id)
        plain = ops.create_operation(name="plain")
        ops.add_epochs(plain.operation_id, [EpochRecord(epoch=0, val_loss=0.5)])

    comparison = agent.call("compare_runs", operation_ids=ids)
    alone = agent.call("get_training_metrics", operation_id=ids[0])["metrics"]

    assert (comparison["monitor"], comparison["mode"]) == ("mAP50", "max") == (alone["monitor"], alone["mode"])
    assert comparison["best_run"] == ids[0]
    assert comparison["runs"][0]["recommendation"] == alone["recommendation"]["action"] == "continue"
    on_loss = agent.call("compare_runs", operation_ids=ids, monitor="val_loss")
    assert (on_loss["monitor"], on_loss["best_run"]) == ("val_loss", ids[1])
    mixed = agent.error("compare_runs", operation_ids=[ids[0], plain.operation_id])
    assert f"judged on different metrics ({ids[0]} on mAP50, {plain.operation_id} on val_loss)" in mixed
    assert "pass monitor" in mixed
    lacking = agent.error("compare_runs", operation_ids=[ids[0], plain.operation_id], monitor="mAP50")
    assert f"{plain.operation_id}: monitor 'mAP50' is not a metric this run has reported" in lacking


def test_answers_stay_a_size_an_agent_can_read(agent: Agent, home: Home) -> None:
    """A long history is thinned unless more points are asked for; a traceback in a list line is cut."""
    with trainops.connect(settings=home.settings) as ops:
        long = ops.create_operation(total_epochs=600, name="long")
        ops.add_epochs(
            long.operation_id,
            [
                EpochRecord(epoch=epoch, train_loss=1 / (epoch + 1), val_loss=1 / (epoch + 1) + 0.1)
                for epoch in range(600)
            ],
        )
        crashed = ops.create_operation(name="crashed")
        ops.finish_operation(crashed.operation_id, status="failed", error="Traceback ...\n" + "  frame\n" * 5000)

    thinned = agent.call("get_training_metrics", operation_id=long.operation_id)["metrics"]
    whole = agent.call("get_training_metrics", operation_id=long.operation_id, points=1000)["metrics"]
    line = next(item for item in agent.call("list_operations", q="crashed")["operations"] if item["name"] == "crashed")
    full = agent.call("get_operation_status", operation_id=crashed.operation_id)

    stretch = agent.call("get_training_metrics", operation_id=long.operation_id, from_epoch=100, to_epoch=349)
    stretch = stretch["metrics"]

    assert thinned["thinned"] is True and len(thinned["epochs"]) <= 200 and thinned["epochs_stored"] == 600
    # a stretch of a long run, read whole: the 250 epochs asked for, over the 200 points, come thinned
    assert [record["epoch"] for record in stretch["epochs"]][:1] == [100] and stretch["epochs"][-1]["epoch"] == 349
    assert stretch["thinned"] is True and len(stretch["epochs"]) <= 200 and stretch["best_epoch"] == 599
    narrow = agent.call("get_training_metrics", operation_id=long.operation_id, from_epoch=590, to_epoch=594)
    assert [record["epoch"] for record in narrow["metrics"]["epochs"]] == [590, 591, 592, 593, 594]
    reversed_range = agent.error("get_training_metrics", operation_id=long.operation_id, from_epoch=10, to_epoch=5)
    assert "from_epoch (10) is after to_epoch (5)" in reversed_range
    assert thinned["best_epoch"] == whole["best_epoch"] == 599  # the diagnosis is over the whole history
    assert whole["thinned"] is False and len(whole["epochs"]) == 600
    assert len(line["error"]) < 400 and line["error"].endswith("characters: get_operation_status has it all)")
    assert len(full["operation"]["error"]) > 40_000
    assert "definitions" in thinned


def test_polling_with_since_epoch_misses_no_epoch(agent: Agent, home: Home) -> None:
    """Polls come in order and are never thinned: an agent away for 450 epochs reads them all, 200 at a time."""
    with trainops.connect(settings=home.settings) as ops:
        run = ops.create_operation(total_epochs=1000, name="polled")
        ops.add_epochs(run.operation_id, [EpochRecord(epoch=e, val_loss=1 / (e + 1)) for e in range(450)])

    seen: list[int] = []
    answers = []
    last = -1
    while True:
        answer = agent.call("get_training_metrics", operation_id=run.operation_id, since_epoch=last)
        answers.append(answer)
        seen += [record["epoch"] for record in answer["metrics"]["epochs"]]
        last = seen[-1]
        if not answer["more"]:
            break

    assert seen == list(range(450))
    assert [answer["more"] for answer in answers] == [True, True, False]
    assert not any(answer["metrics"]["thinned"] for answer in answers)
    assert "definitions" in answers[0]["metrics"]  # since_epoch -1: the first call
    assert all("definitions" not in answer["metrics"] for answer in answers[1:])  # a poll: sent once
    assert answers[-1]["metrics"]["best_epoch"] == 449  # the diagnosis over the whole history, every time
    nothing_new = agent.call("get_training_metrics", operation_id=run.operation_id, since_epoch=449)
    assert (nothing_new["metrics"]["epochs"], nothing_new["more"]) == ([], False)
    # true for since_epoch was read as epoch 1: refused, as REST refuses it
    assert "valid integer" in agent.error("get_training_metrics", operation_id=run.operation_id, since_epoch=True)


def test_steps_of_a_run_that_reports_only_steps(agent: Agent, home: Home) -> None:
    """A one-epoch fine-tune reports batches, not epochs: the steps tool shows its loss blowing up."""
    with trainops.connect(settings=home.settings) as ops:
        with ops.run(name="steps only", total_epochs=1) as run:
            for step in range(0, 1000, 10):
                run.step(step, {"loss": 0.1 if step < 900 else 5.0, "lr": 1e-3}, epoch=0)
        operation_id = run.operation_id

    latest = agent.call("get_training_steps", operation_id=operation_id, points=20)
    first = agent.call("get_training_steps", operation_id=operation_id, since_step=-1, points=30, metric="loss")
    rest = agent.call("get_training_steps", operation_id=operation_id, since_step=first["points"][-1]["step"])

    assert [point["step"] for point in latest["points"]] == list(range(800, 1000, 10))
    assert latest["points"][-1]["metrics"] == {"loss": 5.0, "lr": 1e-3}
    assert (latest["left_out"], latest["more"], latest["thinned"]) == (80, False, False)
    assert [point["step"] for point in first["points"]] == list(range(0, 300, 10)) and first["more"] is True
    assert first["points"][0]["metrics"] == {"loss": 0.1}
    assert [point["step"] for point in rest["points"]] == list(range(300, 1000, 10)) and rest["more"] is False
    unknown = agent.error("get_training_steps", operation_id=operation_id, metric="accuracy")
    assert "accuracy" in unknown and "loss" in unknown
    assert "list_operations" in agent.error("get_training_steps", operation_id=UNKNOWN_ID)


def test_answers_travel_compact_and_within_the_transports_limit(agent: Agent, home: Home) -> None:
    """The text copy beside the structured answer is compact JSON (the SDK's own is indented), and an answer
    past the limit is a tool error saying how to ask for less, not a transport failure."""
    with trainops.connect(settings=home.settings) as ops:
        wide = ops.create_operation(name="wide")
        metrics = {f"custom_metric_{index:02d}": 0.5 for index in range(40)}
        ops.add_epochs(
            wide.operation_id,
            [EpochRecord(epoch=e, train_loss=1.0, val_loss=1 / (e + 1), metrics=metrics) for e in range(1500)],
        )

    result = agent.portal.call(agent.session.call_tool, "get_operation_status", {"operation_id": wide.operation_id})
    text = result.content[0].text
    assert json.loads(text) == result.structured_content
    assert text == json.dumps(result.structured_content, separators=(",", ":"))
    too_big = agent.error("get_training_metrics", operation_id=wide.operation_id, points=1500)
    assert re.search(
        rf"the metrics of {wide.operation_id} with points=1500 would take [\d,]+ characters as this tool's answer, "
        r"over its limit of 1,000,000: ask for fewer points",
        too_big,
    )


def test_a_second_cancel_says_the_first_reason_stands(agent: Agent, home: Home) -> None:
    with trainops.connect(settings=home.settings) as ops:
        running = ops.create_operation(name="to stop")
        ops.start_operation(running.operation_id)

    first = agent.call("cancel_operation", operation_id=running.operation_id, reason="loss flat")
    again = agent.call("cancel_operation", operation_id=running.operation_id, reason="loss flat")
    other = agent.call("cancel_operation", operation_id=running.operation_id, reason="another reason")

    assert first["message"].startswith(f"Stop requested for {running.operation_id}.")
    assert again["message"].startswith(f"Stop requested for {running.operation_id}.")  # the same request, again
    assert other["message"].startswith("A stop was already requested by agent: 'loss flat'; that reason stands.")
    assert other["cancel_request"]["reason"] == "loss flat"


def test_replay_diagnosis_dry_runs_a_policy(agent: Agent, home: Home) -> None:
    with trainops.connect(settings=home.settings) as ops:
        operation = ops.create_operation(total_epochs=30)
        ops.add_epochs(
            operation.operation_id, [trainops.EpochRecord(epoch=e, val_loss=0.5 if e else 1.0) for e in range(15)]
        )
    before = agent.call("get_operation_status", operation_id=operation.operation_id)

    impatient = agent.call("replay_diagnosis", operation_id=operation.operation_id, policy=patience(3))
    patient = agent.call("replay_diagnosis", operation_id=operation.operation_id, policy=patience(20))
    every = agent.call(
        "replay_diagnosis",
        operation_id=operation.operation_id,
        policy=patience(3),
        total_epochs_planned=100,
        every_epoch=True,
    )

    assert (impatient["stop_epoch"], impatient["restore_epoch"], impatient["epochs_saved"]) == (4, 1, 25)
    assert impatient["stop_reason"] and impatient["policy"]["patience"] == 3
    assert [step["epoch"] for step in impatient["changes"]] == [0, 4]
    assert impatient["changes"][1]["action"] == "stop_and_restore_best"
    assert "plateau" in impatient["changes"][1]["rules"]
    assert "steps" not in impatient  # every epoch only when asked
    assert (patient["stop_epoch"], patient["epochs_saved"]) == (None, None)
    assert [step["action"] for step in patient["changes"]] == ["continue"]
    assert len(every["steps"]) == every["epochs_replayed"] == 15
    assert (every["stop_epoch"], every["epochs_saved"]) == (4, 95)
    assert agent.call("get_operation_status", operation_id=operation.operation_id) == before  # nothing changed

    # the default projection rule, and get_training_metrics taking a stop rule of its own
    projected = agent.call("replay_diagnosis", operation_id=operation.operation_id)
    assert projected["policy"]["stop_rule"] == "projection"
    assert projected["restore_epoch"] == 1
    assert "projected_improvement" in projected["changes"][-1]["rules"]
    metrics = agent.call("get_training_metrics", operation_id=operation.operation_id)["metrics"]
    assert metrics["projection"]["evidence"]["epochs_left"] == 15
    keras = agent.call("get_training_metrics", operation_id=operation.operation_id, stop_rule="patience", patience=20)
    assert keras["metrics"]["projection"] is None
    assert keras["metrics"]["recommendation"]["action"] == "continue"
    # every policy setting is a parameter of its own (noise_allowance is one the tool lacked); null keeps the default
    settings = {"noise_allowance": 2, "window": 5, "check_finite": False, "patience": None}
    tuned = agent.call("get_training_metrics", operation_id=operation.operation_id, **settings)["metrics"]
    assert tuned["trend"]["window"] == 5
    assert tuned["projection"]["parameters"]["noise_allowance"] == 2

    # a monitor the run never reported is refused, naming the metrics it did report
    for tool, arguments in (
        ("get_training_metrics", {"monitor": "val_los"}),
        ("replay_diagnosis", {"policy": {"monitor": "val_los"}}),
    ):
        refused = agent.error(tool, operation_id=operation.operation_id, **arguments)
        assert "monitor 'val_los' is not a metric this run has reported; it has reported: val_loss." in refused

    assert "list_operations" in agent.error("replay_diagnosis", operation_id=UNKNOWN_ID)
    bad = agent.error("replay_diagnosis", operation_id=operation.operation_id, policy={"patience": 0})
    assert "patience" in bad and "greater than or equal to 1" in bad
    unknown = agent.error("replay_diagnosis", operation_id=operation.operation_id, policy={"patiense": 3})
    assert "patiense" in unknown and "Extra inputs are not permitted" in unknown


# -- errors --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("get_operation_status", {"operation_id": UNKNOWN_ID}, "Call list_operations"),
        ("get_training_metrics", {"operation_id": UNKNOWN_ID, "since_epoch": 3}, "Call list_operations"),
        ("cancel_operation", {"operation_id": UNKNOWN_ID, "reason": "test"}, "Call list_operations"),
        ("get_operation_results", {"operation_id": UNKNOWN_ID}, "Call list_operations"),
        ("cancel_operation", {"operation_id": UNKNOWN_ID, "reason": "   "}, "cancelling needs a reason"),
        ("cancel_operation", {"operation_id": UNKNOWN_ID}, "invalid arguments: reason: Field required"),
        ("start_training", {"strategy": "no_such"}, "available: mean_reversion"),
        ("start_training", {"strategy": "no/such/strategy.yaml"}, "does not exist"),
        ("start_training", {"config": {"epochs": 0}}, "greater than or equal to 1"),
        ("start_training", {"config": {"epocs": 5}}, "Extra inputs are not permitted"),
        ("start_training", {"symbol": "AAPL"}, "no market data for AAPL_1h"),
        ("start_training", {"resources": {"gpus": 99}}, "resources.gpus: 99 asked, but this machine has"),
        ("start_training", {"resources": {"tpus": 1}}, "Extra inputs are not permitted"),
        ("get_training_metrics", {"operation_id": UNKNOWN_ID, "patience": 0}, "invalid arguments: patience"),
        ("compare_runs", {"operation_ids": [UNKNOWN_ID]}, "at least 2"),
        (
            "predict",
            {"model_name": "nope", "symbol": "EURUSD", "timeframe": "1h", "test_date": "2018-01-10"},
            "list_models",
        ),
        (
            "predict",
            {
                "model_name": "nope",
                "symbol": "EURUSD",
                "timeframe": "1h",
                "test_date": "2018-01-10",
                "end_date": "2018-01-11",
            },
            "either test_date",
        ),
        ("save_model", {"operation_id": UNKNOWN_ID, "model_name": "../evil"}, "model name '../evil' is invalid"),
        ("list_operations", {"limit": 0}, "greater than or equal to 1"),
        ("no_such_tool", {}, "Unknown tool"),
        # an argument a tool does not take is refused, not dropped (the call would run as if it was not sent)
        ("list_operations", {"tags": ["baseline"]}, "tags: not an argument of this tool, which takes active_only,"),
        ("start_training", {"epochs": 3}, "epochs: not an argument of this tool, which takes config, device,"),
        ("get_training_metrics", {"operation_id": UNKNOWN_ID, "policy": {"patience": 1}}, "policy: not an argument"),
        # NUL: PostgreSQL holds none in text, and SQLite's LIKE stops at one (a search for "\0x" found every run)
        ("list_operations", {"q": "\u0000zz"}, "q contains a NUL character"),
        ("get_operation_status", {"operation_id": "op\u0000x"}, "operation_id contains a NUL character"),
        ("start_training", {"symbol": "EUR\u0000"}, "symbol contains a NUL character"),
        ("start_training", {"tags": ["a", "b\u0000"]}, "tags[1] contains a NUL character"),
        ("get_training_metrics", {"operation_id": UNKNOWN_ID, "points": 5}, "greater than or equal to 10"),
        ("get_training_metrics", {"operation_id": UNKNOWN_ID, "from_epoch": -1}, "greater than or equal to 0"),
        # an empty strategy or symbol is no request for the defaults (it trained mean_reversion on its own symbol)
        ("start_training", {"strategy": ""}, "strategy: String should have at least 1 character"),
        ("start_training", {"symbol": ""}, "symbol: String should have at least 1 character"),
    ],
)
def test_errors_are_tool_errors_that_say_what_to_do(
    agent: Agent, tool: str, arguments: dict[str, Any], message: str
) -> None:
    error = agent.error(tool, **arguments)
    assert message in error
    assert "pydantic.dev" not in error and "input_value" not in error  # worded for an agent, not pydantic's dump
    assert agent.call("health")["status"] == "ok"  # the server keeps answering


# -- read-only mode and other transports ---------------------------------------------------------------------------


def test_read_only_mode_leaves_out_every_tool_that_starts_stops_or_saves(home: Home) -> None:
    with stdio_agent(home, "--read-only") as watcher:
        assert (
            set(watcher.tools())
            == set(READ_TOOLS)
            == EVERY_TOOL - {"start_training", "cancel_operation", "save_model", "label_operation", "delete_operation"}
        )
        assert watcher.call("health")["read_only"] is True
        assert "Unknown tool" in watcher.error("cancel_operation", operation_id=UNKNOWN_ID, reason="x")
        assert watcher.call("list_operations")["total"] >= 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def http_server(home: Home, *args: str, env: dict[str, str] | None = None, log: str = "mcp-http.log") -> Iterator[str]:
    """``python -m trainops.cli mcp --transport http ARGS`` on a free port, until the block ends: yields its URL.

    TRAINOPS_API_TOKEN is dropped from the inherited environment (a developer's own would make the endpoint ask for
    it): a test that wants a token passes it in ``env`` or ``args``.
    """
    port = free_port()
    inherited = {name: value for name, value in os.environ.items() if name != "TRAINOPS_API_TOKEN"}
    log_path = home.logs / log
    with log_path.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "trainops.cli", "mcp", "--transport", "http", "--port", str(port), *args],
            env={**inherited, **home.env, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/mcp"
    try:

        def answers() -> bool:
            assert server.poll() is None, log_path.read_text()
            try:
                httpx.get(url, timeout=1)
            except httpx.TransportError:
                return False
            return True

        wait_for(answers, "the HTTP endpoint", timeout=60)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_streamable_http_transport_with_read_only_from_the_environment(home: Home) -> None:
    with http_server(home, env={"TRAINOPS_MCP_READ_ONLY": "1"}) as url:

        async def list_tools() -> set[str]:
            async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                return {tool.name for tool in (await session.list_tools()).tools}

        with start_blocking_portal() as portal:
            assert portal.call(list_tools) == set(READ_TOOLS)
    assert "on http://127.0.0.1" in (home.logs / "mcp-http.log").read_text()


def test_health_says_when_the_trainops_server_refuses_this_servers_token(home: Home) -> None:
    """The health route is open to all: it said "ok" while every other tool failed with a 401."""
    token = "mcp-health-token-0123456789"
    with LiveServer(home.settings.model_copy(update={"api_token": token})) as server:
        with stdio_agent(home, "--url", server.url) as refused:
            health = refused.call("health")
            failing = refused.error("list_operations")
        with stdio_agent(home, "--url", server.url, "--token", token) as admitted:
            fine = admitted.call("health")

    assert health["status"] == "unauthorized" and health["version"] == trainops.__version__
    assert health["error"].startswith("missing or wrong bearer token")
    assert "TRAINOPS_API_TOKEN in its environment, or `trainops mcp --token`" in health["error"]
    assert "bearer token" in failing
    assert fine["status"] == "ok" and "error" not in fine


def test_http_refuses_addresses_beyond_this_machine() -> None:
    result = CliRunner().invoke(app, ["mcp", "--transport", "http", "--host", "0.0.0.0"], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --host '0.0.0.0': the MCP HTTP endpoint speaks plain HTTP")
