"""The models page (/models): the registry with each model's source run linked, filtered and sorted; its empty
state; and a server without the ``train`` extra, whose 501 the page shows.

The models are real: ``strategies/mean_reversion.yaml`` trained for 2 epochs on the sample data in this process,
written to the models directory the dashboard's server reads, and saved through its REST API.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Dashboard, PageLog, screenshot, to_fixed
from tests.live_server import LiveServer
from tests.trainings import finished_training, mean_reversion
from trainops import extras
from trainops.api.routes.events import EventTiming
from trainops.client import HttpTrainOps, LocalTrainOps
from trainops.core.operation import Operation
from trainops.pipeline.strategy import StrategyConfig, parse_strategy
from trainops.schemas.models import SaveModelRequest
from trainops.service.bootstrap import open_service
from trainops.service.training import apply_overrides
from trainops.settings import Settings

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
WITHOUT_TRAIN = "without the train extra"


@pytest.fixture
def dashboard(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, market_data: Path
) -> Iterator[Dashboard]:
    """The dashboard's server (as tests/dashboard/conftest.py makes it) with the sample market data, the
    repository's strategies and a models directory, so that trainings here write models it serves. Parametrized
    indirectly with :data:`WITHOUT_TRAIN`, the server is built as if the ``train`` extra were not installed."""
    for name in ("TRAINOPS_URL", "TRAINOPS_API_TOKEN", "TRAINOPS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    if getattr(request, "param", None) == WITHOUT_TRAIN:
        monkeypatch.setitem(extras.EXTRA_MODULES, "train", ("no_such_module_for_trainops",))
        extras.missing_modules.cache_clear()
    settings = Settings(
        home=tmp_path / "home",
        data_dir=market_data,
        models_dir=tmp_path / "models",
        strategies_dir=STRATEGIES,
        progress_interval=0.0,
        reaper_interval=0,
    )
    with LiveServer(settings) as server:
        server.server.config.app.state.event_timing = EventTiming(poll_interval=0.05, keepalive=2.0, retry_ms=200)
        with HttpTrainOps(server.url) as ops:
            yield Dashboard(url=server.url, ops=ops, settings=settings, server=server)
    extras.missing_modules.cache_clear()  # what the next test finds is its own environment's


@pytest.fixture
def train(dashboard: Dashboard) -> Iterator[Callable[..., Operation]]:
    """``train(config)``: a finished 2-epoch training (mean reversion on EURUSD 1h by default) in this process, on
    the dashboard's database, its model version written where the server reads models."""
    settings = dashboard.settings
    local = LocalTrainOps(open_service(settings), settings=settings)

    def run(config: StrategyConfig | None = None) -> Operation:
        return finished_training(local, settings, config)

    yield run
    local.close()


def rows(page: Page) -> list[str]:
    names: list[str] = page.locator('[data-testid="model-row"]').evaluate_all(
        "rows => rows.map(r => r.dataset.modelName)"
    )
    return names


