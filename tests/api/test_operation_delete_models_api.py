"""Deleting a run that models were made from: the named models stay, keep ``source_operation`` and say
``source_deleted``; a model version nobody named goes with its run. Real 2-epoch trainings of
``strategies/mean_reversion.yaml`` on the sample data, on SQLite and PostgreSQL, over a real HTTP server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.trainings import finished_training
from trainops.client.local import LocalTrainOps
from trainops.core.operation import Operation
from trainops.service.bootstrap import open_service
from trainops.settings import Settings


@pytest.fixture
def settings(training_settings: Settings) -> Settings:
    return training_settings


@pytest.fixture
def train(settings: Settings) -> Iterator[Callable[[], Operation]]:
    """``train()``: a finished 2-epoch training with its model version in the server's models directory."""
    local = LocalTrainOps(open_service(settings), settings=settings)

    def run() -> Operation:
        return finished_training(local, settings)

    yield run
    local.close()


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_named_models_stay_and_say_their_run_was_deleted(
    api: httpx.Client, train: Callable[[], Operation], settings: Settings
) -> None:
    saved_run, unsaved_run = train(), train()
    saved_version = settings.resolved_models_dir / str((saved_run.result or {})["model_version"])
    unsaved_version = settings.resolved_models_dir / str((unsaved_run.result or {})["model_version"])
    assert saved_version.is_dir() and unsaved_version.is_dir() and saved_version != unsaved_version
    ok(api.post("/models/save", json={"task_id": saved_run.operation_id, "model_name": "eurusd-mr"}))
    assert ok(api.get("/models/eurusd-mr"))["source_deleted"] is False

    deleted = ok(api.delete(f"/operations/{saved_run.operation_id}", params={"purge": "true"}))
    assert deleted["models_kept"] == ["eurusd-mr"] and deleted["model_versions"] == 0
    assert deleted["epochs"] == 2 and deleted["status"] == "completed"
    assert saved_version.is_dir()  # the model's files stay

    listed = ok(api.get("/models"))["models"]
    assert [(m["model_name"], m["source_operation"], m["source_deleted"]) for m in listed] == [
        ("eurusd-mr", saved_run.operation_id, True)
    ]
    assert ok(api.get("/models/eurusd-mr"))["source_deleted"] is True
    loaded = api.post("/models/eurusd-mr/load")
    assert loaded.status_code == 200, loaded.text  # it still loads: a model never needed its run
    assert loaded.json()["model_info"]["source_operation"] == saved_run.operation_id

    # a version no name uses goes with its run
    gone = ok(api.delete(f"/operations/{unsaved_run.operation_id}", params={"purge": "true"}))
    assert gone["models_kept"] == [] and gone["model_versions"] == 1
    assert not unsaved_version.exists() and saved_version.is_dir()
