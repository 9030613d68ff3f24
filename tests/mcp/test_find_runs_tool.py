"""An agent finds runs again over MCP: list_operations filters by tag, name, text and strategy, sorts by a metric's
best value, pages with a cursor and shows each run's name, tags and best value; start_training names and tags the
run it starts (a bad tag is a tool error saying what a tag may hold)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import trainops
from tests.mcp.test_server import Agent, Home, stdio_agent
from tests.mcp.test_server import home as home  # the fixture, shared with the server's tests


@pytest.fixture(scope="module")
def agent(home: Home) -> Iterator[Agent]:
    with stdio_agent(home) as connected:
        yield connected


def test_list_operations_finds_sorts_and_pages(agent: Agent, home: Home) -> None:
    ids = {}
    with trainops.connect(settings=home.settings) as ops:
        for role, losses, tags in (("steady", [0.9, 0.3], ["sweep-9", "keep"]), ("noisy", [0.8, 0.6], ["sweep-9"])):
            with ops.run(name=f"{role} run", tags=tags, metadata={"strategy": f"s-{role}"}, total_epochs=2) as run:
                for epoch, loss in enumerate(losses):
                    run.log(epoch, val_loss=loss)
            ids[role] = run.operation_id

    found = agent.call("list_operations", tag=["sweep-9"], sort="best:val_loss")
    assert [line["operation_id"] for line in found["operations"]] == [ids["steady"], ids["noisy"]]
    first = found["operations"][0]
    assert (first["name"], first["tags"]) == ("steady run", ["sweep-9", "keep"])
    assert first["best"]["metric"] == "val_loss" and first["best"]["value"] == pytest.approx(0.3)
    assert found["next_cursor"] is None and found["total"] == 2

    assert [line["operation_id"] for line in agent.call("list_operations", tag=["keep", "sweep-9"])["operations"]] == [
        ids["steady"]
    ]
    assert agent.call("list_operations", q="NOISY")["operations"][0]["operation_id"] == ids["noisy"]
    assert agent.call("list_operations", strategy="s-steady")["total"] == 1

    page = agent.call("list_operations", tag=["sweep-9"], limit=1)
    assert page["next_cursor"]
    rest = agent.call("list_operations", tag=["sweep-9"], limit=1, cursor=page["next_cursor"])
    assert [line["operation_id"] for line in rest["operations"]] == [ids["steady"]]  # newest first: noisy, then this

    assert "best:<metric>" in agent.error("list_operations", sort="lowest")
    assert "other filters" in agent.error("list_operations", cursor=page["next_cursor"])


def test_start_training_takes_a_name_tags_and_notes(agent: Agent) -> None:
    properties = agent.tools()["start_training"].input_schema["properties"]
    assert {"name", "tags", "notes"} <= properties.keys()
    message = agent.error("start_training", strategy="mean_reversion", tags=["not valid"])
    assert "tag" in message and "letters, digits" in message


def test_label_operation_names_tags_and_annotates_a_run(agent: Agent, home: Home) -> None:
    with trainops.connect(settings=home.settings) as ops:
        operation_id = ops.create_operation(tags=["draft"]).operation_id
    labelled = agent.call(
        "label_operation", operation_id=operation_id, name="sweep winner", add_tags=["keep"], remove_tags=["draft"]
    )
    assert (labelled["operation"]["name"], labelled["operation"]["tags"]) == ("sweep winner", ["keep"])
    noted = agent.call("label_operation", operation_id=operation_id, notes="lowest val_loss of sweep-9")
    assert noted["notes"] == "lowest val_loss of sweep-9" and noted["operation"]["name"] == "sweep winner"
    cleared = agent.call("label_operation", operation_id=operation_id, name="", notes="")
    assert cleared["operation"]["name"] is None and cleared["notes"] is None
    assert "tag" in agent.error("label_operation", operation_id=operation_id, add_tags=["two words"])
    nothing = agent.error("label_operation", operation_id=operation_id)
    assert "nothing to change: give name, add_tags, remove_tags or notes" in nothing  # the tool's own arguments
    assert agent.call("list_operations", tag=["keep"])["operations"][0]["operation_id"] == operation_id
