"""A server installed without the ``train`` extra answers the extra's routes with 501 naming it
(``api/routes/unavailable.py``), the status the OpenAPI document declares on each of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trainops import extras
from trainops.api import create_app
from trainops.settings import Settings


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A server built as if the ``train`` extra were not installed."""
    monkeypatch.setitem(extras.EXTRA_MODULES, "train", ("no_such_module_for_trainops",))
    extras.missing_modules.cache_clear()
    app = create_app(Settings(home=tmp_path / "home", reaper_interval=0))
    with TestClient(app, base_url="http://testserver/api/v1") as test_client:
        yield test_client
    extras.missing_modules.cache_clear()  # what the next test finds is its own environment's


@pytest.mark.parametrize(
    ("method", "path", "feature"),
    [
        pytest.param("POST", "/training/start", "strategy training", id="training-start"),
        pytest.param(
            "GET",
            "/training/op_training_20250101_000000_deadbeef/performance",
            "strategy training",
            id="training-performance",
        ),
        pytest.param("GET", "/strategies", "strategy files", id="strategies"),
        pytest.param("POST", "/models/save", "the model registry", id="models-save"),
        pytest.param("GET", "/data/EURUSD/1h", "market data", id="data"),
    ],
)
def test_a_route_of_the_train_extra_answers_501_naming_it(
    client: TestClient, method: str, path: str, feature: str
) -> None:
    answer = client.request(method, path, json={"strategy": "mean_reversion"} if method == "POST" else None)

    assert answer.status_code == 501, answer.text
    error = answer.json()["error"]
    assert error["code"] == "missing_extra"
    assert error["message"].startswith(f"{feature} needs the trainops[train] extra, which is not installed here")
    assert error["details"]["install"] == "pip install 'trainops[train]'"
