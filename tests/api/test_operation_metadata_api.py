"""``PATCH /api/v1/operations/{id}``: metadata fields added over HTTP, served by ``GET /operations/{id}``, and bad
bodies refused with the error envelope."""

from __future__ import annotations

import httpx
import pytest


def create(api: httpx.Client) -> str:
    response = api.post("/operations", json={"metadata": {"strategy": "yolo-n"}})
    assert response.status_code == 201, response.text
    operation_id: str = response.json()["data"]["operation_id"]
    return operation_id


def test_patched_fields_are_served_under_metadata(api: httpx.Client) -> None:
    operation_id = create(api)
    ids = {"mlflow_experiment_id": "12", "mlflow_run_id": "6f1c2d", "mlflow_tracking_uri": "http://mlflow:5000"}
    response = api.patch(f"/operations/{operation_id}", json={"metadata": ids})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["cancel_requested"] is False
    assert body["data"]["metadata"] | ids == body["data"]["metadata"]

    metadata = api.get(f"/operations/{operation_id}").json()["data"]["metadata"]
    assert {name: metadata[name] for name in ids} == ids
    assert metadata["strategy"] == "yolo-n" and metadata["executor"] == "external"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"metadata": {"executor": "local"}}, "metadata executor cannot be changed"),
        ({"metadata": {}}, "metadata"),
        ({"metadata": {"task": "telepathy"}}, "telepathy"),
        ({"metadata": "run 7"}, "metadata"),
        ({"notes": "x" * 10_001}, "notes"),
        ({"colour": "red"}, "colour"),
        ({}, "nothing to change"),
    ],
)
def test_bad_bodies_are_refused_with_the_error_envelope(api: httpx.Client, body: object, message: str) -> None:
    operation_id = create(api)
    response = api.patch(f"/operations/{operation_id}", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and message in error["message"], error


def test_an_unknown_operation_is_404(api: httpx.Client) -> None:
    response = api.patch("/operations/op_training_20250101_000000_00000000", json={"metadata": {"notes": "x"}})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
