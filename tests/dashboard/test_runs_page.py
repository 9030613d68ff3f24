"""The runs page (/): a live list of every run, filtered, sorted and shared through its address."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Locator, Page, Response, expect

from tests.dashboard.conftest import Dashboard, screenshot
from trainops.core.epoch import EpochRecord
from trainops.core.operation import OperationStatus
from trainops.core.progress import ProgressState
from trainops.service.bootstrap import open_service
from trainops.service.operations import OperationsService


def row(page: Page, operation_id: str) -> Locator:
    return page.locator(f'[data-testid="run-row"][data-operation-id="{operation_id}"]')


def stub_pages(page: Page) -> None:
    """Answer the run and compare pages with a stub: these tests follow links to them, the pages' own tests
    cover what they show."""
    for pattern in ("**/runs/op_*", "**/compare?*"):
        page.route(
            pattern, lambda route: route.fulfill(body="<!doctype html><title>stub</title>", content_type="text/html")
        )


def shown_ids(page: Page) -> list[str]:
    return page.locator('[data-testid="run-row"]').evaluate_all("rows => rows.map(r => r.dataset.operationId)")


def test_a_live_training_updates_its_row_without_a_reload(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    run = ops.create_operation(
        metadata={"name": "eurusd-live", "strategy": "mean_reversion", "symbol": "EURUSD"}, total_epochs=20
    )
    identifier = run.operation_id
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    live = row(page, identifier)
    expect(live.locator(".col-epochs")).to_have_text("0 / 20")
    expect(live.locator(".col-best")).to_have_text("\N{EN DASH}")
    expect(live.locator(".col-status")).to_have_text("pending")
    page.evaluate("window.__marker = 'same page'")  # a reload would lose it

    ops.add_epochs(identifier, [EpochRecord(epoch=e, train_loss=1 / (e + 1), val_loss=1.2 / (e + 1)) for e in range(3)])
    ops.report_progress(
        identifier, ProgressState(percentage=20.0, phase="training", message="Epoch 3/20 · Batch 40/40")
    )

    expect(live.locator(".col-status")).to_have_text("running")
    expect(live.locator(".col-epochs")).to_have_text("3 / 20")
    expect(live.locator(".col-best .value")).to_have_text("0.4")  # val_loss at epoch 2: 1.2 / 3
    expect(live.locator(".col-best")).to_have_attribute("title", re.compile(r"val_loss.*epoch 2"))
    expect(live.locator(".phase")).to_have_text("Epoch 3/20 · Batch 40/40")
    expect(live.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "20")

    ops.add_epochs(identifier, [EpochRecord(epoch=3, train_loss=0.2, val_loss=0.25)])
    ops.report_progress(identifier, ProgressState(percentage=24.5, phase="training", message="Epoch 4/20"))
    expect(live.locator(".col-epochs")).to_have_text("4 / 20")
    expect(live.locator(".col-best .value")).to_have_text("0.25")
    expect(live.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "25")
    assert page.evaluate("window.__marker") == "same page"

    ops.cancel_operation(identifier, "enough for today")
    expect(live.locator(".col-status")).to_have_text("cancelling")


def test_a_run_reporting_epochs_only_shows_its_share_of_the_planned_epochs(page: Page, dashboard: Dashboard) -> None:
    """A loop logging through trainops.connect stores epochs and no progress: its bar is the epochs' share, also
    once it was cancelled (it had read 0%)."""
    ops = dashboard.ops
    run = ops.create_operation(metadata={"name": "epochs-only"}, total_epochs=20)
    ops.start_operation(run.operation_id)
    ops.add_epochs(run.operation_id, [EpochRecord(epoch=e, val_loss=1 / (e + 1)) for e in range(5)])
    ops.finish_operation(run.operation_id, OperationStatus.CANCELLED)

    page.goto("/")

    expect(row(page, run.operation_id).locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "25")
    page.goto(f"/runs/{run.operation_id}")
    expect(page.locator(".progress-percent")).to_have_text("25.0%")


def test_filters_narrow_the_rows_and_survive_a_reload(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    eurusd = ops.create_operation(metadata={"name": "eurusd-momentum", "symbol": "EURUSD", "strategy": "momentum"})
    aapl = ops.create_operation(metadata={"name": "aapl-trend", "symbol": "AAPL", "strategy": "trend"})
    finished = ops.create_operation(metadata={"name": "eurusd-old", "symbol": "EURUSD", "strategy": "momentum"})
    evaluation = ops.create_operation("evaluation", metadata={"name": "eval-run"})
    for operation in (eurusd, aapl, finished):
        ops.add_epochs(operation.operation_id, [EpochRecord(epoch=0, val_loss=0.5)])
    ops.finish_operation(finished.operation_id, OperationStatus.COMPLETED)

    page.goto("/")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(4)

    page.get_by_test_id("status-filter").select_option("running")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(2)
    page.get_by_test_id("text-filter").fill("eurusd")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(1)
    assert shown_ids(page) == [eurusd.operation_id]
    expect(page).to_have_url(re.compile(r"\?status=running&q=eurusd$"))

    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    expect(page.get_by_test_id("status-filter")).to_have_value("running")
    expect(page.get_by_test_id("text-filter")).to_have_value("eurusd")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(1)
    assert shown_ids(page) == [eurusd.operation_id]

    # the text matches the id, the strategy and the symbol too; the type filter narrows by operation type
    page.goto(f"/?q={aapl.operation_id[-8:]}")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(1)
    assert shown_ids(page) == [aapl.operation_id]
    page.goto("/?q=momentum")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(2)
    page.goto("/")
    page.get_by_test_id("type-filter").select_option("evaluation")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(1)
    assert shown_ids(page) == [evaluation.operation_id]
    page.get_by_test_id("text-filter").fill("no such run anywhere")
    expect(page.get_by_text("No runs match these filters.")).to_be_visible()
    page.get_by_role("button", name="Clear the filters").click()
    expect(page.locator('[data-testid="run-row"]')).to_have_count(4)


def test_sorting_by_a_column_reorders_the_rows_and_is_kept_in_the_address(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    values = {"beta": 0.30, "alpha": 0.10, "gamma": 0.20}
    ids = {}
    for name, value in values.items():
        operation = ops.create_operation(metadata={"name": name}, total_epochs=10)
        ops.add_epochs(operation.operation_id, [EpochRecord(epoch=0, val_loss=value)])
        ids[name] = operation.operation_id
    newest_first = [ids["gamma"], ids["alpha"], ids["beta"]]

    page.goto("/")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(3)
    assert shown_ids(page) == newest_first
    header = page.locator("th[data-sort='name']")
    header.click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert shown_ids(page) == [ids["alpha"], ids["beta"], ids["gamma"]]
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    assert shown_ids(page) == [ids["gamma"], ids["beta"], ids["alpha"]]

    best = page.locator("th[data-sort='best']")
    best.click()
    expect(best).to_have_attribute("aria-sort", "descending")
    expect(header).to_have_attribute("aria-sort", "none")
    assert shown_ids(page) == [ids["beta"], ids["gamma"], ids["alpha"]]
    expect(page).to_have_url(re.compile(r"\?sort=best&dir=desc$"))
    page.reload()
    expect(page.locator("th[data-sort='best']")).to_have_attribute("aria-sort", "descending")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(3)
    assert shown_ids(page) == [ids["beta"], ids["gamma"], ids["alpha"]]


def test_a_runs_name_links_to_its_page_and_picked_runs_open_compare(page: Page, dashboard: Dashboard) -> None:
    first = dashboard.ops.create_operation(metadata={"name": "first-run"})
    second = dashboard.ops.create_operation(metadata={"name": "second-run"})

    stub_pages(page)
    page.goto("/")
    expect(page.get_by_test_id("compare-button")).to_be_disabled()
    row(page, first.operation_id).locator("td.pick input").check()
    row(page, second.operation_id).locator("td.pick input").check()
    expect(page.get_by_test_id("compare-button")).to_have_text("Compare (2)")
    page.get_by_test_id("compare-button").click()
    page.wait_for_url(re.compile(r"/compare\?ids="))
    expect(page).to_have_title("stub")
    picked = page.url.split("ids=", 1)[1].split(",")
    assert sorted(picked) == sorted([first.operation_id, second.operation_id])

    page.goto("/")
    link = row(page, first.operation_id).get_by_role("link", name="first-run")
    expect(link).to_have_attribute("href", f"/runs/{first.operation_id}")
    link.click()
    page.wait_for_url(f"**/runs/{first.operation_id}")
    expect(page).to_have_title("stub")


def test_with_no_runs_the_page_says_how_to_start_one(page: Page, dashboard: Dashboard) -> None:
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    expect(page.get_by_text("No runs yet")).to_be_visible()
    expect(page.get_by_text("trainops train strategies/mean_reversion.yaml")).to_be_visible()
    expect(page.get_by_test_id("runs-table")).to_be_hidden()
    screenshot(page, "runs-empty")


# ------------------------------------------------------------------------------------------ the screenshot


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def seeded(dashboard: Dashboard) -> Iterator[Callable[[], None]]:
    """Writes a realistic day of runs into the dashboard's database, as if made over the last hours (the service
    on the same SQLite file, with a clock the test moves)."""
    clock = Clock(datetime.now(UTC) - timedelta(hours=7))
    service = OperationsService(open_service(dashboard.settings).store, progress_interval=0.0, clock=clock)

    def curve(epochs: int, start: float, floor: float, rate: float, overfit_from: int | None = None) -> list[float]:
        values = []
        for epoch in range(epochs):
            value = floor + (start - floor) * math.exp(-rate * epoch) + 0.012 * math.sin(epoch * 1.7)
            if overfit_from is not None and epoch > overfit_from:
                value += 0.004 * (epoch - overfit_from) ** 1.3
            values.append(value)
        return values

    def training(
        metadata: dict[str, object],
        planned: int,
        done: int,
        *,
        minutes_ago: float,
        epoch_seconds: float,
        end: OperationStatus | None = None,
        task_metric: tuple[str, float, float] | None = None,
        overfit_from: int | None = None,
        message: str | None = None,
        cancel: str | None = None,
        error: str | None = None,
    ) -> None:
        clock.now = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        operation = service.create("training", metadata=metadata, total_epochs=planned)
        identifier = operation.operation_id
        if done == 0 and end is None:
            return
        service.start(identifier)
        val = curve(done, 1.1, 0.42, 0.09, overfit_from)
        train = curve(done, 1.05, 0.30, 0.11)
        records = []
        for epoch in range(done):
            clock.now += timedelta(seconds=epoch_seconds)
            metrics = {}
            if task_metric:
                name, low, high = task_metric
                metrics[name] = high - (high - low) * math.exp(-0.08 * epoch) - 0.01 * math.cos(epoch)
            records.append(
                EpochRecord(
                    epoch=epoch,
                    train_loss=train[epoch],
                    val_loss=val[epoch],
                    val_accuracy=0.52 + 0.3 * (1 - math.exp(-0.07 * epoch)),
                    learning_rate=1e-3 * 0.97**epoch,
                    timestamp=clock.now,
                    metrics=metrics,
                )
            )
        if records:
            service.add_epochs(identifier, records)
        percentage = 5 + 90 * done / planned
        text = message or f"Epoch {done}/{planned} · Batch 312/312"
        service.report_progress(identifier, ProgressState(percentage=percentage, phase="training", message=text))
        if cancel:
            service.cancel(identifier, cancel, requested_by="agent")
        if end is OperationStatus.FAILED:
            service.fail(identifier, error or "failed")
        elif end is not None and end is not OperationStatus.CANCELLED:
            service.finish(identifier, end)
        elif end is OperationStatus.CANCELLED:
            service.finish(identifier, OperationStatus.CANCELLED)

    def seed() -> None:
        training(
            {"strategy": "mean_reversion", "symbol": "EURUSD", "timeframe": "1h"},
            100,
            100,
            minutes_ago=400,
            epoch_seconds=9,
            end=OperationStatus.COMPLETED,
        )
        training(
            {"strategy": "momentum_breakout", "symbol": "AAPL", "timeframe": "1d"},
            80,
            47,
            minutes_ago=300,
            epoch_seconds=7,
            end=OperationStatus.CANCELLED,
            overfit_from=25,
            cancel="overfitting since epoch 26: validation loss up 9% while training loss falls",
        )
        training(
            {"name": "yolo11n-coco128", "task": "object_detection"},
            60,
            60,
            minutes_ago=240,
            epoch_seconds=30,
            end=OperationStatus.COMPLETED,
            task_metric=("mAP50", 0.12, 0.71),
        )
        training(
            {"strategy": "trend_following", "symbol": "BTCUSD", "timeframe": "4h"},
            50,
            12,
            minutes_ago=180,
            epoch_seconds=11,
            end=OperationStatus.FAILED,
            error="CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.74 GiB total capacity)",
        )
        training(
            {"name": "resnet50-cifar10", "task": "image_classification"},
            90,
            18,
            minutes_ago=120,
            epoch_seconds=3,
            end=OperationStatus.COMPLETED,
        )
        training(
            {"strategy": "mean_reversion", "symbol": "EURUSD", "timeframe": "4h"},
            120,
            64,
            minutes_ago=42,
            epoch_seconds=35,
            message="Epoch 64/120 · Batch 201/312",
        )
        training(
            {"name": "bert-base-sst2", "task": "text_classification"},
            10,
            3,
            minutes_ago=25,
            epoch_seconds=400,
            cancel="stopping to free the GPU for a sweep",
            message="Epoch 4/10 · Batch 1200/2105",
        )
        training(
            {"strategy": "mean_reversion", "symbol": "GBPUSD", "timeframe": "1h"},
            100,
            0,
            minutes_ago=2,
            epoch_seconds=0,
        )

    yield seed
    service.store.engine.dispose()


def test_screenshot_of_a_realistic_list(page: Page, dashboard: Dashboard, seeded: Callable[[], None]) -> None:
    seeded()
    page.goto("/")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(8)
    expect(page.locator('[data-testid="run-row"][data-status="cancelling"]')).to_have_count(1)
    detection = page.locator('[data-testid="run-row"]', has_text="yolo11n-coco128")
    expect(detection.locator(".col-best .sub")).to_contain_text("mAP@0.5")
    screenshot(page, "runs")


def test_a_runs_tags_are_shown_and_found_by_the_text_filter(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    tagged = ops.create_operation(name="lr-sweep-3", tags=["sweep", "baseline"])
    ops.create_operation(name="plain-run")
    page.goto("/")
    row = page.locator(f'[data-testid="run-row"][data-operation-id="{tagged.operation_id}"]')
    expect(row.get_by_test_id("run-tag")).to_have_text(["sweep", "baseline"])
    page.get_by_test_id("text-filter").fill("baseline")
    expect(page.get_by_test_id("run-row")).to_have_count(1)
    expect(row).to_be_visible()


# ---------------------------------------------------------------------- filters on the server, polling by ETag


def test_filters_and_counts_reach_runs_older_than_the_newest_thousand(page: Page, dashboard: Dashboard) -> None:
    """The failed run is older than the 1,000 newest: the status menu counts it, and the status and text filters
    find it (the server filters, not the page)."""
    service = open_service(dashboard.settings)
    try:
        old = service.create("training", name="old-diverged-run")
        service.fail(old.operation_id, "loss became NaN")
        for index in range(1000):
            service.create("training", name=f"filler-{index}")
    finally:
        service.store.engine.dispose()

    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    expect(page.get_by_test_id("status-filter").locator('option[value="failed"]')).to_have_text("failed (1)")
    expect(page.get_by_test_id("status-filter").locator('option[value="pending"]')).to_have_text("pending (1000)")
    expect(page.locator(".summary")).to_contain_text("1,001 runs")
    expect(page.locator(".foot")).to_contain_text("Showing the newest 1,000 of 1,001 runs")
    expect(row(page, old.operation_id)).to_have_count(0)

    page.get_by_test_id("status-filter").select_option("failed")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(1)
    assert shown_ids(page) == [old.operation_id]
    expect(row(page, old.operation_id).locator(".phase")).to_have_text("loss became NaN")

    page.goto("/?q=diverged")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(1)
    assert shown_ids(page) == [old.operation_id]
    # several words: the server looks for one, the page keeps the runs with every word
    page.get_by_test_id("text-filter").fill("old run")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(1)
    assert shown_ids(page) == [old.operation_id]


def test_an_idle_list_polls_slowly_and_unchanged_polls_are_304(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    done = ops.create_operation(name="finished-run")
    ops.add_epochs(done.operation_id, [EpochRecord(epoch=0, val_loss=0.5)])
    ops.finish_operation(done.operation_id, OperationStatus.COMPLETED)
    lists: list[tuple[int, str | None]] = []

    def on_response(response: Response) -> None:
        if "/api/v1/operations?" in response.url and "include=best" in response.url:
            lists.append((response.status, response.request.headers.get("if-none-match")))

    page.on("response", on_response)
    page.clock.install()
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(1)
    assert lists == [(200, None)]

    page.clock.run_for(6000)  # no run active: no poll within 6 s
    page.wait_for_timeout(300)
    assert len(lists) == 1
    page.clock.run_for(5000)  # the idle poll: unchanged, so a 304 with no body to parse
    page.wait_for_timeout(500)
    assert len(lists) == 2
    assert lists[1][0] == 304 and lists[1][1]

    live = ops.create_operation(name="a-new-run")
    page.clock.run_for(10_500)
    expect(row(page, live.operation_id)).to_be_visible()
    assert lists[-1][0] == 200
    # a run is active now: polls every 2 s
    polls = len(lists)
    page.clock.run_for(2100)
    page.wait_for_timeout(500)
    assert len(lists) == polls + 1


def test_a_list_of_long_mixed_runs_fits_a_1280_px_window(page: Page, dashboard: Dashboard) -> None:
    """A long name, a long strategy, a failed run's long error and a best value side by side: the table stays
    inside the window (the long texts are cut, whole in their tooltips)."""
    ops = dashboard.ops
    strategy = "mean_reversion_with_volatility_targeting_and_regime_filter_v2_final"
    long_run = ops.create_operation(
        name="a-rather-long-experiment-name-for-the-sweep-" + "x" * 60,
        metadata={"strategy": strategy, "symbol": "EURUSD", "timeframe": "4h"},
        total_epochs=100,
    )
    ops.add_epochs(long_run.operation_id, [EpochRecord(epoch=e, val_loss=1 / (e + 1)) for e in range(3)])
    failed = ops.create_operation(name="failed-run", metadata={"strategy": strategy})
    ops.finish_operation(failed.operation_id, OperationStatus.FAILED, error="RuntimeError: " + "shape mismatch " * 20)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/")
    expect(page.locator('[data-testid="run-row"]')).to_have_count(2)
    width = page.evaluate("document.documentElement.scrollWidth")
    cols = page.evaluate(
        '[...document.querySelectorAll("table.runs thead th")].map(t => Math.round(t.getBoundingClientRect().width))'
    )
    assert width <= 1280, f"the page is {width} px wide in a 1280 px window: {cols}"
    cell = row(page, long_run.operation_id).locator(".col-strategy")
    expect(cell).to_have_attribute("title", re.compile(strategy))
    screenshot(page, "runs-1280")
