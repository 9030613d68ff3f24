"""Request bodies hold the JSON types the OpenAPI document gives them: pydantic's lax mode would read ``"1_000"`` or
``true`` as a number, ``1700000000`` as a time and ``"yes"`` as true. A 422 names the field and says what to send,
and nothing is stored. Metrics still take text (``"NaN"``, plain decimals) and query strings are text by nature:
they read plain decimal notation only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_protocol_api import create, error_of


@pytest.mark.parametrize(
    ("path", "body", "refused"),
    [
        pytest.param("/operations", {"total_epochs": "1000"}, "total_epochs: '1000' is text", id="create-text"),
        pytest.param("/operations", {"total_epochs": True}, "total_epochs: True is a boolean", id="create-bool"),
        pytest.param("/training/start", {"config": {"epochs": "1_000"}}, "epochs: '1_000' is text", id="epochs"),
        pytest.param(
            "/training/start", {"config": {"learning_rate": "1e-3"}}, "learning_rate: '1e-3' is text", id="lr"
        ),
        pytest.param(
            "/training/start", {"config": {"hidden_layers": [64, "32"]}}, "hidden_layers: '32' is text", id="layers"
        ),
        pytest.param(
            "/training/start",
            {"config": {"early_stopping": {"patience": False}}},
            "patience: False is a boolean",
            id="patience-bool",
        ),
        pytest.param("/training/start", {"resources": {"gpus": "1"}}, "gpus: '1' is text", id="gpus"),
        pytest.param("/training/start", {"start_date": 1700000000}, "start_date: 1700000000 is a number", id="date"),
        pytest.param(
            "/models/save",
            {"task_id": "op_x", "model_name": "m", "overwrite": "yes"},
            "overwrite: 'yes' is a str; send true or false",
            id="boolean",
        ),
    ],
)
def test_request_fields_take_the_json_type_the_document_gives_them(
    api: httpx.Client, path: str, body: dict[str, Any], refused: str
) -> None:
    error = error_of(api.post(path, json=body), 422)

    assert refused in error["message"], error["message"]
    assert api.get("/operations").json()["data"]["total"] == 0  # nothing was created


@pytest.mark.parametrize(
    ("path", "body", "refused"),
    [
        pytest.param("/diagnose", {"total_epochs_planned": "100"}, "total_epochs_planned: '100' is text", id="text"),
        pytest.param("/diagnose", {"policy": {"noise_allowance": False}}, "noise_allowance: False is a", id="bool"),
        pytest.param("/progress", {"percentage": 5, "updated_at": 0}, "updated_at: 0 is a number", id="time"),
        pytest.param("/metrics", {"epoch": True, "val_loss": 0.5}, "epoch: True is a boolean", id="epoch-bool"),
        pytest.param("/steps", {"step": "3"}, "step: '3' is text", id="step-text"),
        # counts within those of a stored epoch and step (2**53: a JavaScript reader reads them exactly)
        pytest.param(
            "/progress", {"epoch": 10**29}, "epoch: Input should be less than or equal to 10000000", id="epoch"
        ),
        pytest.param(
            "/progress", {"batch": 2**63}, "batch: Input should be less than or equal to 9007199254740992", id="batch"
        ),
    ],
)
def test_fields_of_an_operation_s_writes_take_their_json_type(
    api: httpx.Client, path: str, body: dict[str, Any], refused: str
) -> None:
    operation_id = create(api)

    error = error_of(api.post(f"/operations/{operation_id}{path}", json=body), 422)

    assert refused in error["message"], error["message"]
    assert api.get(f"/operations/{operation_id}").json()["data"]["status"] == "pending"  # nothing was written


def test_an_integral_float_is_an_integer_as_json_schema_counts_it(api: httpx.Client) -> None:
    created = api.post("/operations", json={"operation_type": "training", "total_epochs": 1000.0})
    operation_id = created.json()["data"]["operation_id"]
    fraction = api.post("/operations", json={"operation_type": "training", "total_epochs": 10.5})

    written = api.post(f"/operations/{operation_id}/metrics", json={"epoch": 2.0, "val_loss": 0.5})
    stored = api.get(f"/operations/{operation_id}/metrics").json()["data"]["metrics"]["epochs"]

    assert created.status_code == 201, created.text
    assert created.json()["data"]["total_epochs"] == 1000
    assert written.status_code == 200, written.text
    assert [epoch["epoch"] for epoch in stored] == [2]
    assert "valid integer" in error_of(fraction, 422)["message"]


@pytest.mark.parametrize("path", ["/metrics", "/steps"])
@pytest.mark.parametrize("number", ["1e400", "-2.5E+309", "1" * 400 + ".0"])
def test_a_number_past_the_largest_float_is_refused_not_stored_as_infinity(
    api: httpx.Client, path: str, number: str
) -> None:
    operation_id = create(api)
    key = "epoch" if path == "/metrics" else "step"
    kept = api.post(f"/operations/{operation_id}{path}", json={key: 0, "val_loss": 0.5})
    assert kept.status_code == 200, kept.text

    body = f'{{"{key}": 1, "val_loss": {number}}}'
    sent = api.post(f"/operations/{operation_id}{path}", content=body, headers={"Content-Type": "application/json"})

    assert "is past the largest 64-bit float (about 1.8e308)" in error_of(sent, 422)["message"]
    infinite = api.post(f"/operations/{operation_id}{path}", json={key: 1, "val_loss": "Infinity"})
    assert infinite.status_code == 200, infinite.text  # infinity said in words is a value like any other
    small = api.post(f"/operations/{operation_id}{path}", json={key: 2, "val_loss": 1e-300, "lr": 1e300})
    assert small.status_code == 200, small.text


@pytest.mark.parametrize(
    ("path", "parameter", "value"),
    [
        pytest.param("/operations", "limit", "1_0", id="operations-limit"),
        pytest.param("/operations", "offset", "1_0", id="operations-offset"),
        pytest.param("/models", "limit", "1_0", id="models-limit"),
    ],
)
def test_number_query_parameters_must_be_plain_decimal(
    api: httpx.Client, path: str, parameter: str, value: str
) -> None:
    error = error_of(api.get(path, params={parameter: value}), 422)

    assert f"query.{parameter}: {value!r} is not a number in plain decimal notation" in error["message"]
    assert api.get(path, params={parameter: "10"}).status_code == 200


def test_number_query_parameters_of_a_metrics_read_must_be_plain_decimal(api: httpx.Client) -> None:
    operation_id = create(api)

    refused = api.get(f"/operations/{operation_id}/metrics", params={"since_epoch": "1_0"})

    assert "query.since_epoch: '1_0' is not a number" in error_of(refused, 422)["message"]
    assert api.get(f"/operations/{operation_id}/metrics", params={"since_epoch": "10"}).status_code == 200


def test_a_query_parameter_that_takes_one_value_is_sent_once(api: httpx.Client) -> None:
    for name in ("first", "second"):
        assert api.post("/operations", json={"operation_type": "training", "name": name}).status_code == 201

    twice = api.get("/operations", params=[("name", "first"), ("name", "second")])
    limits = api.get("/operations", params=[("limit", "5"), ("limit", "1")])

    assert "query.name: sent 2 times; it takes one value" in error_of(twice, 422)["message"]
    assert "query.limit: sent 2 times" in error_of(limits, 422)["message"]
    # a list parameter still takes each of its values: runs having both tags
    assert api.get("/operations", params=[("tag", "a"), ("tag", "b")]).status_code == 200
    once = api.get("/operations", params={"name": "first"}).json()["data"]["items"]
    assert [run["name"] for run in once] == ["first"]
