"""``DELETE /operations/{id}?purge=true`` removes only the run's own model version: the folder its result names
(``result.model_version``, which any reporting client writes) goes only when it is a version folder
``{strategy}/{series}_vN`` whose ``metadata.json`` says this run wrote it and no named model uses it. Whatever
else a result names (a strategy's folder, another run's version, ``..``, an absolute path) stays, and the answer
says why (``model_version_kept``). Real 2-epoch trainings of ``strategies/mean_reversion.yaml`` on the sample
data, over a real HTTP server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.trainings import finished_training
from trainops.client.local import LocalTrainOps
from trainops.core.operation import Operation
from trainops.pipeline.artifacts import read_model_version
from trainops.service.bootstrap import open_service
from trainops.settings import Settings

NAMED = "mean_reversion/EURUSD_1h_v1"
"""The version of the first training, saved as the named model ``prod-model``."""
UNNAMED = "mean_reversion/EURUSD_1h_v2"
"""The version of the second training, which no name uses (its own purge would remove it)."""

HOSTILE = {
    "the strategy's folder": "mean_reversion",
    "the strategy's folder, slash": "mean_reversion/",
    "the strategy's folder, dot": "mean_reversion/.",
    "the models directory": ".",
    "the models directory, empty": "",
    "the parent of the models directory": "..",
    "back into the models directory": "../models",
    "another run's unnamed version": UNNAMED,
    "the named model's version": NAMED,
    "another run's version, dotted": "mean_reversion/../mean_reversion/EURUSD_1h_v2",
    "another run's version, doubled slash": "mean_reversion//EURUSD_1h_v2",
    "a file in a version": f"{UNNAMED}/model.safetensors",
    "the latest pointer": "mean_reversion/EURUSD_1h_latest",
    "the strategy's folder, absolute": "{models}/mean_reversion",
    "the named version, absolute": "{models}/" + NAMED,
}
"""What an innocent-looking run's result may name, each a folder (or file) a purge of that run must never remove;
``{models}`` is the server's models directory."""


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


@pytest.fixture
def registry(api: httpx.Client, train: Callable[[], Operation]) -> tuple[Operation, Operation]:
    """Two finished trainings: the first saved as ``prod-model`` (version v1), the second unnamed (v2)."""
    named, unnamed = train(), train()
    assert (named.result or {})["model_version"] == NAMED and (unnamed.result or {})["model_version"] == UNNAMED
    ok(api.post("/models/save", json={"task_id": named.operation_id, "model_name": "prod-model"}))
    return named, unnamed


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def ended_run(api: httpx.Client, result: dict[str, Any]) -> str:
    """A run a reporting client created, started and completed with ``result``: all a client may write."""
    created = api.post("/operations", json={"name": "innocent"})
    assert created.status_code == 201, created.text
    operation_id: str = created.json()["data"]["operation_id"]
    ok(api.post(f"/operations/{operation_id}/start"))
    ok(api.post(f"/operations/{operation_id}/complete", json={"status": "completed", "result": result}))
    return operation_id


def tree(models_dir: Path) -> list[str]:
    """Every file and folder below the models directory, but the lock a save takes (created on first use)."""
    return sorted(str(path.relative_to(models_dir)) for path in models_dir.rglob("*") if path.name != ".names.lock")


def assert_the_named_model_serves(api: httpx.Client) -> None:
    loaded = api.post("/models/prod-model/load")
    assert loaded.status_code == 200, loaded.text
    body = {"model_name": "prod-model", "symbol": "EURUSD", "timeframe": "1h", "test_date": "2018-01-15"}
    predicted = api.post("/models/predict", json=body)
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["prediction"]["signal"] in ("buy", "hold", "sell")


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_purge_never_removes_what_a_result_names_unless_it_is_the_runs_own_version(
    api: httpx.Client, registry: tuple[Operation, Operation], settings: Settings, case: str
) -> None:
    models_dir = settings.resolved_models_dir
    named = HOSTILE[case].format(models=models_dir)
    before = tree(models_dir)
    attacker = ended_run(api, {"model_version": named})

    deleted = ok(api.delete(f"/operations/{attacker}", params={"purge": "true"}))

    assert deleted["deleted"] is True and deleted["model_versions"] == 0 and deleted["models_kept"] == []
    assert tree(models_dir) == before
    for version in (NAMED, UNNAMED):
        assert read_model_version(models_dir / version).metadata["source_operation"]
    assert_the_named_model_serves(api)
    assert repr(named) in deleted["model_version_kept"]  # the answer names what stayed, and says why


def test_the_answer_says_why_each_kind_of_folder_stays(
    api: httpx.Client, registry: tuple[Operation, Operation], settings: Settings
) -> None:
    named_run, unnamed_run = registry
    reasons = {
        "mean_reversion": "not a model version folder",
        "..": "not a model version folder",
        UNNAMED: f"was written by {unnamed_run.operation_id!r}",
        NAMED: f"was written by {named_run.operation_id!r}",
    }
    for value, reason in reasons.items():
        attacker = ended_run(api, {"model_version": value})
        deleted = ok(api.delete(f"/operations/{attacker}", params={"purge": "true"}))
        assert reason in deleted["model_version_kept"], (value, deleted)
    assert (settings.resolved_models_dir / UNNAMED).is_dir() and (settings.resolved_models_dir / NAMED).is_dir()


def test_a_result_that_is_no_path_is_left_alone(api: httpx.Client, registry: tuple[Operation, Operation]) -> None:
    attacker = ended_run(api, {"model_version": ["mean_reversion"]})
    deleted = ok(api.delete(f"/operations/{attacker}", params={"purge": "true"}))
    assert deleted["model_versions"] == 0 and "not a model version folder" in deleted["model_version_kept"]
    assert_the_named_model_serves(api)


def test_a_runs_own_unnamed_version_still_goes_with_it(
    api: httpx.Client, registry: tuple[Operation, Operation], settings: Settings
) -> None:
    _, unnamed_run = registry
    models_dir = settings.resolved_models_dir

    deleted = ok(api.delete(f"/operations/{unnamed_run.operation_id}", params={"purge": "true"}))

    assert deleted["model_versions"] == 1 and deleted["models_kept"] == []
    assert deleted["model_version_kept"] is None
    assert not (models_dir / UNNAMED).exists()
    assert read_model_version(models_dir / NAMED).metadata["source_operation"]
    assert_the_named_model_serves(api)


def test_a_runs_own_named_version_stays_and_the_answer_says_which_names_use_it(
    api: httpx.Client, registry: tuple[Operation, Operation], settings: Settings
) -> None:
    named_run, _ = registry

    deleted = ok(api.delete(f"/operations/{named_run.operation_id}", params={"purge": "true"}))

    assert deleted["model_versions"] == 0 and deleted["models_kept"] == ["prod-model"]
    assert "prod-model" in deleted["model_version_kept"]
    assert (settings.resolved_models_dir / NAMED).is_dir()
    assert_the_named_model_serves(api)
