"""The compare page (/compare?ids=a,b): runs overlaid on one chart, their parameters side by side."""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Dashboard, PageLog, screenshot
from trainops.client import TrainOps
from trainops.core.epoch import EpochRecord
from trainops.core.operation import OperationStatus
from trainops.core.progress import ProgressState

UNKNOWN_ID = "op_training_20990101_000000_deadbeef"
LOADING = 15_000
"""How long a wait for the server's answers may take (ms): the tests share two busy cores."""


def curve(epochs: int, *, rate: float, floor: float, overfit_at: int | None = None, seed: int = 0) -> list[EpochRecord]:
    """A training's records: losses falling towards `floor` at `rate`, validation turning up after `overfit_at`."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(seconds=epochs * 40)
    records = []
    for epoch in range(epochs):
        train = floor + (1.2 - floor) * math.exp(-rate * epoch) + rng.gauss(0, 0.012)
        val = train + 0.04 + rng.gauss(0, 0.025)
        if overfit_at is not None and epoch > overfit_at:
            val += 0.006 * (epoch - overfit_at)
        accuracy = 0.5 + 0.42 * (1 - math.exp(-rate * epoch)) + rng.gauss(0, 0.01)
        records.append(
            EpochRecord(
                epoch=epoch,
                train_loss=round(train, 5),
                val_loss=round(val, 5),
                train_accuracy=round(min(accuracy + 0.02, 1.0), 5),
                val_accuracy=round(min(accuracy, 1.0), 5),
                learning_rate=0.001,
                duration=38.0 + rng.random() * 4,
                timestamp=start + timedelta(seconds=epoch * 40 + rng.random() * 3),
            )
        )
    return records


def make_run(
    ops: TrainOps,
    parameters: dict[str, Any],
    records: list[EpochRecord],
    *,
    name: str | None = None,
    total_epochs: int | None = None,
    finish: bool = True,
) -> str:
    metadata: dict[str, Any] = {
        "strategy": "mlp_trend",
        "symbol": "EURUSD",
        "timeframe": "1h",
        "parameters": parameters,
    }
    if name:
        metadata["name"] = name
    operation = ops.create_operation(metadata=metadata, total_epochs=total_epochs or len(records))
    ops.start_operation(operation.operation_id)
    if records:
        ops.add_epochs(operation.operation_id, records)
    if finish:
        ops.finish_operation(operation.operation_id, OperationStatus.COMPLETED)
    return operation.operation_id


def param_row(page: Page, name: str) -> Any:
    return page.locator(f'[data-testid="param-row"][data-param="{name}"]')


def test_compare_overlays_two_runs_with_their_parameters_side_by_side(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    slow = make_run(ops, {"learning_rate": 0.001, "batch_size": 64}, curve(30, rate=0.08, floor=0.45, seed=1))
    fast = make_run(ops, {"learning_rate": 0.01, "batch_size": 64}, curve(20, rate=0.3, floor=0.3, seed=2))

    page.goto(f"/compare?ids={slow},{fast}")

    expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=LOADING)
    chart = page.get_by_test_id("compare-chart")
    expect(chart).to_have_attribute("data-series-count", "2")
    expect(chart).to_have_attribute("data-metric", "val_loss")  # the diagnosis's monitor comes first
    expect(chart.locator("canvas")).to_have_count(1)
    chips = page.get_by_test_id("compare-run")
    expect(chips).to_have_count(2)
    expect(chips.nth(0)).to_have_attribute("data-operation-id", slow)
    expect(chips.nth(1)).to_have_attribute("data-operation-id", fast)
    # the legend reads each run's own curve: its epochs, and its last validation loss
    legend = page.get_by_test_id("legend-entry")
    expect(legend).to_have_count(2)
    expect(page.locator(f'[data-testid="legend-entry"][data-operation-id="{slow}"]')).to_have_attribute(
        "data-epochs", "30"
    )
    expect(page.locator(f'[data-testid="legend-entry"][data-operation-id="{fast}"]')).to_have_attribute(
        "data-epochs", "20"
    )
    fast_metrics = ops.get_metrics(fast).metrics
    last_fast = fast_metrics.epochs[-1].val_loss
    assert last_fast is not None
    expect(page.locator(f'[data-testid="legend-entry"][data-operation-id="{fast}"] .legend-best')).to_have_text(
        f"{fast_metrics.best_value:.4g} @ {fast_metrics.best_epoch}"
    )
    expect(page.locator(f'[data-testid="legend-entry"][data-operation-id="{fast}"] .legend-value')).to_have_text(
        f"{last_fast:.4g}"
    )

    # parameters side by side: the learning rates differ, the batch sizes do not
    table = page.get_by_test_id("params-table")
    learning_rate = param_row(page, "parameters.learning_rate")
    expect(learning_rate).to_have_attribute("data-differs", "true")
    expect(learning_rate.locator("td")).to_have_text(["0.001", "0.01"])
    batch_size = param_row(page, "parameters.batch_size")
    expect(batch_size).to_have_attribute("data-differs", "false")
    expect(batch_size.locator("td")).to_have_text(["64", "64"])
    expect(param_row(page, "epochs").locator("td")).to_have_text(["30 / 30", "20 / 20"])
    expect(param_row(page, "strategy")).to_have_attribute("data-differs", "false")

    page.get_by_test_id("only-differences").check()
    expect(batch_size).to_be_hidden()
    expect(param_row(page, "strategy")).to_be_hidden()
    expect(learning_rate).to_be_visible()
    expect(table).to_be_visible()

    # another metric: the chart follows
    page.get_by_test_id("metric-select").select_option("val_accuracy")
    expect(chart).to_have_attribute("data-metric", "val_accuracy")
    expect(chart).to_have_attribute("data-series-count", "2")
    expect(page.get_by_test_id("diagnosis-row")).to_have_count(2)

    # wall time since each run's first epoch: both runs still drawn
    page.get_by_test_id("x-axis").get_by_role("button", name="Wall time").click()
    expect(chart).to_have_attribute("data-x", "time")
    expect(chart).to_have_attribute("data-series-count", "2")
    expect(legend).to_have_count(2)


def test_adding_a_run_through_the_picker_updates_the_address_and_the_chart(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    first = make_run(ops, {"learning_rate": 0.001}, curve(12, rate=0.1, floor=0.4, seed=3))
    second = make_run(ops, {"learning_rate": 0.003}, curve(12, rate=0.2, floor=0.35, seed=4))
    third = make_run(ops, {"learning_rate": 0.01}, curve(12, rate=0.3, floor=0.3, seed=5))

    page.goto(f"/compare?ids={first},{second}")
    chart = page.get_by_test_id("compare-chart")
    expect(chart).to_have_attribute("data-series-count", "2", timeout=LOADING)
    picker = page.get_by_test_id("add-run")
    expect(picker.locator(f'option[value="{third}"]')).to_have_count(1)
    expect(picker.locator(f'option[value="{first}"]')).to_have_count(0)  # already shown

    picker.select_option(third)

    expect(page).to_have_url(re.compile(rf"/compare\?ids={first},{second},{third}$"))
    expect(chart).to_have_attribute("data-series-count", "3", timeout=LOADING)
    expect(page.get_by_test_id("compare-run")).to_have_count(3)
    expect(param_row(page, "parameters.learning_rate").locator("td")).to_have_text(["0.001", "0.003", "0.01"])

    # removing a chip takes the run out of the address, the chart and the table
    page.locator(f'[data-testid="compare-run"][data-operation-id="{first}"] [data-testid="remove-run"]').click()
    expect(page).to_have_url(re.compile(rf"/compare\?ids={second},{third}$"))
    expect(chart).to_have_attribute("data-series-count", "2")
    expect(param_row(page, "parameters.learning_rate").locator("td")).to_have_text(["0.003", "0.01"])

    # the address is the selection: a reload shows the same runs
    page.reload()
    expect(chart).to_have_attribute("data-series-count", "2", timeout=LOADING)
    expect(page.get_by_test_id("compare-run")).to_have_count(2)


def test_an_unknown_id_is_reported_while_the_other_runs_draw(
    page: Page, dashboard: Dashboard, page_log: PageLog
) -> None:
    known = make_run(dashboard.ops, {"learning_rate": 0.001}, curve(10, rate=0.2, floor=0.4, seed=6))

    page.goto(f"/compare?ids={known},{UNKNOWN_ID}")

    expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=LOADING)
    expect(page.get_by_test_id("compare-chart")).to_have_attribute("data-series-count", "1")
    notice = page.get_by_test_id("unknown-runs")
    expect(notice).to_contain_text(UNKNOWN_ID)
    expect(page.locator(f'[data-testid="compare-run"][data-operation-id="{UNKNOWN_ID}"]')).to_have_attribute(
        "data-state", "missing"
    )
    expect(page.get_by_test_id("params-table").locator("thead th")).to_have_count(2)  # labels + the known run

    # the browser logs the 404s it was answered; nothing else may have gone wrong
    unexpected = [line for line in page_log.console_errors if "404" not in line]
    assert unexpected == []
    page_log.console_errors.clear()

    notice.get_by_role("button").click()
    expect(notice).to_have_count(0)
    expect(page).to_have_url(re.compile(rf"/compare\?ids={known}$"))


def test_with_no_runs_picked_the_page_explains_how_to_pick_them(page: Page, dashboard: Dashboard) -> None:
    run = make_run(dashboard.ops, {"learning_rate": 0.001}, curve(5, rate=0.2, floor=0.4, seed=7))

    page.goto("/compare")

    expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=LOADING)
    expect(page.get_by_test_id("compare-empty")).to_contain_text("Runs page")
    page.get_by_test_id("add-run").select_option(run)
    expect(page.get_by_test_id("compare-chart")).to_have_attribute("data-series-count", "1", timeout=LOADING)
    expect(page.get_by_test_id("compare-empty")).to_be_hidden()
    expect(page).to_have_url(re.compile(rf"/compare\?ids={run}$"))


def test_an_active_run_gains_points_without_a_reload(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    done = make_run(ops, {"learning_rate": 0.001}, curve(8, rate=0.2, floor=0.4, seed=8))
    records = curve(8, rate=0.3, floor=0.3, seed=9)
    running = make_run(ops, {"learning_rate": 0.01}, records[:4], total_epochs=8, finish=False)

    page.goto(f"/compare?ids={done},{running}")
    entry = page.locator(f'[data-testid="legend-entry"][data-operation-id="{running}"]')
    expect(entry).to_have_attribute("data-epochs", "4", timeout=LOADING)

    ops.add_epochs(running, records[4:])
    ops.finish_operation(running, OperationStatus.COMPLETED)

    # the page polls active runs every 2 s
    expect(entry).to_have_attribute("data-epochs", "8", timeout=LOADING)
    expect(param_row(page, "status").locator("td").nth(1)).to_have_text("completed")


def test_screenshot_of_three_runs_of_a_learning_rate_sweep(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    base = {"batch_size": 256, "hidden_layers": [64, 32], "dropout": 0.2, "optimizer": {"name": "adam", "beta1": 0.9}}
    runs = [
        make_run(
            ops,
            {**base, "learning_rate": 0.0003},
            curve(60, rate=0.05, floor=0.42, seed=11),
            name="lr-sweep · 3e-4",
        ),
        make_run(
            ops,
            {**base, "learning_rate": 0.001},
            curve(60, rate=0.12, floor=0.36, overfit_at=34, seed=12),
            name="lr-sweep · 1e-3",
        ),
    ]
    live = curve(80, rate=0.3, floor=0.38, overfit_at=18, seed=13)[:41]
    runs.append(
        make_run(
            ops,
            {**base, "learning_rate": 0.003, "dropout": 0.1},
            live,
            name="lr-sweep · 3e-3",
            total_epochs=80,
            finish=False,
        )
    )
    ops.report_progress(runs[2], ProgressState(percentage=52.0, phase="training", message="Epoch 41/80", epoch=41))

    page.goto(f"/compare?ids={','.join(runs)}")

    expect(page.get_by_test_id("compare-chart")).to_have_attribute("data-series-count", "3", timeout=LOADING)
    expect(page.get_by_test_id("diagnosis-row")).to_have_count(3)
    screenshot(page, "compare")


def test_options_saved_wrong_in_the_browser_fall_back_to_their_defaults(page: Page, dashboard: Dashboard) -> None:
    """The browser's storage is anyone's to edit (or an older page's): a smoothing that is no number had broken the
    whole page."""
    ops = dashboard.ops
    first = make_run(ops, {"learning_rate": 0.001}, curve(12, rate=0.1, floor=0.4, seed=1))
    second = make_run(ops, {"learning_rate": 0.01}, curve(12, rate=0.2, floor=0.3, seed=2))
    saved = '{"smoothing": "abc", "x": "bogus", "log": "yes", "train": null}'
    page.add_init_script(f"localStorage.setItem('trainops.compare.options', {saved!r})")

    page.goto(f"/compare?ids={first},{second}")

    expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=LOADING)
    chart = page.get_by_test_id("compare-chart")
    expect(chart.locator("canvas")).to_have_count(1)
    expect(chart).to_have_attribute("data-x", "epoch")
    expect(page.locator(".smoothing-value")).to_have_text("0.60")
    expect(page.get_by_test_id("log-toggle")).not_to_be_checked()
    expect(page.get_by_test_id("train-toggle")).to_be_checked()


def test_long_values_are_clamped_and_name_tags_and_notes_are_compared(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    ids = []
    for seed in (0, 1):
        operation = ops.create_operation(
            metadata={"strategy": "mlp_trend", "parameters": {"features": "close_" * 500, "seed": seed}},
            total_epochs=6,
            name=f"sweep seed {seed}",
            tags=["sweep", f"seed={seed}"],
            notes="baseline" if seed == 0 else "same, another seed\n" * 8,
        )
        ops.start_operation(operation.operation_id)
        ops.add_epochs(operation.operation_id, curve(6, rate=0.3, floor=0.3, seed=seed))
        ops.finish_operation(operation.operation_id, OperationStatus.COMPLETED)
        ids.append(operation.operation_id)
    page.goto(f"/compare?ids={','.join(ids)}")

    expect(param_row(page, "name")).to_contain_text("sweep seed 0")
    expect(param_row(page, "name")).to_have_attribute("data-differs", "true")
    expect(param_row(page, "tags").locator("td").first).to_have_text("sweep, seed=0")
    expect(param_row(page, "tags")).to_have_attribute("data-differs", "true")
    expect(param_row(page, "notes").locator("td").first).to_have_text("baseline")
    expect(param_row(page, "notes")).to_have_attribute("data-differs", "true")
    expect(param_row(page, "notes").get_by_test_id("clamped")).to_have_count(1)  # 8 lines: clamped too

    long_row = param_row(page, "parameters.features")
    expect(long_row).to_have_attribute("data-differs", "false")
    clamped = long_row.get_by_test_id("clamped").first
    folded = long_row.bounding_box()
    assert folded is not None and folded["height"] < 120  # a few lines, not 700 px
    screenshot(page, "compare-long-param-clamped")
    clamped.click()
    expect(clamped).to_have_attribute("aria-expanded", "true")
    opened = long_row.bounding_box()
    assert opened is not None and opened["height"] > 3 * folded["height"]
    clamped.press("Enter")  # and folds again from the keyboard
    expect(clamped).to_have_attribute("aria-expanded", "false")
