"""The run page in a real browser: curves that grow as epochs arrive, the diagnosis drawn with its reason, cancel
with a reason, the chart's controls, an unknown id, and a real strategy training's result panel.

Runs are made through ``dashboard.ops`` (an HTTP client of the page's own server) while the page is open, as a
training script would report them; the page learns of them from the events stream alone.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.core.test_stall_backed import flipping_accuracy, settled_loss
from tests.dashboard.conftest import Dashboard, PageLog, screenshot, to_fixed
from trainops.client import TrainOps
from trainops.core.epoch import EpochRecord
from trainops.core.progress import ProgressState
from trainops.core.steps import StepRecord
from trainops.schemas.training import TrainingRequest

pytestmark = pytest.mark.browser

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
SECONDS_PER_EPOCH = 12.0


def epoch_record(
    epoch: int, *, overfit_from: int | None = None, seed: int = 7, start: datetime | None = None
) -> EpochRecord:
    """One epoch of a believable classification run: losses falling like 1/e with noise, accuracy rising, a cosine
    learning rate, 100 steps an epoch; past ``overfit_from`` the validation loss turns up while training falls."""
    noise = random.Random(seed * 100_003 + epoch)
    train_loss = 0.28 + 0.95 * math.exp(-epoch / 9.0) + noise.gauss(0, 0.012)
    val_loss = 0.36 + 0.85 * math.exp(-epoch / 11.0) + noise.gauss(0, 0.018)
    if overfit_from is not None and epoch > overfit_from:
        val_loss += 0.012 * (epoch - overfit_from) ** 1.15
        train_loss -= 0.004 * (epoch - overfit_from)
    train_accuracy = 0.93 - 0.55 * math.exp(-epoch / 10.0) + noise.gauss(0, 0.006)
    val_accuracy = 0.86 - 0.5 * math.exp(-epoch / 12.0) + noise.gauss(0, 0.01)
    if overfit_from is not None and epoch > overfit_from:
        val_accuracy -= 0.003 * (epoch - overfit_from)
    began = start or datetime.now(UTC) - timedelta(hours=1)
    return EpochRecord(
        epoch=epoch,
        step=(epoch + 1) * 100,
        train_loss=train_loss,
        val_loss=val_loss,
        train_accuracy=min(train_accuracy, 0.999),
        val_accuracy=min(val_accuracy, 0.999),
        learning_rate=1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * epoch / 100)),
        duration=SECONDS_PER_EPOCH + noise.gauss(0, 0.5),
        timestamp=began + timedelta(seconds=SECONDS_PER_EPOCH * (epoch + 1)),
        metrics={"val_f1": min(val_accuracy - 0.04, 0.999), "train_f1": min(train_accuracy - 0.03, 0.999)},
    )


def make_run(
    ops: TrainOps,
    epochs: int,
    *,
    total: int = 100,
    overfit_from: int | None = None,
    name: str | None = None,
    bare: bool = False,
) -> str:
    """A running operation with ``epochs`` epochs reported and its progress at the last of them. ``bare`` reports
    losses only, without step, learning rate or custom metrics."""
    metadata: dict[str, Any] = {"strategy": "mean_reversion", "symbol": "EURUSD", "timeframe": "4h"}
    if name:
        metadata["name"] = name
    operation = ops.create_operation(metadata=metadata, total_epochs=total)
    ops.start_operation(operation.operation_id)
    start = datetime.now(UTC) - timedelta(seconds=SECONDS_PER_EPOCH * (epochs + 1))
    records = [epoch_record(e, overfit_from=overfit_from, start=start) for e in range(epochs)]
    if bare:
        records = [EpochRecord(epoch=r.epoch, train_loss=r.train_loss, val_loss=r.val_loss) for r in records]
    if records:
        ops.add_epochs(operation.operation_id, records)
        ops.report_progress(operation.operation_id, ProgressState.training(epochs, total))
    return operation.operation_id


def open_run(page: Page, operation_id: str) -> None:
    page.goto(f"/runs/{operation_id}")
    expect(page.locator("body[data-ready='1']")).to_have_count(1)


def chart(page: Page) -> Any:
    return page.get_by_test_id("main-chart")


def performance_marks(page: Page, name: str) -> list[Any]:
    marks: list[Any] = page.evaluate(
        "name => performance.getEntriesByName(name).map(mark => mark.detail ? mark.detail.epoch : null)", name
    )
    return marks


# -- live ---------------------------------------------------------------------------------------------------------


def test_the_chart_gains_points_as_epochs_arrive_without_a_reload(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    operation_id = make_run(ops, 5, total=30, bare=True, name="live-loss")
    open_run(page, operation_id)
    expect(page.get_by_test_id("run-title")).to_have_text("live-loss")
    expect(page.get_by_test_id("run-status")).to_have_text("running")
    expect(page.locator("body[data-last-epoch='4']")).to_have_count(1)
    expect(chart(page)).to_have_attribute("data-points", "5")
    assert performance_marks(page, "trainops:first-chart") == [None]
    page.evaluate("window.__sameDocument = true")

    for epoch in range(5, 12):
        ops.add_epoch(operation_id, EpochRecord(epoch=epoch, train_loss=1.0 / (epoch + 1), val_loss=1.2 / (epoch + 1)))
    ops.report_progress(
        operation_id,
        ProgressState(percentage=40.0, phase="training", message="Processing EURUSD (1/1) [4h] - Computing RSI (1/3)"),
    )

    expect(page.locator("body[data-last-epoch='11']")).to_have_count(1)
    expect(chart(page)).to_have_attribute("data-points", "12")
    expect(page.get_by_test_id("progress-message")).to_have_text("Processing EURUSD (1/1) [4h] - Computing RSI (1/3)")
    assert page.evaluate("window.__sameDocument") is True  # the same page, never reloaded
    assert 11 in performance_marks(page, "trainops:epoch-drawn")
    # a re-sent epoch replaces its point rather than adding one
    ops.add_epoch(operation_id, EpochRecord(epoch=11, train_loss=0.05, val_loss=0.07))
    ops.add_epoch(operation_id, EpochRecord(epoch=12, train_loss=0.04, val_loss=0.06))
    expect(page.locator("body[data-last-epoch='12']")).to_have_count(1)
    expect(chart(page)).to_have_attribute("data-points", "13")
    # the diagnosis follows the new epochs: the best is now the last one
    expect(page.get_by_test_id("best-marker")).to_contain_text("best · epoch 12")
    expect(page.get_by_test_id("run-title").locator("xpath=../..")).to_contain_text("13 / 30")
    # what this run cannot give is disabled: no global step, no learning rate
    expect(page.get_by_test_id("x-step")).to_be_disabled()
    expect(page.get_by_test_id("lr-chart")).to_be_hidden()


def test_a_projected_gain_the_loss_does_not_back_is_drawn_as_not_worth_it(page: Page, dashboard: Dashboard) -> None:
    # a text classifier whose accuracy flips between two values while its validation loss has long stopped falling
    accuracy, loss = flipping_accuracy(31), settled_loss(31)
    operation = dashboard.ops.create_operation(
        metadata={"name": "bert-tiny", "task": "text_classification"}, total_epochs=100
    )
    dashboard.ops.start_operation(operation.operation_id)
    dashboard.ops.add_epochs(
        operation.operation_id,
        [EpochRecord(epoch=e, train_loss=0.5 * 0.97**e, val_loss=loss[e], val_accuracy=accuracy[e]) for e in range(31)],
    )
    open_run(page, operation.operation_id)

    expect(page.get_by_test_id("recommendation")).to_have_attribute("data-action", "stop_and_restore_best")
    expect(page.get_by_test_id("recommendation")).to_contain_text("a gain the loss does not back is luck")
    expect(chart(page)).to_have_attribute("data-projection", "shown")
    label = page.get_by_test_id("projection-label")
    expect(label).to_contain_text("better")  # the projection alone reads a gain...
    expect(label).to_have_class(re.compile(r"\bnot-worth\b"))  # ...drawn as not worth continuing for
    expect(page.get_by_test_id("projected-gain")).to_have_text("6.1% better, overruled: val_loss has stalled too")
    screenshot(page, "run-stall-backed")


def test_a_detector_that_has_found_no_box_yet_shows_how_far_such_runs_went(page: Page, dashboard: Dashboard) -> None:
    # a YOLO run's mAP50 at 0 for its first 12 epochs while its loss falls: no curve to fit, but it may take off
    operation = dashboard.ops.create_operation(metadata={"name": "yolo", "task": "object_detection"}, total_epochs=40)
    dashboard.ops.start_operation(operation.operation_id)
    dashboard.ops.add_epochs(
        operation.operation_id,
        [EpochRecord(epoch=e, train_loss=3.0 * 0.95**e, val_loss=2.5, metrics={"mAP50": 0.0}) for e in range(12)],
    )
    open_run(page, operation.operation_id)

    forecast = dashboard.ops.get_metrics(operation.operation_id).metrics.forecast
    assert forecast is not None and forecast.method == "unmoved"
    expect(page.get_by_test_id("forecast")).to_have_text(  # an mAP is a fraction: shown in percent
        f"0.0% unmoved since epoch 0 (20-80%: 0.0% to {to_fixed(100 * forecast.best_value_q80, 2)}%)"
    )
    expect(page.get_by_test_id("recommendation")).to_have_attribute("data-action", "continue")
    # a curve flat at 0 is drawn on 0-100%, not on uPlot's 0-100 (0-10000% for a fraction)
    expect(chart(page)).to_have_attribute("data-y-ticks", re.compile(r"^0%\|.*\|100%$"))
    screenshot(page, "run-unmoved-forecast")


def test_a_live_run_shows_its_projection_and_progress(page: Page, dashboard: Dashboard) -> None:
    operation_id = make_run(dashboard.ops, 40, total=100, name="mean_reversion · EURUSD 4h · lr 1e-3")
    dashboard.ops.report_progress(operation_id, ProgressState.training(41, 100, batch=37, total_batches=100))
    open_run(page, operation_id)

    expect(chart(page)).to_have_attribute("data-projection", "shown")
    expect(page.get_by_test_id("projection-label")).to_be_visible()
    expect(page.get_by_test_id("projection-label")).to_contain_text("projected best")
    expect(page.get_by_test_id("projection-label")).to_contain_text("by epoch 99")
    expect(page.get_by_test_id("planned-end")).to_have_count(1)
    expect(page.get_by_test_id("recommendation")).to_have_attribute("data-action", "continue")
    forecast = dashboard.ops.get_metrics(operation_id).metrics.forecast
    assert forecast is not None
    expect(page.get_by_test_id("forecast")).to_contain_text(f"by epoch {forecast.best_epoch} (20-80%: ")
    expect(page.get_by_test_id("progress-message")).to_have_text("Epoch 41/100 · Batch 37/100")
    expect(page.get_by_test_id("lr-chart")).to_be_visible()
    expect(page.get_by_test_id("cancel-button")).to_be_visible()
    set_smoothing(page, 0.6)
    page.mouse.move(330, 470)  # the legend shows the values under the cursor
    screenshot(page, "run-live")


def test_a_run_still_improving_at_its_planned_end_says_how_much_longer_it_needs(
    page: Page, dashboard: Dashboard
) -> None:
    ops = dashboard.ops
    operation_id = ops.create_operation(total_epochs=40).operation_id
    ops.start_operation(operation_id)
    falling = [0.2 + math.exp(-0.04 * epoch) for epoch in range(40)]
    ops.add_epochs(operation_id, [EpochRecord(epoch=e, train_loss=v, val_loss=v) for e, v in enumerate(falling)])
    recommendation = ops.get_metrics(operation_id).metrics.recommendation
    assert recommendation.extend_by is not None

    open_run(page, operation_id)

    expect(page.get_by_test_id("recommendation")).to_have_attribute("data-action", "continue")
    expect(page.get_by_test_id("recommendation-reason")).to_have_text(recommendation.reason)
    epochs = f"{recommendation.extend_by} more epoch{'' if recommendation.extend_by == 1 else 's'}"
    expect(page.get_by_test_id("extend-by")).to_contain_text(
        f"Still improving: train {epochs} past the planned end (projected best "
    )
    screenshot(page, "run-extend")


def test_the_diagnosis_is_drawn_on_the_chart_with_its_reason(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    operation_id = make_run(ops, 42, total=100, overfit_from=22, name="overfitting-run")
    diagnosis = ops.get_metrics(operation_id).metrics
    assert diagnosis.is_overfitting and diagnosis.recommendation.action.value.startswith("stop")

    open_run(page, operation_id)

    card = page.get_by_test_id("recommendation")
    expect(card).to_have_attribute("data-action", diagnosis.recommendation.action.value)
    expect(page.get_by_test_id("recommendation-reason")).to_have_text(diagnosis.recommendation.reason)
    expect(page.get_by_test_id("recommendation-reason")).to_contain_text("val_loss rose")
    overfitting = page.locator("[data-testid='signal'][data-rule='overfitting']")
    expect(overfitting).to_contain_text("while train_loss fell")
    expect(overfitting).to_contain_text("since_epoch")  # its evidence, as a key/value list
    expect(page.get_by_test_id("best-marker")).to_contain_text(f"best · epoch {diagnosis.best_epoch}")
    expect(page.get_by_test_id("overfitting-region")).to_contain_text(
        f"overfitting since epoch {diagnosis.overfitting_since_epoch}"
    )
    expect(chart(page)).to_have_attribute("data-best-epoch", str(diagnosis.best_epoch))
    expect(page.get_by_test_id("trend")).to_contain_text("worsening")
    screenshot(page, "run-overfitting")


def test_a_large_change_within_the_noise_reads_as_a_flat_trend_within_its_noise(
    page: Page, dashboard: Dashboard
) -> None:
    ops = dashboard.ops
    operation = ops.create_operation(total_epochs=40)
    values = [1.0, 2.0, 0.5, 1.8, 0.7, 0.2, 1.5, 0.4, 1.9, 2.4]
    ops.add_epochs(operation.operation_id, [EpochRecord(epoch=e, val_loss=v) for e, v in enumerate(values)])
    trend = ops.get_metrics(operation.operation_id).metrics.trend
    assert trend.direction.value == "flat" and trend.within_noise and trend.percent_change is not None

    open_run(page, operation.operation_id)

    expect(page.get_by_test_id("trend")).to_have_text(
        f"→ flat {'+' if trend.percent_change > 0 else ''}{to_fixed(trend.percent_change, 1)}% over epochs "
        "0\N{EN DASH}9, within its noise"
    )


def test_the_chart_helpers_smooth_pair_and_redraw_the_projection_from_its_evidence(
    page: Page, dashboard: Dashboard
) -> None:
    operation_id = make_run(dashboard.ops, 40, total=100)
    metrics = dashboard.ops.get_metrics(operation_id).metrics
    assert metrics.projection is not None
    evidence = metrics.projection.evidence
    open_run(page, operation_id)

    answer = page.evaluate(
        """async (evidence) => {
            const chart = await import("/static/chart.js");
            return {
                constant: chart.emaSmooth([1, 1, 1, 1], 0.9),
                gaps: chart.emaSmooth([2, null, 4, undefined], 0.5),
                off: chart.emaSmooth([3, 1, 2], 0),
                families: chart
                    .metricFamilies(
                        ["train_loss", "val_loss", "learning_rate", "train_f1", "val_f1", "train/box_loss",
                         "val/box_loss"],
                        "val_f1",
                    )
                    .map((family) => family.key),
                curves: chart.projectionCurves(evidence, { mode: "min", samples: 50 }),
                paced: chart.projectionCurves({ ...evidence, learning_rate_pace: 0.9 }, { mode: "min", samples: 50 }),
                // a steep early trend that would carry a loss below 0: its curves stop at 0
                floored: chart.projectionCurves(
                    { ...evidence, level: 0.05, trend_gain: 0.5, noise: 0.2, noise_gain: 0.1, decay_per_window: 1 },
                    { mode: "min", samples: 50, nonNegative: true },
                ),
                numbers: [chart.toNumber("NaN"), chart.toNumber("-Infinity"), chart.toNumber(null)].map(String),
                ranges: [[0, 0], [2, 2], [-3, -3], [0.2, 0.9]].map(([lo, hi]) => chart.linearRange(null, lo, hi)),
                uplotRange: uPlot.rangeNum(0.2, 0.9, 0.1, true),
            };
        }""",
        evidence,
    )

    # debiased: a constant stays itself from the first point; gaps are kept and skipped
    assert answer["constant"] == pytest.approx([1, 1, 1, 1])
    assert answer["gaps"][0] == pytest.approx(2) and answer["gaps"][1] is None
    assert answer["gaps"][2] == pytest.approx((0.5 * 1.0 + 0.5 * 4) / (1 - 0.5**2))  # s_1 = 1 before debiasing
    assert answer["off"] == [3, 1, 2]
    # the monitored pair first, train with val
    assert answer["families"] == [
        "train_f1+val_f1",
        "train_loss+val_loss",
        "learning_rate",
        "train/box_loss+val/box_loss",  # Ultralytics' spelling, paired the same way
    ]
    assert answer["numbers"] == ["NaN", "-Infinity", "null"]
    # a flat curve is padded by a tenth of its value (1 at 0, never below 0 from 0 up); any other is uPlot's own
    flat_zero, flat_two, flat_negative, spread = answer["ranges"]
    assert flat_zero == [0, 1]
    assert flat_two == pytest.approx([1.8, 2.2]) and flat_negative == pytest.approx([-3.3, -2.7])
    assert spread == answer["uplotRange"]
    # the projection as the diagnosis computed it: from the level now, to the projected best at the planned end
    curves = answer["curves"]
    assert curves["epochs"][0] == evidence["to_epoch"]
    assert curves["epochs"][-1] == evidence["to_epoch"] + evidence["epochs_left"] == 99
    assert curves["trend"][0] == pytest.approx(evidence["level"])
    # (each evidence number is rounded to 6 decimals: a sum of two or three is off by up to half a unit each)
    assert curves["trend"][-1] == pytest.approx(evidence["level"] - evidence["trend_gain"], abs=2e-6)
    assert curves["best"][-1] == pytest.approx(evidence["projected_best"], abs=3e-6)
    assert all(low <= high for low, high in zip(curves["lower"], curves["upper"], strict=True))
    # a learning rate still falling slows the trend further: the same gain by the end, more of it early
    paced = answer["paced"]
    assert evidence["trend_gain"] > 0
    assert paced["trend"][-1] == pytest.approx(curves["trend"][-1], abs=1e-6)
    middle = len(paced["trend"]) // 2
    assert paced["trend"][middle] < curves["trend"][middle]
    floored = answer["floored"]
    assert min(floored["trend"] + floored["best"] + floored["worst"] + floored["lower"]) == 0


def test_values_past_sixteen_decades_keep_their_chart_on_a_log_axis(page: Page, dashboard: Dashboard) -> None:
    """uPlot's log ticks stop at 1e-16: a loss of 1e-30 (a memorised training set) or a learning rate decayed to
    1e-25 (drawn on a log axis of its own accord) had thrown from its tick code and left no chart."""
    ops = dashboard.ops
    operation = ops.create_operation(metadata={"strategy": "memorise"}, total_epochs=60)
    ops.start_operation(operation.operation_id)
    ops.add_epochs(
        operation.operation_id,
        [
            EpochRecord(epoch=e, train_loss=10.0 ** (-e / 2), val_loss=1 / (e + 1), learning_rate=10.0 ** (-e / 2.4))
            for e in range(60)
        ],
    )
    open_run(page, operation.operation_id)
    expect(page.get_by_test_id("lr-chart")).to_be_visible()
    expect(page.get_by_test_id("lr-chart").locator("canvas")).to_have_count(1)

    page.get_by_test_id("log-y").check()

    expect(chart(page)).to_have_attribute("data-log-y", "true")
    expect(chart(page)).to_have_attribute("data-y-ticks", re.compile(r"e-1[0-5]"))
    ranges = page.evaluate(
        """async () => {
            const chart = await import("/static/chart.js");
            const spans = [[1e-30, 1e-3], [1e-3, 1e300], [1e-40, 1e-35], [0.5, 2]];
            return spans.map(([lo, hi]) => chart.logRange(null, lo, hi));
        }"""
    )
    (low, _), (_, high), (clipped_low, clipped_high), (near_low, near_high) = ranges
    assert low == 1e-15 and high == 1e15  # clipped to what the axis can label
    assert 1e-15 <= clipped_low < clipped_high < 1e-14
    assert near_low < 0.5 and near_high > 2
    screenshot(page, "run-log-tiny")


def test_values_past_sixteen_decades_keep_their_labels_on_a_linear_axis(page: Page, dashboard: Dashboard) -> None:
    """uPlot's tick spacings stop at 1e16: a loss that diverged to 1e300 had an axis without a single label."""
    ops = dashboard.ops
    operation = ops.create_operation(metadata={"strategy": "diverged"}, total_epochs=10)
    values = [1e300, 6e299, -3e299, 2e299, 1e299]
    ops.add_epochs(operation.operation_id, [EpochRecord(epoch=e, val_loss=v) for e, v in enumerate(values)])
    open_run(page, operation.operation_id)
    expect(chart(page)).to_have_attribute("data-y-ticks", re.compile(r"e\+29\d.*\|.*e\+29\d"))
    screenshot(page, "run-linear-huge")


