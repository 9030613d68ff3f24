"""An agent exports a run's history (CSV or JSON text, bounded in size) and deletes an ended run over MCP; a
running run is refused with the REST 409's message, and read-only servers have no delete_operation."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Literal

import pytest
from mcp.server.mcpserver.exceptions import ToolError

import trainops
from tests.mcp.test_server import UNKNOWN_ID, Agent, Home, stdio_agent
from tests.mcp.test_server import home as home  # the fixture, shared with the server's tests
from trainops.client import LocalTrainOps, TrainOps
from trainops.core.epoch import EpochRecord
from trainops.mcp import server as mcp_server
from trainops.mcp.server import TrainOpsTools, _Facade
from trainops.service.bootstrap import open_service
from trainops.settings import Settings


@pytest.fixture(scope="module")
def agent(home: Home) -> Iterator[Agent]:
    with stdio_agent(home) as connected:
        yield connected


def finished_run(home: Home, losses: list[float]) -> str:
    with trainops.connect(settings=home.settings) as ops, ops.run(name="to export", total_epochs=len(losses)) as run:
        for epoch, loss in enumerate(losses):
            run.log(epoch, train_loss=loss, val_loss=loss + 0.1, metrics={"iou": 0.5})
    return run.operation_id


def test_export_metrics_gives_the_history_as_csv_or_json(agent: Agent, home: Home) -> None:
    operation_id = finished_run(home, [0.9, 0.7, float("nan")])

    exported = agent.call("export_metrics", operation_id=operation_id)
    assert (exported["format"], exported["epochs"]) == ("csv", 3)
    assert exported["chars"] == len(exported["content"])
    rows = list(csv.DictReader(io.StringIO(exported["content"])))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert (rows[1]["train_loss"], rows[2]["train_loss"], rows[0]["iou"]) == ("0.7", "nan", "0.5")

    later = agent.call("export_metrics", operation_id=operation_id, since_epoch=0)
    assert [row["epoch"] for row in csv.DictReader(io.StringIO(later["content"]))] == ["1", "2"]
    assert later["epochs"] == 2

    document = agent.call("export_metrics", operation_id=operation_id, format="json")
    assert document["epochs"] == 3
    assert [record["epoch"] for record in json.loads(document["content"])["metrics"]["epochs"]] == [0, 1, 2]

    assert "list_operations" in agent.error("export_metrics", operation_id=UNKNOWN_ID)
    assert "format" in agent.error("export_metrics", operation_id=operation_id, format="xlsx")


def test_delete_operation_removes_an_ended_run_and_refuses_a_running_one(agent: Agent, home: Home) -> None:
    operation_id = finished_run(home, [0.9, 0.8])
    with trainops.connect(settings=home.settings) as ops:
        running = ops.create_operation(total_epochs=5).operation_id
        ops.start_operation(running)

    refused = agent.error("delete_operation", operation_id=running)
    assert f"operation {running} is running: cancel it first" in refused
    assert "cancel_operation" in refused
    assert agent.call("get_operation_status", operation_id=running)["operation"]["status"] == "running"

    deleted = agent.call("delete_operation", operation_id=operation_id)
    assert (deleted["operation_id"], deleted["deleted"], deleted["status"], deleted["epochs"]) == (
        operation_id,
        True,
        "completed",
        2,
    )
    assert "list_operations" in agent.error("get_operation_status", operation_id=operation_id)
    assert "list_operations" in agent.error("delete_operation", operation_id=operation_id)  # a second delete
    tools = agent.tools()
    assert tools["delete_operation"].annotations.destructive_hint is True
    assert tools["export_metrics"].annotations.read_only_hint is True


def test_export_metrics_past_its_limit_says_how_to_take_the_history(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalTrainOps(open_service(settings)) as ops:
        local: TrainOps = ops
        operation_id = local.create_operation(total_epochs=200).operation_id
        local.add_epochs(operation_id, [EpochRecord(epoch=e, val_loss=1 / (e + 1)) for e in range(200)])
        tools = TrainOpsTools(_Facade(lambda: local), read_only=True)
        whole = tools.export_metrics(operation_id)
        assert whole["epochs"] == 200

        # the limit is on the answer as it travels: its JSON, and the text copy sent beside it
        limit = mcp_server.wire_chars(whole) - 1
        assert limit > 2 * whole["chars"]
        monkeypatch.setattr(mcp_server, "ANSWER_MAX_CHARS", limit)
        with pytest.raises(ToolError) as refused:
            tools.export_metrics(operation_id)
        message = str(refused.value)
        assert f"the csv export of {operation_id} (200 epochs, {whole['chars']:,} characters)" in message
        assert f"over its limit of {limit:,}: take it in parts of at most about " in message
        assert "with from_epoch and to_epoch" in message
        first = tools.export_metrics(operation_id, to_epoch=99)
        rest = tools.export_metrics(operation_id, from_epoch=100)
        assert (first["epochs"], rest["epochs"]) == (100, 100)
        assert first["content"] + rest["content"].partition("\n")[2] == whole["content"]  # the header once
        assert tools.export_metrics(operation_id, since_epoch=100)["epochs"] == 99


@pytest.mark.parametrize("export_format", ["csv", "json"])
def test_the_parts_an_export_past_its_limit_advises_each_fit(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, export_format: Literal["csv", "json"]
) -> None:
    """The advice scaled the whole export linearly, but a JSON export carries the diagnosis whatever its epochs:
    parts of the advised size were still refused."""
    with LocalTrainOps(open_service(settings)) as ops:
        local: TrainOps = ops
        operation_id = local.create_operation(total_epochs=600).operation_id
        local.add_epochs(
            operation_id,
            [
                EpochRecord(epoch=e, val_loss=1 / (e + 1), train_loss=1.1 / (e + 1), metrics={"f1": e / 600})
                for e in range(600)
            ],
        )
        tools = TrainOpsTools(_Facade(lambda: local), read_only=True)
        whole = tools.export_metrics(operation_id, format=export_format)
        monkeypatch.setattr(mcp_server, "ANSWER_MAX_CHARS", mcp_server.wire_chars(whole) // 3)

        with pytest.raises(ToolError) as refused:
            tools.export_metrics(operation_id, format=export_format)
        found = re.search(r"in parts of at most about ([\d,]+) epochs", str(refused.value))
        assert found is not None, str(refused.value)
        part = int(found.group(1).replace(",", ""))

        taken = 0
        for first in range(0, 600, part):
            taken += tools.export_metrics(
                operation_id, format=export_format, from_epoch=first, to_epoch=first + part - 1
            )["epochs"]
        assert taken == 600 and part >= 600 // 5  # each part fits, and they are not needlessly small


def test_text_no_database_can_hold_is_a_tool_error_naming_the_argument(settings: Settings) -> None:
    """An unpaired surrogate failed in-process as an error with no message (the database driver's encoder)."""
    with LocalTrainOps(open_service(settings)) as ops:
        local: TrainOps = ops
        tools = TrainOpsTools(_Facade(lambda: local), read_only=False)
        for call, where in (
            (lambda: tools.get_operation_status("op_\ud800"), "operation_id contains an unpaired UTF-16 surrogate"),
            (lambda: tools.list_operations(q="a\ud800"), "q contains an unpaired UTF-16 surrogate"),
            (lambda: tools.list_operations(q="a\x00"), "q contains a NUL character"),
        ):
            with pytest.raises(ToolError) as refused:
                call()
            assert str(refused.value).startswith(where)
