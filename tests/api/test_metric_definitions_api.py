"""``GET /metrics/definitions``, a run's task, and the definitions in the metrics answer, over a real server."""

from __future__ import annotations

import httpx
import pytest

from tests.api.test_operations_api import METRICS_FIELDS, create
from tests.live_server import LiveServer
from trainops.core.metric_definitions import TASK_STANDARD_METRICS, TaskType
from trainops.settings import Settings

TASKS = [task.value for task in TaskType]


def detection_run(api: httpx.Client) -> str:
    """mAP50 peaks at epoch 2 of 7, then falls for the three evaluations a stop must be said at, while val_loss falls
    all along."""
    operation_id = create(api, metadata={"task": "object_detection"}, total_epochs=30)
    epochs = [
        {"epoch": epoch, "train_loss": 1 - 0.1 * epoch, "val_loss": 1 - 0.08 * epoch, "mAP50": m_ap, "grad_norm": 1.0}
        for epoch, m_ap in enumerate([0.2, 0.4, 0.6, 0.5, 0.45, 0.4, 0.35])
    ]
    assert api.post(f"/operations/{operation_id}/metrics", json={"epochs": epochs}).status_code == 200
    return operation_id


def test_definitions_of_every_task(api: httpx.Client) -> None:
    response = api.get("/metrics/definitions")

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    tasks = body["data"]["tasks"]
    assert list(tasks) == TASKS
    detection = tasks["object_detection"]
    assert detection["primary_metric"] == "mAP50"
    assert list(detection["definitions"]) == list(TASK_STANDARD_METRICS[TaskType.OBJECT_DETECTION])
    assert detection["definitions"]["mAP50"] == {
        "label": "mAP@0.5",
        "format": "percent",
        "higher_is_better": True,
        "description": "Mean average precision over classes at box IoU 0.5, on the validation set.",
        "tier": "primary",
    }
    assert detection["definitions"]["learning_rate"]["higher_is_better"] is None
    assert set(body["data"]["tiers"]) == {"primary", "standard", "custom"}


def test_definitions_of_one_task(api: httpx.Client) -> None:
    response = api.get("/metrics/definitions", params={"task": "instance_segmentation"})

    assert response.status_code == 200
    tasks = response.json()["data"]["tasks"]
    assert list(tasks) == ["instance_segmentation"]
    assert tasks["instance_segmentation"]["primary_metric"] == "mask_mAP50"
    assert next(iter(tasks["instance_segmentation"]["definitions"])) == "mask_mAP50"


@pytest.mark.parametrize("task", ["detection", "", "OBJECT_DETECTION"])
def test_an_unknown_task_is_a_422_listing_the_known_ones(api: httpx.Client, task: str) -> None:
    response = api.get("/metrics/definitions", params={"task": task})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"].startswith(f"task {task!r} is not one trainops knows; use one of: image_classification, ")
    assert error["details"] == {"task": task, "valid": TASKS}


def test_creating_an_operation_with_an_unknown_task_is_a_422_listing_the_known_ones(api: httpx.Client) -> None:
    response = api.post("/operations", json={"metadata": {"task": "detection"}})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"].startswith("metadata.task: task 'detection' is not one trainops knows; use one of: ")
    assert "object_detection" in error["message"]
    assert api.get("/operations").json()["data"]["total"] == 0


def test_an_operation_shows_its_task(api: httpx.Client) -> None:
    operation_id = create(api, metadata={"task": "pose_estimation"})
    assert api.get(f"/operations/{operation_id}").json()["data"]["metadata"]["task"] == "pose_estimation"
    untasked = create(api)
    assert api.get(f"/operations/{untasked}").json()["data"]["metadata"]["task"] is None


def test_the_metrics_answer_follows_the_primary_metric_and_defines_each_metric(api: httpx.Client) -> None:
    operation_id = detection_run(api)

    metrics = api.get(f"/operations/{operation_id}/metrics").json()["data"]["metrics"]

    assert set(metrics) >= METRICS_FIELDS | {"definitions"}  # every field kept; one added
    assert (metrics["monitor"], metrics["mode"], metrics["best_epoch"]) == ("mAP50", "max", 2)
    assert metrics["recommendation"]["restore_epoch"] == 2
    assert "mAP50" in metrics["recommendation"]["reason"]
    assert metrics["best_val_loss"] == pytest.approx(0.52)  # validation loss's own best, as before
    assert list(metrics["definitions"]) == ["mAP50", "train_loss", "val_loss", "grad_norm"]
    assert metrics["definitions"]["grad_norm"] == {
        "label": "grad_norm",
        "format": "float",
        "higher_is_better": False,
        "description": metrics["definitions"]["grad_norm"]["description"],
        "tier": "custom",
    }
    # the same answer inside the operation
    full = api.get(f"/operations/{operation_id}", params={"include_metrics": "true"}).json()["data"]
    assert full["metrics"]["definitions"] == metrics["definitions"]
    assert full["metrics"]["monitor"] == "mAP50"


def test_the_etag_tells_a_chosen_val_loss_from_the_default_monitor(api: httpx.Client) -> None:
    operation_id = detection_run(api)
    path = f"/operations/{operation_id}/metrics"
    by_task = api.get(path)
    assert by_task.json()["data"]["metrics"]["monitor"] == "mAP50"

    # the same values, but monitor chosen: a different answer, so not the default's ETag
    by_loss = api.get(path, params={"monitor": "val_loss"}, headers={"If-None-Match": by_task.headers["etag"]})

    assert by_loss.status_code == 200
    assert by_loss.headers["etag"] != by_task.headers["etag"]
    assert (by_loss.json()["data"]["metrics"]["monitor"], by_loss.json()["data"]["metrics"]["best_epoch"]) == (
        "val_loss",
        6,
    )
    again = api.get(path, headers={"If-None-Match": by_task.headers["etag"]})
    assert again.status_code == 304


def test_the_replay_follows_the_primary_metric(api: httpx.Client) -> None:
    operation_id = detection_run(api)

    default = api.post(f"/operations/{operation_id}/diagnose").json()["data"]
    chosen = api.post(f"/operations/{operation_id}/diagnose", json={"policy": {"monitor": "val_loss"}}).json()["data"]

    assert (default["policy"]["monitor"], default["policy"]["mode"]) == ("mAP50", "max")
    assert chosen["policy"]["monitor"] == "val_loss"


def test_the_definitions_need_the_token_when_the_server_has_one(settings: Settings) -> None:
    token = "s3cret-token-0123456789"
    with (
        LiveServer(settings.model_copy(update={"api_token": token})) as server,
        httpx.Client(base_url=f"{server.url}/api/v1") as client,
    ):
        assert client.get("/metrics/definitions").status_code == 401
        allowed = client.get("/metrics/definitions", headers={"Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200
