"""Number fields of every request body read text only in plain decimal notation: pydantic's lax mode would read
``"1_000"`` as 1000 (Python's int and float accept underscores). A 422 names the field; plain text still reads."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_protocol_api import create, error_of


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        pytest.param("/operations", {"total_epochs": "1_000"}, "total_epochs", id="create-total_epochs"),
        pytest.param("/training/start", {"config": {"epochs": "1_000"}}, "epochs", id="training-epochs"),
        pytest.param("/training/start", {"config": {"learning_rate": "1_0e-3"}}, "learning_rate", id="training-lr"),
        pytest.param("/training/start", {"config": {"batch_size": "3_2"}}, "batch_size", id="training-batch"),
        pytest.param(
            "/training/start", {"config": {"hidden_layers": [64, "3_2"]}}, "hidden_layers", id="training-layers"
        ),
        pytest.param(
            "/training/start", {"config": {"early_stopping": {"patience": "1_0"}}}, "patience", id="training-patience"
        ),
        pytest.param("/training/start", {"resources": {"gpus": "0_1"}}, "gpus", id="training-gpus"),
        pytest.param("/training/start", {"resources": {"cpus": "\u0662"}}, "cpus", id="training-cpus-arabic-digit"),
    ],
)
def test_request_numbers_sent_as_text_must_be_plain_decimal(
    api: httpx.Client, path: str, body: dict[str, Any], field: str
) -> None:
    error = error_of(api.post(path, json=body), 422)

    assert f"{field}: " in error["message"] and "plain decimal notation" in error["message"]
    assert api.get("/operations").json()["data"]["total"] == 0  # nothing was created


def test_diagnose_total_epochs_planned_must_be_plain_decimal(api: httpx.Client) -> None:
    operation_id = create(api)

    refused = api.post(f"/operations/{operation_id}/diagnose", json={"total_epochs_planned": "1_00"})

    assert "total_epochs_planned: '1_00' is not a number" in error_of(refused, 422)["message"]


def test_plain_decimal_text_still_reads(api: httpx.Client) -> None:
    created = api.post("/operations", json={"operation_type": "training", "total_epochs": "1000"})

    assert created.status_code == 201, created.text
    assert created.json()["data"]["total_epochs"] == 1000


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