def test_tick_labels_carry_the_decimals_of_their_step(page: Page, dashboard: Dashboard) -> None:
    """A step of 0.25 needs two decimals: with one, 2.25 read "2.3" on evenly spaced gridlines."""
    ops = dashboard.ops
    operation = ops.create_operation(metadata={"strategy": "ticks"}, total_epochs=10)
    values = [2.5, 1.9, 1.2, 0.7, 0.3, 0.0]
    ops.add_epochs(operation.operation_id, [EpochRecord(epoch=e, val_loss=v) for e, v in enumerate(values)])
    open_run(page, operation.operation_id)
    expect(chart(page)).to_have_attribute("data-y-ticks", re.compile(r"\|"))
    ticks = [float(label) for label in (chart(page).get_attribute("data-y-ticks") or "").split("|")]
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1, f"the labels are not evenly spaced: {ticks}"

    labels = page.evaluate(
        """async () => {
            const chart = await import("/static/chart.js");
            const loss = chart.tickFormatter(null);
            const percent = chart.tickFormatter({ format: "percent" });
            return {
                quarter: loss(null, [2, 2.25, 2.5], 1, 0, 0.25),
                half: loss(null, [0, 2.5, 5], 1, 0, 2.5),
                tens: loss(null, [0, 50, 100], 1, 0, 50),
                small: loss(null, [0.0125, 0.025], 1, 0, 0.0125),
                percent: percent(null, [0.0025, 0.005], 1, 0, 0.0025),
            };
        }"""
    )
    assert labels == {
        "quarter": ["2.00", "2.25", "2.50"],
        "half": ["0.0", "2.5", "5.0"],
        "tens": ["0", "50", "100"],
        "small": ["0.0125", "0.0250"],
        "percent": ["0.25%", "0.50%"],
    }


