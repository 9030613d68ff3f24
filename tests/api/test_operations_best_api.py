"""``GET /operations?include=best``: each listed run's best value of its primary metric, computed in SQL, agrees
with the diagnosis of ``GET /operations/{id}/metrics`` (monitor, direction, best epoch and value)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_operations_api import create

Epoch = dict[str, Any]

RUNS: dict[str, tuple[dict[str, Any], list[Epoch]]] = {
    "val_loss, no task": ({}, [{"val_loss": 0.9}, {"val_loss": 0.4}, {"val_loss": 0.6}]),
    "the earliest of equal values": ({}, [{"val_loss": 0.5}, {"val_loss": 0.3}, {"val_loss": 0.3}]),
    "NaN and infinities skipped": (
        {},
        [{"val_loss": 0.8}, {"val_loss": "NaN"}, {"val_loss": "-Infinity"}, {"val_loss": 0.7}],
    ),
    "detection: mAP50 maximised": (
        {"task": "object_detection"},
        [
            {"val_loss": 0.9, "mAP50": 0.2},
            {"val_loss": 0.5, "mAP50": 0.61},
            {"val_loss": 0.4, "mAP50": "Infinity"},
            {"val_loss": 0.3, "mAP50": 0.55},
        ],
    ),
    "detection before its first mAP50: val_loss": (
        {"task": "object_detection"},
        [{"val_loss": 1.2}, {"val_loss": 1.1}],
    ),
    "detection with mAP50 only NaN: none": ({"task": "object_detection"}, [{"val_loss": 0.5, "mAP50": "NaN"}]),
    "classification: val_accuracy, a column": (
        {"task": "image_classification"},
        [{"val_loss": 0.7, "val_accuracy": 0.71}, {"val_loss": 0.6, "val_accuracy": 0.83}, {"val_accuracy": 0.8}],
    ),
    "classification with accuracy NaN": ({"task": "image_classification"}, [{"val_loss": 0.4, "val_accuracy": "NaN"}]),
    "segmentation: miou": ({"task": "semantic_segmentation"}, [{"miou": 0.3}, {"miou": 0.45}, {"miou": 0.44}]),
    "regression: val_loss": ({"task": "regression"}, [{"val_loss": 3.0}, {"val_loss": 2.5}]),
    "no val_loss at all": ({}, [{"train_loss": 0.5}]),
    "no epochs": ({}, []),
}


def expected_best(api: httpx.Client, operation_id: str) -> dict[str, Any] | None:
    """What the diagnosis (the default policy, the run's task) says is the run's best."""
    metrics = api.get(f"/operations/{operation_id}/metrics").json()["data"]["metrics"]
    if metrics["best_epoch"] is None:
        return None
    return {
        "metric": metrics["monitor"],
        "mode": metrics["mode"],
        "value": metrics["best_value"],
        "epoch": metrics["best_epoch"],
    }


def test_best_of_every_listed_run_agrees_with_its_diagnosis(api: httpx.Client) -> None:
    ids: dict[str, str] = {}
    for case, (metadata, epochs) in RUNS.items():
        operation_id = create(api, metadata={"name": case, **metadata}, total_epochs=10)
        if epochs:
            body = {"epochs": [{"epoch": number, **epoch} for number, epoch in enumerate(epochs)]}
            assert api.post(f"/operations/{operation_id}/metrics", json=body).status_code == 200
        ids[case] = operation_id

    response = api.get("/operations", params={"include": "best"})

    assert response.status_code == 200, response.text
    listed = {item["operation_id"]: item for item in response.json()["data"]["items"]}
    assert len(listed) == len(RUNS)
    for case, operation_id in ids.items():
        assert listed[operation_id]["best"] == expected_best(api, operation_id), case
    # spelled out, so that the diagnosis itself being wrong cannot pass unnoticed
    assert listed[ids["detection: mAP50 maximised"]]["best"] == {
        "metric": "mAP50",
        "mode": "max",
        "value": 0.61,
        "epoch": 1,
    }
    assert listed[ids["the earliest of equal values"]]["best"]["epoch"] == 1
    assert listed[ids["NaN and infinities skipped"]]["best"]["value"] == 0.7
    assert listed[ids["detection before its first mAP50: val_loss"]]["best"]["metric"] == "val_loss"
    assert listed[ids["classification: val_accuracy, a column"]]["best"] == {
        "metric": "val_accuracy",
        "mode": "max",
        "value": 0.83,
        "epoch": 1,
    }
    for none in ("detection with mAP50 only NaN: none", "classification with accuracy NaN", "no epochs"):
        assert listed[ids[none]]["best"] is None, none


def test_best_follows_new_epochs_and_filters_and_pages(api: httpx.Client) -> None:
    first = create(api, total_epochs=5)
    second = create(api, total_epochs=5)
    api.post(f"/operations/{first}/metrics", json={"epoch": 0, "val_loss": 0.5})
    api.post(f"/operations/{second}/metrics", json={"epoch": 0, "val_loss": 0.8})
    api.post(f"/operations/{second}/complete", json={"status": "completed"})

    running = api.get("/operations", params={"include": "best", "status": "running"}).json()["data"]["items"]
    assert [(item["operation_id"], item["best"]["value"]) for item in running] == [(first, 0.5)]

    api.post(f"/operations/{first}/metrics", json={"epoch": 1, "val_loss": 0.25})
    page = api.get("/operations", params={"include": "best", "limit": 1}).json()["data"]
    assert page["total"] == 2
    assert [(item["operation_id"], item["best"]["value"], item["best"]["epoch"]) for item in page["items"]] == [
        (second, 0.8, 0)
    ]
    older = api.get("/operations", params={"include": "best", "limit": 1, "offset": 1}).json()["data"]["items"]
    assert [(item["operation_id"], item["best"]["value"], item["best"]["epoch"]) for item in older] == [
        (first, 0.25, 1)
    ]


def test_without_include_the_list_has_no_best(api: httpx.Client) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, "val_loss": 0.5})

    (item,) = api.get("/operations").json()["data"]["items"]

    assert item["operation_id"] == operation_id
    assert "best" not in item


@pytest.mark.parametrize("include", ["bets", "metrics"])
def test_an_unknown_include_is_refused_naming_the_choice(api: httpx.Client, include: str) -> None:
    response = api.get("/operations", params={"include": include})

    assert response.status_code == 422
    assert "best" in response.json()["error"]["message"]


def test_best_follows_a_rewritten_epoch_and_a_new_task(api: httpx.Client) -> None:
    """Each answer is at the run's current version, never a stale one kept from an earlier poll."""
    operation_id = create(api, total_epochs=10)
    epochs = [{"epoch": 0, "val_loss": 0.5}, {"epoch": 1, "val_loss": 0.3}, {"epoch": 2, "val_loss": 0.4}]
    api.post(f"/operations/{operation_id}/metrics", json={"epochs": epochs})

    def best() -> dict[str, Any] | None:
        (item,) = api.get("/operations", params={"include": "best"}).json()["data"]["items"]
        found: dict[str, Any] | None = item["best"]
        return found

    assert best() == {"metric": "val_loss", "mode": "min", "value": 0.3, "epoch": 1}
    assert best() == {"metric": "val_loss", "mode": "min", "value": 0.3, "epoch": 1}  # unchanged run, same answer

    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 1, "val_loss": 0.9})  # the best epoch re-sent
    assert best() == {"metric": "val_loss", "mode": "min", "value": 0.4, "epoch": 2}

    api.patch(f"/operations/{operation_id}", json={"metadata": {"task": "object_detection"}})
    assert best() == {"metric": "val_loss", "mode": "min", "value": 0.4, "epoch": 2}  # no mAP50 reported yet
    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 3, "val_loss": 0.6, "mAP50": 0.42})
    assert best() == {"metric": "mAP50", "mode": "max", "value": 0.42, "epoch": 3}
    assert best() == expected_best(api, operation_id)
