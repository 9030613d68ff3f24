"""``GET /api/v1/operations/{id}/metrics?format=csv``: the stored history as a CSV download, on SQLite and
PostgreSQL, over a real HTTP server."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import pytest

from trainops.core.epoch import EpochRecord
from trainops.service.operations import OperationsService

START = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


def create(api: httpx.Client) -> str:
    response = api.post("/operations", json={"operation_type": "training"})
    assert response.status_code == 201, response.text
    operation_id: str = response.json()["data"]["operation_id"]
    return operation_id


def post_epochs(api: httpx.Client, operation_id: str, epochs: list[dict[str, object]]) -> None:
    response = api.post(f"/operations/{operation_id}/metrics", json={"epochs": epochs})
    assert response.status_code == 200, response.text


def sent_history() -> list[dict[str, object]]:
    """Twelve epochs: standard and custom metrics, some missing, NaN and infinities, a step on some."""
    epochs: list[dict[str, object]] = []
    for epoch in range(12):
        record: dict[str, object] = {
            "epoch": epoch,
            "train_loss": 1.0 / (epoch + 1),
            "val_loss": 1.0 / (epoch + 1) + 0.1 * (epoch % 3),
            "learning_rate": 1e-3 * 0.9**epoch,
            "duration": 1.25 + epoch,
            "timestamp": (START + timedelta(seconds=epoch, microseconds=epoch * 7)).isoformat(),
            "f1": epoch / 11,
        }
        if epoch % 2:
            record["step"] = epoch * 100
            record["val_accuracy"] = 0.5 + epoch / 100
        epochs.append(record)
    epochs[3]["val_loss"] = "NaN"
    epochs[4]["train_loss"] = "Infinity"
    epochs[5]["grad_norm"] = "-Infinity"
    epochs[6]["grad_norm"] = 3.5
    return epochs


def number(value: object) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value)  # type: ignore[call-overload, return-value]


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_the_csv_has_every_epoch_and_round_trips_through_pandas(api: httpx.Client) -> None:
    operation_id = create(api)
    sent = sent_history()
    post_epochs(api, operation_id, sent)

    response = api.get(f"/operations/{operation_id}/metrics", params={"format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="{operation_id}.csv"'
    assert response.headers["etag"]

    frame = pd.read_csv(io.StringIO(response.text))
    assert list(frame.columns) == [
        "epoch", "step", "timestamp", "duration", "train_loss", "val_loss", "train_accuracy", "val_accuracy",
        "learning_rate", "f1", "grad_norm",
    ]  # fmt: skip
    assert list(frame["epoch"]) == list(range(12))
    assert frame["train_accuracy"].isna().all()  # never reported: an empty column
    for row, record in zip(frame.to_dict("records"), sent, strict=True):
        for name in ("train_loss", "val_loss", "learning_rate", "duration", "f1", "val_accuracy", "grad_norm"):
            expected = number(record[name]) if name in record else math.nan
            assert same(row[name], expected), (record["epoch"], name, row[name], expected)
        assert same(row["step"], float(record.get("step", math.nan)))  # type: ignore[arg-type]
        assert pd.Timestamp(row["timestamp"]) == pd.Timestamp(str(record["timestamp"]))
    assert math.isnan(frame["val_loss"][3]) and frame["train_loss"][4] == math.inf
    assert frame["grad_norm"][5] == -math.inf

    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows[3]["val_loss"] == "nan" and rows[4]["train_loss"] == "inf" and rows[5]["grad_norm"] == "-inf"
    assert rows[0]["grad_norm"] == "" and rows[0]["step"] == ""  # not reported: empty, not nan


def test_since_epoch_applies_and_json_stays_the_default(api: httpx.Client) -> None:
    operation_id = create(api)
    post_epochs(api, operation_id, sent_history())

    later = api.get(f"/operations/{operation_id}/metrics", params={"format": "csv", "since_epoch": 8})
    assert [row["epoch"] for row in csv.DictReader(io.StringIO(later.text))] == ["9", "10", "11"]

    for params in ({}, {"format": "json"}):
        answer = api.get(f"/operations/{operation_id}/metrics", params=params)
        assert answer.headers["content-type"] == "application/json"
        assert len(answer.json()["data"]["metrics"]["epochs"]) == 12


def test_an_empty_history_is_a_header(api: httpx.Client) -> None:
    operation_id = create(api)
    response = api.get(f"/operations/{operation_id}/metrics", params={"format": "csv"})
    assert response.status_code == 200
    assert response.text.splitlines() == [
        "epoch,step,timestamp,duration,train_loss,val_loss,train_accuracy,val_accuracy,learning_rate"
    ]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"points": 50}, "points"),
        ({"patience": 3}, "patience"),
        ({"series": "steps"}, "series=steps"),
    ],
)
def test_what_does_not_apply_to_an_export_is_refused(api: httpx.Client, params: dict[str, object], named: str) -> None:
    operation_id = create(api)
    post_epochs(api, operation_id, sent_history())
    response = api.get(f"/operations/{operation_id}/metrics", params={"format": "csv", **params})
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert named in message and "format=csv" in message


def test_bad_format_and_unknown_operation(api: httpx.Client) -> None:
    operation_id = create(api)
    response = api.get(f"/operations/{operation_id}/metrics", params={"format": "xlsx"})
    assert response.status_code == 422
    assert "csv" in response.text and "json" in response.text
    missing = api.get("/operations/op_training_20250101_000000_deadbeef/metrics", params={"format": "csv"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"]


def test_an_unchanged_export_answers_304_and_a_new_epoch_changes_it(api: httpx.Client) -> None:
    operation_id = create(api)
    post_epochs(api, operation_id, sent_history())
    path = f"/operations/{operation_id}/metrics"
    first = api.get(path, params={"format": "csv"})
    again = api.get(path, params={"format": "csv"}, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    json_tag = api.get(path).headers["etag"]
    assert json_tag != first.headers["etag"]  # the same version, another representation

    post_epochs(api, operation_id, [{"epoch": 12, "val_loss": 0.05}])
    changed = api.get(path, params={"format": "csv"}, headers={"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.text.splitlines()[-1].startswith("12,")


def test_the_openapi_document_offers_csv(api: httpx.Client) -> None:
    route = api.get("/openapi.json").json()["paths"]["/api/v1/operations/{operation_id}/metrics"]["get"]
    parameter = next(p for p in route["parameters"] if p["name"] == "format")
    assert parameter["schema"]["enum"] == ["csv", "json"] and parameter["schema"]["default"] == "json"
    assert "text/csv" in route["responses"]["200"]["content"]
    assert "application/json" in route["responses"]["200"]["content"]


def test_a_long_history_streams_whole(api: httpx.Client, service: OperationsService) -> None:
    """20,000 epochs, in chunks of 2,000 rows: every row arrives, in order (bench/export.py times 100,000)."""
    operation_id = service.create().operation_id
    epochs = 20_000
    for start in range(0, epochs, 10_000):
        batch = [EpochRecord(epoch=e, val_loss=1 / (e + 1), f1=0.5) for e in range(start, start + 10_000)]
        service.add_epochs(operation_id, batch)
    with api.stream("GET", f"/operations/{operation_id}/metrics", params={"format": "csv"}) as response:
        assert response.status_code == 200
        chunks = list(response.iter_bytes())
    lines = b"".join(chunks).decode().splitlines()
    assert len(lines) == epochs + 1
    assert [int(line.split(",", 1)[0]) for line in lines[1:]] == list(range(epochs))