def test_the_legend_reads_nan_and_infinities_apart_from_not_logged(page: Page, dashboard: Dashboard) -> None:
    """NaN and infinities are gaps in the curves, but the cursor readout says what the record held."""
    ops = dashboard.ops
    operation = ops.create_operation(metadata={"strategy": "diverging"}, total_epochs=10)
    records = [EpochRecord(epoch=e, train_loss=1.0 - 0.1 * e, val_loss=1.1 - 0.1 * e) for e in range(5)]
    records.append(EpochRecord(epoch=5, train_loss=math.inf, val_loss=math.nan))
    ops.add_epochs(operation.operation_id, records)
    open_run(page, operation.operation_id)

    def legend_value(label: str) -> Any:
        row = (
            chart(page)
            .locator(".u-legend .u-series")
            .filter(has=page.locator(".u-label", has_text=re.compile(f"^{label}$")))
        )
        return row.locator(".u-value")

    # the legend shows the latest epoch: train_loss was +Inf there, val_loss NaN
    expect(legend_value("train_loss")).to_have_text("∞")
    expect(legend_value("val_loss")).to_have_text("NaN")

    values = page.evaluate(
        """async () => {
            const chart = await import("/static/chart.js");
            const value = chart.legendValue(null, new Map([[3, -Infinity], [4, NaN]]));
            const u = { data: [[2, 3, 4]] };
            return [value(u, null, 1, 0), value(u, null, 1, 1), value(u, undefined, 1, 2), value(u, 0.5, 1, 0)];
        }"""
    )
    assert values == ["\u2013", "\u2212\u221e", "NaN", "0.5"]  # en dash: not logged; minus sign, infinity


