"""The per-step series over REST: POST/GET /operations/{id}/steps, GET .../metrics?series=steps, bad input."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.test_operations_api import create, post_raw, refuse_constant


def steps_of(api: httpx.Client, operation_id: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"/operations/{operation_id}/steps", params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = json.loads(response.text, parse_constant=refuse_constant)["data"]
    return data


def test_steps_are_posted_one_or_many_and_read_back_oldest_first(api: httpx.Client) -> None:
    operation_id = create(api)
    one = api.post(f"/operations/{operation_id}/steps", json={"step": 20, "epoch": 0, "loss": 0.8})
    many = api.post(
        f"/operations/{operation_id}/steps",
        json={"steps": [{"step": 0, "loss": 1.0, "lr": 0.1}, {"step": 10, "metrics": {"loss": 0.9}}]},
    )

    assert one.status_code == 200 and many.status_code == 200
    assert one.json()["data"]["accepted"] == 1 and many.json()["data"]["accepted"] == 2
    assert many.json()["cancel_requested"] is False
    series = steps_of(api, operation_id)
    assert series["operation_id"] == operation_id
    assert series["max_points"] == 1000 and series["thinned"] is False
    assert [(p["step"], p["epoch"], p["metrics"]) for p in series["points"]] == [
        (0, None, {"loss": 1.0, "lr": 0.1}),
        (10, None, {"loss": 0.9}),
        (20, 0, {"loss": 0.8}),
    ]
    assert [p["step"] for p in steps_of(api, operation_id, since_step=0)["points"]] == [10, 20]
    assert [p["metrics"] for p in steps_of(api, operation_id, metric="lr")["points"]] == [{"lr": 0.1}]
    assert api.get(f"/operations/{operation_id}").json()["data"]["status"] == "running"


def test_metrics_series_steps_answers_the_step_series(api: httpx.Client) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/steps", json={"steps": [{"step": s, "loss": 1 / (s + 1)} for s in range(5)]})

    response = api.get(f"/operations/{operation_id}/metrics", params={"series": "steps", "since_step": 2})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == steps_of(api, operation_id, since_step=2)
    assert [p["step"] for p in response.json()["data"]["points"]] == [3, 4]


def test_the_default_series_is_the_epochs_answer_unchanged(api: httpx.Client) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/metrics", json={"epochs": [{"epoch": 0, "val_loss": 1.0}, {"epoch": 1}]})
    api.post(f"/operations/{operation_id}/steps", json={"step": 3, "loss": 0.5})

    default = api.get(f"/operations/{operation_id}/metrics", params={"since_epoch": 0})
    explicit = api.get(f"/operations/{operation_id}/metrics", params={"since_epoch": 0, "series": "epochs"})

    assert default.status_code == 200
    assert default.content == explicit.content
    assert default.headers["etag"] == explicit.headers["etag"]
    assert [epoch["epoch"] for epoch in default.json()["data"]["metrics"]["epochs"]] == [1]


def test_the_epoch_carries_the_global_step(api: httpx.Client) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, "step": 1200, "val_loss": 0.5})

    [epoch] = api.get(f"/operations/{operation_id}/metrics").json()["data"]["metrics"]["epochs"]
    assert epoch["step"] == 1200 and epoch["metrics"] == {}
    refused = api.post(f"/operations/{operation_id}/metrics", json={"epoch": 1, "metrics": {"step": 5}})
    assert refused.status_code == 422 and "'step' is a standard field" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"step": 1, "loss": NaN}', "NaN"),
        ('{"step": 1, "loss": -Infinity}', "-Infinity"),
        ('{"step": 1, "loss": "Infinity"}', "Infinity"),
    ],
)
def test_non_finite_step_metrics_are_kept(api: httpx.Client, raw: str, expected: str) -> None:
    operation_id = create(api)
    assert post_raw(api, f"/operations/{operation_id}/steps", raw).status_code == 200
    assert steps_of(api, operation_id)["points"][0]["metrics"] == {"loss": expected}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"step": -1, "loss": 1.0}, "step: Input should be greater than or equal to 0"),
        ({"step": 1.5}, "step: Input should be a valid integer"),
        ({"loss": 1.0}, "step: Field required"),
        ({"step": 2, "epoch": -1}, "epoch"),
        ({"step": 2, "loss": "low"}, "loss"),
        ({"step": 2, "bad name!": 1.0}, "bad name!"),
        ({"steps": [{"step": 2}, {"step": "x"}]}, "steps.1.step"),
        ([1, 2], "step point"),
    ],
)
def test_bad_steps_are_refused_and_nothing_is_stored(api: httpx.Client, payload: object, message: str) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/steps", json={"step": 0, "loss": 1.0})

    response = api.post(f"/operations/{operation_id}/steps", json=payload)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert message in error["message"]
    assert [p["step"] for p in steps_of(api, operation_id)["points"]] == [0]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"series": "batches"}, "series: Input should be 'epochs' or 'steps'"),
        ({"series": "steps", "since_epoch": 3}, "since_epoch apply to series=epochs"),
        ({"series": "steps", "patience": 3}, "patience apply to series=epochs"),
        ({"since_step": 3}, "add series=steps"),
        ({"metric": "loss"}, "add series=steps"),
        ({"series": "steps", "metric": "acc"}, "never reported 'acc'; they report loss"),
    ],
)
def test_bad_metrics_queries_name_the_fix(api: httpx.Client, params: dict[str, Any], message: str) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/steps", json={"step": 0, "loss": 1.0})

    response = api.get(f"/operations/{operation_id}/metrics", params=params)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"
    assert message in response.json()["error"]["message"]


def test_ended_and_unknown_operations(api: httpx.Client) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/steps", json={"step": 0, "loss": 1.0})
    api.post(f"/operations/{operation_id}/complete", json={"status": "completed"})

    refused = api.post(f"/operations/{operation_id}/steps", json={"step": 1, "loss": 1.0})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"
    assert [p["step"] for p in steps_of(api, operation_id)["points"]] == [0]  # still readable, unchanged

    unknown = "op_training_20260101_000000_deadbeef"
    assert api.get(f"/operations/{unknown}/steps").status_code == 404
    assert api.get(f"/operations/{unknown}/metrics", params={"series": "steps"}).status_code == 404
    assert api.post(f"/operations/{unknown}/steps", json={"step": 0}).status_code == 404


def test_a_cancel_is_announced_in_the_answer_to_a_step_write(api: httpx.Client) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/steps", json={"step": 0})
    api.request("DELETE", f"/operations/{operation_id}", json={"reason": "diverging", "requested_by": "agent"})

    answer = api.post(f"/operations/{operation_id}/steps", json={"step": 1}).json()
    assert answer["cancel_requested"] is True and answer["cancel_reason"] == "diverging"
    assert answer["data"]["cancel_requested"] is True


def test_the_openapi_document_describes_the_steps_and_every_reference_resolves(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    paths = schema["paths"]

    assert {"get", "post"} <= paths["/api/v1/operations/{operation_id}/steps"].keys()
    series = [
        p for p in paths["/api/v1/operations/{operation_id}/metrics"]["get"]["parameters"] if p["name"] == "series"
    ]
    assert series and series[0]["schema"]["enum"] == ["epochs", "steps"]
    references: set[str] = set()

    def collect(node: object) -> None:
        if isinstance(node, dict):
            references.update(value.rsplit("/", 1)[-1] for key, value in node.items() if key == "$ref")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(schema)
    assert references - components.keys() == set()