def test_the_registry_is_listed_with_each_models_source_run_linked(
    page: Page, dashboard: Dashboard, train: Callable[..., Operation]
) -> None:
    eurusd = train()
    goog_config = mean_reversion().to_dict()
    goog_config.update(name="goog_reversion")
    goog = train(apply_overrides(parse_strategy(goog_config, "goog_reversion"), symbol="GOOG", timeframe="1d"))
    ops = dashboard.ops
    ops.save_model(SaveModelRequest(task_id=eurusd.operation_id, model_name="eurusd-mr", description="EURUSD hourly"))
    ops.save_model(
        SaveModelRequest(task_id=goog.operation_id, model_name="goog-daily", description="GOOG daily mean reversion")
    )
    ops.save_model(
        SaveModelRequest(
            task_id=eurusd.operation_id, model_name="eurusd-mr-prod", description="Promoted to the live signal feed"
        )
    )
    listed = {model.model_name: model for model in ops.list_models()}

    page.goto("/models")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    expect(page.locator('[data-testid="model-row"]')).to_have_count(3)
    assert rows(page) == ["eurusd-mr-prod", "goog-daily", "eurusd-mr"]  # the registry's order: newest saved first
    goog_row = page.locator('[data-testid="model-row"][data-model-name="goog-daily"]')
    expect(goog_row.locator(".col-symbol")).to_have_text("GOOG")
    expect(goog_row.locator(".col-timeframe")).to_have_text("1d")
    expect(goog_row.locator(".col-strategy")).to_have_text("goog_reversion")
    expect(goog_row.locator(".col-description")).to_have_text("GOOG daily mean reversion")
    test_accuracy = listed["goog-daily"].test_accuracy
    assert test_accuracy is not None
    expect(goog_row.locator(".col-test")).to_contain_text(f"{to_fixed(test_accuracy * 100, 1)}%")
    expect(goog_row.locator(".col-size")).to_have_text(re.compile(r"^\d+(\.\d)? (KB|MB)$"))
    screenshot(page, "models")

    # filtered by text, sorted by a column, both kept in the address
    page.get_by_test_id("model-filter").fill("eurusd")
    expect(page.locator('[data-testid="model-row"]')).to_have_count(2)
    page.locator("th[data-sort='name']").click()
    expect(page.locator("th[data-sort='name']")).to_have_attribute("aria-sort", "ascending")
    assert rows(page) == ["eurusd-mr", "eurusd-mr-prod"]
    expect(page).to_have_url(re.compile(r"/models\?q=eurusd&sort=name&dir=asc$"))
    page.reload()
    expect(page.locator('[data-testid="model-row"]')).to_have_count(2)
    assert rows(page) == ["eurusd-mr", "eurusd-mr-prod"]

    # the run page's own tests cover what it shows: here it is a stub
    page.route(
        "**/runs/op_*", lambda route: route.fulfill(body="<!doctype html><title>stub</title>", content_type="text/html")
    )
    link = page.locator('[data-testid="model-row"][data-model-name="eurusd-mr"] .col-source a')
    expect(link).to_have_attribute("href", f"/runs/{eurusd.operation_id}")
    link.click()
    page.wait_for_url(f"**/runs/{eurusd.operation_id}")
    expect(page).to_have_title("stub")

    # a deleted source run: its models stay, and say so instead of linking to a run that is gone
    ops.delete_operation(goog.operation_id)
    page.goto("/models")
    goog_source = page.locator('[data-testid="model-row"][data-model-name="goog-daily"] .col-source')
    expect(goog_source.get_by_test_id("source-deleted")).to_have_text(f"{goog.operation_id} (deleted)")
    expect(goog_source.locator("a")).to_have_count(0)


def test_sorting_puts_models_without_a_value_last(page: Page, dashboard: Dashboard) -> None:
    """Sorting over the page's own data (the registry's answer stood in for: no training needed)."""

    def model(name: str, test_accuracy: float | None, created: str) -> dict[str, Any]:
        return {
            "model_id": 1,
            "model_name": name,
            "strategy": "mean_reversion",
            "symbol": "EURUSD",
            "timeframe": "1h",
            "created_at": created,
            "saved_at": created,
            "training_accuracy": 0.7,
            "test_accuracy": test_accuracy,
            "description": None,
            "source_operation": None,
            "model_path": "/models/x",
            "model_size_mb": 0.05,
        }

    models = [
        model("b", 0.61, "2026-01-03T00:00:00Z"),
        model("a", None, "2026-01-02T00:00:00Z"),
        model("c", 0.58, "2026-01-01T00:00:00Z"),
    ]
    body = {"models": models, "count": 3}
    page.route("**/api/v1/models", lambda route: route.fulfill(json={"success": True, **body, "data": body}))

    page.goto("/models?sort=test&dir=desc")
    expect(page.locator('[data-testid="model-row"]')).to_have_count(3)
    assert rows(page) == ["b", "c", "a"]
    page.locator("th[data-sort='test']").click()
    expect(page.locator("th[data-sort='test']")).to_have_attribute("aria-sort", "ascending")
    assert rows(page) == ["c", "b", "a"]  # no value: last either way
    expect(page.locator('[data-testid="model-row"][data-model-name="a"] .col-source')).to_have_text("\N{EN DASH}")


def test_with_no_models_the_page_says_how_to_save_one(page: Page, dashboard: Dashboard) -> None:
    page.goto("/models")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    expect(page.get_by_text("No models saved yet").first).to_be_visible()
    expect(page.get_by_text("trainops models save op_training_20250610_123456_ab12cd34 eurusd-mr")).to_be_visible()
    expect(page.get_by_text("POST /api/v1/models/save")).to_be_visible()
    expect(page.get_by_test_id("models-table")).to_be_hidden()


@pytest.mark.parametrize("dashboard", [WITHOUT_TRAIN], indirect=True)
def test_a_server_without_the_train_extra_shows_its_message(
    page: Page, dashboard: Dashboard, page_log: PageLog
) -> None:
    page.goto("/models")
    message = page.get_by_test_id("models-unavailable")
    expect(message).to_contain_text("the model registry needs the trainops[train] extra")
    expect(message).to_contain_text("pip install 'trainops[train]'")
    expect(page.get_by_test_id("models-table")).to_be_hidden()
    # the browser logs the 501 it was answered as a failed resource: expected here
    page_log.console_errors[:] = [error for error in page_log.console_errors if "501" not in error]