def test_on_a_phone_the_title_stays_readable_and_the_top_bar_wraps(page: Page, dashboard: Dashboard) -> None:
    operation_id = make_run(dashboard.ops, 5, total=20, name="baseline-3 lr=4e-03")
    page.set_viewport_size({"width": 375, "height": 800})
    open_run(page, operation_id)
    title = page.locator(".run-title-row h1")
    expect(title).to_have_text("baseline-3 lr=4e-03")
    sizes = title.evaluate("h => [h.clientWidth, h.scrollWidth]")
    assert sizes[0] >= 150 and sizes[1] <= sizes[0], f"the title is cut: {sizes}"
    # the actions went below the title
    actions = page.locator(".run-actions").bounding_box()
    heading = title.bounding_box()
    assert actions is not None and heading is not None and actions["y"] >= heading["y"] + heading["height"]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page is {width} px wide on a 375 px screen"
    api_link = page.locator(".topbar nav a", has_text="API").bounding_box()
    connection = page.locator("#connection").bounding_box()
    assert api_link is not None and api_link["x"] + api_link["width"] <= 375
    assert connection is not None and connection["x"] + connection["width"] <= 375
    screenshot(page, "run-mobile")


def test_long_texts_stay_inside_the_page(page: Page, dashboard: Dashboard) -> None:
    """A long strategy path, metadata key, cancel reason or result string is cut or wrapped, never widening the
    page nor pushing the run card's other values out of sight."""
    ops = dashboard.ops
    key = "augmentation_pipeline_configuration_for_the_validation_split_" * 3
    metadata = {"strategy": "/mnt/" + "very-long-folder-name/" * 200 + "s.yaml", key: "on", "symbol": "EUR\u202eUSD"}
    operation = ops.create_operation(metadata=metadata, total_epochs=20)
    ops.start_operation(operation.operation_id)
    ops.add_epochs(operation.operation_id, [EpochRecord(epoch=e, train_loss=1 / (e + 1)) for e in range(4)])
    ops.cancel_operation(operation.operation_id, "R" * 1500)
    result = {"checkpoint": "/mnt/checkpoints/" + "x" * 300 + "/model.safetensors", "test_accuracy": 0.5}
    ops.finish_operation(operation.operation_id, "cancelled", result=result)

    open_run(page, operation.operation_id)

    assert page.evaluate("document.documentElement.scrollWidth") <= 1440
    details = page.locator(".details-card dl.kv").first
    executor = details.locator("dt", has_text="Executor")
    expect(executor).to_be_visible()
    value = executor.locator("xpath=following-sibling::dd[1]")
    expect(value).to_have_text("external")
    assert (value.bounding_box() or {"width": 0})["width"] > 40
    strategy = page.locator(".run-meta .fact-value").first
    expect(strategy).to_have_attribute("title", metadata["strategy"])  # whole in its tooltip
    screenshot(page, "run-long-texts")


