"""Times the server cannot read back are refused (422), and one unreadable stored row never fails a read."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import update

from tests.api.test_operations_api import create, epochs_of
from trainops.settings import Settings
from trainops.store import create_database_engine
from trainops.store.tables import epoch_metrics, operations, step_metrics

OUT_OF_RANGE = [
    "0001-01-01T00:00:00+01:00",  # year 0 in UTC: what was stored before, and then failed every read
    "9999-12-31T23:00:00-05:00",  # year 10000 in UTC
    "1899-12-31T23:59:59+00:00",
    "1000-01-01T00:00:00",  # naive: taken as UTC
]


@pytest.mark.parametrize("timestamp", OUT_OF_RANGE)
def test_an_epoch_time_outside_1900_9999_utc_is_refused_with_422(api: httpx.Client, timestamp: str) -> None:
    operation_id = create(api)
    response = api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, "timestamp": timestamp})

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert "timestamp" in error["message"] and "1900 and 9999" in error["message"]
    assert api.get(f"/operations/{operation_id}/metrics").status_code == 200
    assert epochs_of(api, operation_id) == []


def test_a_batch_names_its_bad_epoch_and_stores_nothing(api: httpx.Client) -> None:
    operation_id = create(api)
    batch = [{"epoch": 0, "val_loss": 1.0}, {"epoch": 1, "timestamp": OUT_OF_RANGE[0]}, {"epoch": 2}]
    response = api.post(f"/operations/{operation_id}/metrics", json={"epochs": batch})

    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith("epochs.1.timestamp: ")
    assert epochs_of(api, operation_id) == []


def test_a_step_time_outside_the_range_is_refused_too(api: httpx.Client) -> None:
    operation_id = create(api)
    response = api.post(f"/operations/{operation_id}/steps", json={"step": 1, "timestamp": OUT_OF_RANGE[1]})
    assert response.status_code == 422, response.text
    assert "year 10000" in response.json()["error"]["message"]


def test_times_at_the_edges_and_naive_times_are_kept_as_utc(api: httpx.Client) -> None:
    operation_id = create(api)
    batch = [
        {"epoch": 0, "timestamp": "1900-01-01T00:00:00Z"},
        {"epoch": 1, "timestamp": "9999-12-31T23:59:59Z"},
        {"epoch": 2, "timestamp": "2025-06-10T12:00:00"},
        {"epoch": 3, "timestamp": "2025-06-10T14:00:00+02:00"},
    ]
    assert api.post(f"/operations/{operation_id}/metrics", json={"epochs": batch}).status_code == 200

    times = [epoch["timestamp"] for epoch in epochs_of(api, operation_id)]
    assert [time[:19] for time in times] == [
        "1900-01-01T00:00:00",
        "9999-12-31T23:59:59",
        "2025-06-10T12:00:00",
        "2025-06-10T12:00:00",
    ]


def test_an_unreadable_stored_row_is_shown_safely_not_a_500(
    api: httpx.Client, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows written before the server checked times (or by hand) read as well as they can, with a warning."""
    operation_id = create(api)
    batch = [{"epoch": epoch, "val_loss": 1.0 / (epoch + 1), "f1": 0.5} for epoch in range(3)]
    assert api.post(f"/operations/{operation_id}/metrics", json={"epochs": batch}).status_code == 200
    assert api.post(f"/operations/{operation_id}/steps", json={"step": 7, "loss": 0.3}).status_code == 200
    engine = create_database_engine(settings.resolved_database_url)
    with engine.begin() as connection:
        seq = connection.execute(operations.select().where(operations.c.id == operation_id)).one().seq
        mine = epoch_metrics.c.operation_seq == seq
        year_0 = -62135600400.0  # 0001-01-01T00:00:00+01:00, as the store wrote it
        connection.execute(update(epoch_metrics).where(mine, epoch_metrics.c.epoch == 1).values(timestamp=year_0))
        bad_extra = {"f1": "not a number"}
        connection.execute(update(epoch_metrics).where(mine, epoch_metrics.c.epoch == 2).values(extra=bad_extra))
        connection.execute(update(step_metrics).where(step_metrics.c.operation_seq == seq).values(timestamp=1e300))
    engine.dispose()

    with caplog.at_level(logging.WARNING, logger="trainops.store"):
        metrics = api.get(f"/operations/{operation_id}/metrics")
        steps = api.get(f"/operations/{operation_id}/steps")
        one = api.get(f"/operations/{operation_id}", params={"include_metrics": "true"})

    assert metrics.status_code == 200, metrics.text
    assert steps.status_code == 200, steps.text
    assert one.status_code == 200, one.text
    epochs = metrics.json()["data"]["metrics"]["epochs"]
    assert [epoch["epoch"] for epoch in epochs] == [0, 1, 2]
    assert epochs[1]["timestamp"] is None and epochs[1]["val_loss"] == 0.5
    assert epochs[2]["metrics"] == {} and epochs[0]["metrics"] == {"f1": 0.5}
    assert steps.json()["data"]["points"][0]["timestamp"] is None
    warned = caplog.text
    assert f"timestamp of epoch 1 of operation {operation_id}" in warned
    assert f"metric 'f1' of epoch 2 of operation {operation_id}" in warned
    assert f"timestamp of step 7 of operation {operation_id}" in warned


def test_an_unreadable_operation_row_never_fails_the_list(
    api: httpx.Client, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    healthy, odd_progress, broken = create(api), create(api), create(api)
    engine = create_database_engine(settings.resolved_database_url)
    with engine.begin() as connection:
        connection.execute(
            update(operations).where(operations.c.id == odd_progress).values(progress={"percentage": 500})
        )
        connection.execute(update(operations).where(operations.c.id == broken).values(status="exploded"))
    engine.dispose()

    with caplog.at_level(logging.WARNING, logger="trainops.store"):
        listed = api.get("/operations")
        one = api.get(f"/operations/{odd_progress}")

    assert listed.status_code == 200, listed.text
    assert {item["operation_id"] for item in listed.json()["data"]["items"]} == {healthy, odd_progress}
    assert one.status_code == 200 and one.json()["data"]["progress"]["percentage"] == 0.0
    assert f"operation {broken} cannot be read" in caplog.text
    assert f"the stored progress of operation {odd_progress} is unreadable" in caplog.text
