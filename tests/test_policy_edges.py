"""The diagnosis policy is one model at every edge: the REST query of ``GET /operations/{id}/metrics``, the MCP tool
``get_training_metrics`` and the options of ``trainops ops metrics`` / ``ops diagnose`` are generated from
:class:`MonitorPolicy`'s fields, so each exposes exactly those fields, with the model's bounds, defaults and
descriptions. A field added to the model reaches every edge, or these tests fail."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import typer
from mcp.client import Client

from trainops.api.app import create_app
from trainops.cli.main import app as cli
from trainops.core.policy import MonitorPolicy
from trainops.mcp.server import create_server
from trainops.settings import Settings

FIELDS = set(MonitorPolicy.model_fields)
SCHEMAS: dict[str, Any] = MonitorPolicy.model_json_schema()["properties"]


def test_every_field_has_a_description() -> None:
    for name, field in MonitorPolicy.model_fields.items():
        assert field.description and field.description.endswith("."), name


def test_rest_query_is_the_policy(settings: Settings) -> None:
    operation = create_app(settings).openapi()["paths"]["/api/v1/operations/{operation_id}/metrics"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}

    # besides the policy: the epochs' cursor and range, display thinning, the CSV export (format) and the step
    # series' (series=steps, since_step, metric)
    besides = {"operation_id", "since_epoch", "from_epoch", "to_epoch", "points", "series", "since_step", "metric"}
    assert set(parameters) - besides - {"format"} == FIELDS
    for name in FIELDS:
        parameter = parameters[name]
        assert (parameter["in"], parameter["required"]) == ("query", False), name
        assert parameter["description"] == MonitorPolicy.model_fields[name].description, name
        # type, bounds and default as the model has them (OpenAPI leaves out a null default)
        assert parameter["schema"] == {key: value for key, value in SCHEMAS[name].items() if value is not None}, name


def test_mcp_tool_is_the_policy() -> None:
    def no_facade() -> Any:
        raise AssertionError("listing tools opens nothing")

    async def input_schemas() -> dict[str, Any]:
        async with Client(create_server(no_facade)) as client:
            return {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}

    schemas = anyio.run(input_schemas)
    metrics = schemas["get_training_metrics"]
    assert set(metrics["properties"]) - {"operation_id", "since_epoch", "from_epoch", "to_epoch", "points"} == FIELDS
    assert metrics["required"] == ["operation_id"]
    for name in FIELDS:
        # left out, the monitor is not val_loss for a run that recorded its task: no default is claimed
        expected = SCHEMAS[name] | {"default": None} if name == "monitor" else SCHEMAS[name]
        assert metrics["properties"][name] == expected, name
    replay = schemas["replay_diagnosis"]
    assert set(replay["$defs"]["MonitorPolicy"]["properties"]) == FIELDS


def command(*path: str) -> Any:
    group: Any = typer.main.get_command(cli)
    for name in path:
        group = group.commands[name]
    return group


@pytest.mark.parametrize(
    ("name", "own"),
    [
        ("metrics", {"operation_id", "since_epoch", "url", "token", "json"}),
        ("diagnose", {"operation_id", "planned", "every_epoch", "url", "token", "json"}),
    ],
)
def test_cli_options_are_the_policy(name: str, own: set[str]) -> None:
    options = {param.name: param for param in command("ops", name).params}

    assert set(options) - own - {"policy_settings"} == FIELDS
    assert options["policy_settings"].opts == ["--set"]
    for field in FIELDS:
        option = options[field]
        flag = "--" + field.replace("_", "-")
        assert option.opts == [flag], field
        if MonitorPolicy.model_fields[field].annotation is bool:
            assert option.secondary_opts == ["--no-" + field.replace("_", "-")], field
        assert option.default is None, field  # left out: the model's default, and the field stays unset
        assert option.help.startswith(MonitorPolicy.model_fields[field].description), field
