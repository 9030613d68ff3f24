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


def test_updates_cannot_grow_the_metadata_past_its_limit_and_lose_nothing(api: httpx.Client) -> None:
    operation_id = create(api)
    big = "x" * (5 * 2**20)  # each update alone is within the 8 MiB body limit
    assert api.patch(f"/operations/{operation_id}", json={"metadata": {"first": big}}).status_code == 200

    refused = api.patch(f"/operations/{operation_id}", json={"metadata": {"second": big}})

    assert refused.status_code == 422, refused.text[:500]
    assert refused.json()["error"]["message"].startswith(
        "the metadata would take 10.0 MiB after this update; a run keeps at most 8 MiB of it"
    )
    metadata = api.get(f"/operations/{operation_id}").json()["data"]["metadata"]
    assert metadata["first"] == big and "second" not in metadata
    # replacing the large value with a small one, or removing it, still works
    shrunk = api.patch(f"/operations/{operation_id}", json={"metadata": {"first": "small", "second": big}})
    assert shrunk.status_code == 200, shrunk.text[:500]
    assert api.get(f"/operations/{operation_id}").json()["data"]["metadata"]["first"] == "small"