# -- cancel -------------------------------------------------------------------------------------------------------


def test_cancel_from_the_page_stops_the_run_with_its_reason(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    operation_id = make_run(ops, 8, total=50)
    open_run(page, operation_id)
    reason = "val_loss has not improved for 8 epochs; trying a lower learning rate"

    page.get_by_test_id("cancel-button").click()
    page.get_by_test_id("cancel-reason").fill(reason)
    page.get_by_test_id("cancel-confirm").click()

    expect(page.get_by_test_id("run-status")).to_have_text("cancelling")
    operation = ops.get_operation(operation_id)
    assert operation.cancel_requested and operation.cancel_reason == reason
    assert operation.cancel_request is not None and operation.cancel_request.requested_by == "dashboard"
    # the trainer learns it from its next write, and ends the run cancelled
    ack = ops.add_epoch(operation_id, epoch_record(8))
    assert ack.cancel_requested and ack.cancel_reason == reason
    ops.finish_operation(operation_id, "cancelled")

    expect(page.get_by_test_id("run-status")).to_have_text("cancelled")
    expect(page.get_by_test_id("cancel-button")).to_have_count(0)
    expect(page.get_by_test_id("result-panel")).to_contain_text(reason)
    expect(page.locator("body[data-last-epoch='8']")).to_have_count(1)


def test_the_cancel_dialog_says_so_when_the_run_ends_while_it_is_open(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    operation_id = make_run(ops, 3, total=10)
    open_run(page, operation_id)
    page.get_by_test_id("cancel-button").click()
    page.get_by_test_id("cancel-reason").fill("too slow")

    ops.finish_operation(operation_id, "completed")  # it ends while the dialog is open: its status event arrives

    expect(page.get_by_test_id("run-status")).to_have_text("completed")
    dialog = page.locator("dialog.cancel-dialog")
    expect(dialog.locator(".dialog-error")).to_have_text(
        "This run has already ended (completed): there is nothing to cancel."
    )
    expect(page.get_by_test_id("cancel-confirm")).to_be_disabled()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()


def test_a_cancel_answered_409_shows_a_short_message(page: Page, dashboard: Dashboard, page_log: PageLog) -> None:
    """The run ended before its status event reached the page: the server's 409 reads as one short line, not the
    API's advice to register a new operation."""
    ops = dashboard.ops
    operation_id = make_run(ops, 3, total=10)
    open_run(page, operation_id)
    page.get_by_test_id("cancel-button").click()
    page.get_by_test_id("cancel-reason").fill("too slow")
    refused = {
        "success": False,
        "error": {
            "code": "conflict",
            "message": f"operation {operation_id} is already completed; it accepts no more cancel requests. "
            "Register a new operation to record another run.",
        },
    }
    page.route(
        f"**/api/v1/operations/{operation_id}",
        lambda route: route.fulfill(status=409, json=refused) if route.request.method == "DELETE" else route.fallback(),
    )

    page.get_by_test_id("cancel-confirm").click()

    error = page.locator("dialog.cancel-dialog .dialog-error")
    expect(error).to_have_text("This run has already ended: there is nothing to cancel.")
    expect(page.get_by_test_id("cancel-confirm")).to_be_disabled()
    assert ops.get_operation(operation_id).cancel_requested is False
    page_log.console_errors.clear()  # the browser logs the 409 it was answered


# -- a run that stopped -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
def test_a_stopped_run_gets_no_projection_nor_advice_to_go_on(page: Page, dashboard: Dashboard, ending: str) -> None:
    ops = dashboard.ops
    operation_id = make_run(ops, 12, total=60)  # still improving: a live run would be told to continue
    ops.report_progress(operation_id, ProgressState.training(12, 60, batch=8, total_batches=10))
    if ending == "failed":
        ops.finish_operation(operation_id, "failed", error="CUDA out of memory\nTraceback (most recent call last):")
        said = "CUDA out of memory"
    else:
        ops.cancel_operation(operation_id, "wrong learning rate")
        ops.finish_operation(operation_id, "cancelled")
        said = "Cancelled: wrong learning rate"
    open_run(page, operation_id)

    expect(page.get_by_test_id("progress-message")).to_have_text(said)
    expect(page.locator(".progress-card .phase")).to_have_text(ending)
    expect(page.locator(".progress-card")).not_to_contain_text("Epoch 12/60")
    expect(page.get_by_test_id("recommendation-action")).to_have_text(f"{ending}: no more epochs")
    expect(page.locator(".diagnosis-card h3")).to_have_text("Diagnosis when it stopped")
    expect(page.get_by_test_id("recommendation-reason")).to_contain_text("Its last recommendation, at epoch 11: ")
    expect(page.get_by_test_id("projection-label")).to_have_count(0)
    expect(page.get_by_test_id("planned-end")).to_have_count(0)
    expect(page.get_by_test_id("forecast")).to_have_count(0)
    expect(page.get_by_test_id("best-marker")).to_have_count(1)
    screenshot(page, f"run-{ending}-no-projection")


def test_a_run_cancelled_while_open_loses_its_projection(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    operation_id = make_run(ops, 12, total=60)
    open_run(page, operation_id)
    expect(page.get_by_test_id("projection-label")).to_have_count(1)
    expect(page.locator(".progress-card .phase")).to_have_text("training")

    ops.cancel_operation(operation_id, "enough")
    ops.finish_operation(operation_id, "cancelled")

    expect(page.get_by_test_id("run-status")).to_have_text("cancelled")
    expect(page.get_by_test_id("progress-message")).to_have_text("Cancelled: enough")
    expect(page.locator(".progress-card .phase")).to_have_text("cancelled")
    expect(page.get_by_test_id("projection-label")).to_have_count(0)
    expect(page.get_by_test_id("recommendation-action")).to_have_text("cancelled: no more epochs")


def test_a_forecast_best_already_behind_the_run_reads_no_new_best(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    operation_id = make_run(ops, 40, total=60, overfit_from=12)
    forecast = ops.get_metrics(operation_id).metrics.forecast
    assert forecast is not None and forecast.method == "ensemble" and forecast.best_epoch <= 39, forecast
    open_run(page, operation_id)
    expect(page.get_by_test_id("forecast")).to_contain_text("no new best expected (20-80%: ")
    expect(page.get_by_test_id("forecast")).not_to_contain_text("by epoch")


def test_the_best_epoch_is_marked_on_the_monitored_metrics_chart_only(page: Page, dashboard: Dashboard) -> None:
    operation_id = make_run(dashboard.ops, 30, total=60)
    open_run(page, operation_id)
    expect(page.get_by_test_id("best-marker")).to_have_count(1)  # val_loss, the monitor
    page.get_by_test_id("metric-select").select_option("train_f1+val_f1")  # its best is another epoch's
    expect(chart(page)).to_have_attribute("data-metric", "train_f1+val_f1")
    expect(page.get_by_test_id("best-marker")).to_have_count(0)
    page.get_by_test_id("metric-select").select_option("train_loss+val_loss")
    expect(page.get_by_test_id("best-marker")).to_have_count(1)


# -- controls -----------------------------------------------------------------------------------------------------


def set_smoothing(page: Page, value: float) -> None:
    page.get_by_test_id("smoothing").evaluate(
        "(element, value) => { element.value = String(value); element.dispatchEvent(new Event('input')); }", value
    )


def test_metric_switch_log_y_smoothing_and_x_axis_change_the_chart(page: Page, dashboard: Dashboard) -> None:
    operation_id = make_run(dashboard.ops, 30, total=60)
    steps = [StepRecord(step=step, metrics={"train_loss": 1.2 / (1 + step / 400)}) for step in range(0, 3000, 10)]
    dashboard.ops.add_steps(operation_id, steps)
    open_run(page, operation_id)
    main_chart = chart(page)
    select = page.get_by_test_id("metric-select")

    # the monitored metric's pair first, its direction said
    expect(main_chart).to_have_attribute("data-metric", "train_loss+val_loss")
    expect(select.locator("option").first).to_contain_text("monitored")
    expect(page.get_by_test_id("better")).to_have_text("↓ lower is better")
    loss_ticks = main_chart.get_attribute("data-y-ticks")
    assert loss_ticks and "%" not in loss_ticks

    select.select_option("train_accuracy+val_accuracy")
    expect(main_chart).to_have_attribute("data-metric", "train_accuracy+val_accuracy")
    expect(main_chart).to_have_attribute("data-y-ticks", re.compile(r"^\d+(\.\d+)?%(\|\d+(\.\d+)?%)+$"))
    expect(page.get_by_test_id("better")).to_have_text("↑ higher is better")
    select.select_option("train_f1+val_f1")  # a custom pair, drawn the same way
    expect(main_chart).to_have_attribute("data-metric", "train_f1+val_f1")
    select.select_option("train_loss+val_loss")
    expect(main_chart).to_have_attribute("data-y-ticks", loss_ticks)

    page.get_by_test_id("log-y").check()
    expect(main_chart).to_have_attribute("data-log-y", "true")
    expect(main_chart).not_to_have_attribute("data-y-ticks", loss_ticks)
    page.get_by_test_id("log-y").uncheck()
    expect(main_chart).to_have_attribute("data-y-ticks", loss_ticks)

    legend_rows = main_chart.locator(".u-legend .u-series")
    shown_before = legend_rows.count()
    set_smoothing(page, 0.8)
    expect(main_chart).to_have_attribute("data-smoothing", "0.8")
    # each curve gains its faint raw twin behind the smoothed one
    expect(legend_rows).to_have_count(shown_before + 2)

    page.get_by_test_id("x-step").click()
    expect(main_chart).to_have_attribute("data-x-axis", "step")
    expect(page.get_by_test_id("x-step")).to_have_attribute("aria-pressed", "true")
    # the per-step series joins the epochs, faint, on the step axis
    expect(main_chart.locator(".u-legend .u-series", has_text="train_loss per step")).to_have_count(1)
    page.get_by_test_id("x-time").click()
    expect(main_chart).to_have_attribute("data-x-axis", "time")
    expect(main_chart).to_have_attribute("data-points", "30")

    # the charts follow the window's width
    wide = main_chart.locator(".uplot").evaluate("element => element.offsetWidth")
    page.set_viewport_size({"width": 900, "height": 900})
    page.wait_for_function("limit => document.querySelector('.main-chart .uplot').offsetWidth < limit", arg=wide - 100)
    assert page.evaluate("document.documentElement.scrollWidth") <= 900  # nothing spills sideways


def test_a_failed_run_shows_its_error_and_artifacts_to_download(
    page: Page, dashboard: Dashboard, tmp_path: Path
) -> None:
    ops = dashboard.ops
    operation_id = make_run(ops, 6, total=20)
    weights = tmp_path / "last.safetensors"
    weights.write_bytes(b"weights" * 100)
    ops.log_artifact(operation_id, weights, artifact_path="checkpoints")
    ops.finish_operation(operation_id, "failed", error="RuntimeError: CUDA out of memory at epoch 6")

    open_run(page, operation_id)

    expect(page.get_by_test_id("run-status")).to_have_text("failed")
    expect(page.get_by_test_id("run-error")).to_have_text("RuntimeError: CUDA out of memory at epoch 6")
    link = page.get_by_test_id("artifacts").get_by_role("link", name="checkpoints/last.safetensors")
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href is not None
    assert httpx.get(dashboard.url + href).content == weights.read_bytes()
    # every stored epoch as CSV
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("epoch,step,timestamp,duration,train_loss,val_loss,train_accuracy,val_accuracy")
    assert [line.split(",")[0] for line in lines[1:]] == [str(epoch) for epoch in range(6)]


def x_range(page: Page) -> list[float]:
    scale: list[float] = chart(page).evaluate("element => [element.plot.scales.x.min, element.plot.scales.x.max]")
    return scale


def test_a_zoomed_chart_keeps_its_window_as_epochs_arrive(page: Page, dashboard: Dashboard) -> None:
    operation_id = make_run(dashboard.ops, 30, total=60)
    open_run(page, operation_id)
    whole = x_range(page)
    plot = chart(page).locator(".u-over")
    box = plot.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 100, box["y"] + 80)
    page.mouse.down()
    page.mouse.move(box["x"] + 300, box["y"] + 80, steps=4)
    page.mouse.up()
    zoomed = x_range(page)
    assert whole[0] < zoomed[0] < zoomed[1] < whole[1]

    dashboard.ops.add_epoch(operation_id, epoch_record(30))

    expect(page.locator("body[data-last-epoch='30']")).to_have_count(1)
    assert x_range(page) == zoomed
    plot.dblclick()  # back to the whole run
    assert x_range(page) == whole


# -- states -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("op_training_20260101_000000_abcdef12", "op_training_20260101_000000_abcdef12"),
        ("%E0%A4%A", "%E0%A4%A"),  # a broken escape: kept as typed
        ("..%2F..%2Fhealth", "../../health"),  # an encoded slash: still the run page, not the API's JSON
        ("%3Cb%3Ehi%3C%2Fb%3E", "<b>hi</b>"),
        ("x" * 5000, "x" * 5000),  # longer than any id: the API's 422 is no run either
    ],
)
def test_an_unknown_id_shows_no_such_run(
    page: Page, dashboard: Dashboard, page_log: PageLog, address: str, shown: str
) -> None:
    page.goto(f"/runs/{address}")
    expect(page.get_by_test_id("not-found")).to_contain_text("No such run")
    expect(page.get_by_test_id("not-found").locator("code")).to_have_text(shown)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440  # a long id wraps
    assert not [error for error in page_log.console_errors if error.startswith("uncaught")]
    page_log.console_errors.clear()  # the browser logs the 404 (or 422) it was answered


@pytest.fixture
def strategy_training_env(market_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample market data, the repository's strategies and a models directory for the dashboard's server,
    whose settings read them from the environment when it starts."""
    monkeypatch.setenv("TRAINOPS_DATA_DIR", str(market_data))
    monkeypatch.setenv("TRAINOPS_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("TRAINOPS_STRATEGIES_DIR", str(STRATEGIES))


@pytest.mark.usefixtures("strategy_training_env")
def test_a_finished_strategy_training_shows_its_result_panel(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    started = ops.start_training(TrainingRequest(strategy="mean_reversion", config={"epochs": 6}))
    deadline = time.monotonic() + 120
    while (operation := ops.get_operation(started.task_id)).is_active:
        assert time.monotonic() < deadline, "the training did not end in 120 s"
        time.sleep(0.2)
    assert operation.status == "completed", operation.error
    result = operation.result or {}
    classes = list(result["test_metrics"]["per_class"])

    open_run(page, started.task_id)

    panel = page.get_by_test_id("result-panel")
    expect(panel).to_be_visible()
    matrix = page.get_by_test_id("confusion-matrix")
    expect(matrix.locator("tbody tr")).to_have_count(len(classes))
    expect(matrix.locator("tbody td.cell")).to_have_count(len(classes) ** 2)
    expect(matrix.locator("thead th").nth(1)).to_have_text(classes[0])
    first_cell = result["test_metrics"]["confusion_matrix"][0][0]
    expect(matrix.locator("tbody td.cell").first).to_contain_text(str(first_cell))
    expect(panel.locator(".tile[data-metric='test_accuracy']")).to_contain_text("%")
    baseline = panel.locator(".tile[data-metric='baseline_accuracy']")
    expect(baseline).to_contain_text("baseline")
    expect(baseline).to_have_attribute("title", re.compile("always predicting the training split's most frequent"))
    purged = result["data"].get("purged_rows", 0)
    expect(panel).to_contain_text(
        f"{result['data']['rows']['test']:,} test" + (f" · {purged:,} purged" if purged else "")
    )
    expect(baseline).to_contain_text(f"{to_fixed(result['test_metrics']['baseline_accuracy'] * 100, 2)}%")
    if result.get("model_version"):
        expect(page.get_by_test_id("model-version")).to_contain_text(result["model_version"])
    expect(page.get_by_test_id("cancel-button")).to_have_count(0)
    last_epoch = ops.get_metrics(started.task_id).metrics.epochs[-1].epoch
    expect(page.locator(f"body[data-last-epoch='{last_epoch}']")).to_have_count(1)
    screenshot(page, "run-result")
