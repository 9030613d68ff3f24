"""The run page at its edges: zooming into a long history thinned for display reads the zoomed epochs in full, a
run deleted while its page is open is said to be gone, a server outage is shown as one (and its end noticed within
seconds), a log axis leaves a gap where it cannot draw, and many non-finite markers keep their labels apart."""

from __future__ import annotations

import math
import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Dashboard, PageLog, screenshot
from tests.dashboard.test_run_page import chart, make_run, open_run
from trainops.core.epoch import EpochRecord

pytestmark = pytest.mark.browser


def drawn_epochs(page: Page, low: float, high: float) -> list[float]:
    """The x values of the main chart's data between ``low`` and ``high``: what uPlot draws there."""
    xs: list[float] = chart(page).evaluate(
        "(element, [low, high]) => Array.from(element.plot.data[0]).filter(x => x >= low && x <= high)", [low, high]
    )
    return xs


def test_zooming_into_a_thinned_history_draws_every_epoch_of_the_range(
    page: Page, dashboard: Dashboard, page_log: PageLog
) -> None:
    ops = dashboard.ops
    operation = ops.create_operation(metadata={"strategy": "long"}, total_epochs=5000)
    records = [
        EpochRecord(
            epoch=e,
            train_loss=0.3 + math.exp(-e / 900) + 0.05 * math.sin(e * 1.7),
            val_loss=0.4 + math.exp(-e / 1000) + 0.07 * math.cos(e * 2.3),
        )
        for e in range(5000)
    ]
    ops.add_epochs(operation.operation_id, records)
    ops.finish_operation(operation.operation_id, "completed")
    open_run(page, operation.operation_id)
    expect(page.get_by_text(re.compile(r"Showing [\d,]+ of 5,000 epochs, thinned"))).to_be_visible()
    thinned = int(chart(page).get_attribute("data-points") or 0)
    assert thinned < 5000
    assert len(drawn_epochs(page, 2895, 2923)) < 29  # the sample leaves epochs of the range out

    chart(page).evaluate("element => element.plot.setScale('x', { min: 2895, max: 2923 })")  # as a drag does

    expect(chart(page)).to_have_attribute("data-detail", re.compile(r"^\d+-\d+$"))
    assert drawn_epochs(page, 2895, 2923) == list(range(2895, 2924))  # every epoch of the range
    ranged = [url for url in page_log.requests if "from_epoch=" in url]
    assert ranged and "to_epoch=" in ranged[-1]
    values = chart(page).evaluate(
        """element => {
            const u = element.plot;
            const i = u.data[0].indexOf(2900);
            return u.data.slice(1, 3).map(column => column[i]);
        }"""
    )
    assert values == pytest.approx([records[2900].train_loss, records[2900].val_loss])
    expect(page.get_by_text("Zoomed in: epochs")).to_be_visible()
    screenshot(page, "run-zoomed-thinned")

    chart(page).locator(".u-over").dblclick()  # zoom out: the whole thinned curve again
    expect(chart(page)).to_have_attribute("data-detail", "")
    expect(chart(page)).to_have_attribute("data-points", str(thinned))
    expect(page.get_by_text("Zoomed in: epochs")).to_have_count(0)


def test_a_run_deleted_while_its_page_is_open_says_so(page: Page, dashboard: Dashboard, page_log: PageLog) -> None:
    operation_id = make_run(dashboard.ops, 12, total=12)
    dashboard.ops.finish_operation(operation_id, "completed")
    open_run(page, operation_id)
    actions = page.locator(".run-actions")
    expect(actions.get_by_role("link", name="Export CSV")).to_be_visible()

    dashboard.ops.delete_operation(operation_id)
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # back to the tab

    expect(page.locator("#banner")).to_contain_text("This run was deleted")
    expect(page.get_by_test_id("deleted-note")).to_have_text("This run was deleted")
    expect(actions.get_by_role("link")).to_have_count(0)
    for label in ("Compare", "Export CSV"):
        expect(actions.get_by_role("button", name=label)).to_be_disabled()
    screenshot(page, "run-deleted")
    # the browser logs the 404 that told the page
    page_log.console_errors = [error for error in page_log.console_errors if "404" not in error]


def test_a_live_run_whose_stream_answers_404_says_it_was_deleted(
    page: Page, dashboard: Dashboard, page_log: PageLog
) -> None:
    operation_id = make_run(dashboard.ops, 5, total=50)
    page.route(re.compile(r".*/events(\?.*)?$"), lambda route: route.fulfill(status=404, json={"success": False}))
    open_run(page, operation_id)
    expect(page.locator("body[data-deleted='1']")).to_have_count(1)
    expect(page.get_by_role("button", name="Cancel run")).to_be_disabled()
    page_log.console_errors = [error for error in page_log.console_errors if "404" not in error]


def test_a_server_outage_shows_a_banner_stops_the_clock_and_ends_promptly(
    page: Page, dashboard: Dashboard, page_log: PageLog
) -> None:
    operation_id = make_run(dashboard.ops, 5, total=50)
    events = re.compile(r".*/events(\?.*)?$")
    page.route(events, lambda route: route.abort("connectionrefused"))  # the server is down for the stream
    open_run(page, operation_id)

    expect(page.locator("#banner")).to_contain_text("cannot be reached", timeout=8_000)
    expect(page.locator("#connection")).to_have_text("reconnecting…")
    duration = page.locator(".fact", has_text="duration").locator(".num")
    frozen = duration.text_content()
    page.wait_for_timeout(2200)  # not time.sleep: the route handler must go on answering the page's tries
    assert duration.text_content() == frozen  # the clock stopped with the page's knowledge of the run
    screenshot(page, "run-outage")

    page.wait_for_timeout(10_000)  # long enough for an uncapped back-off to wait 16 s before its next try
    page.unroute(events)
    began = time.monotonic()
    expect(page.locator("#connection")).to_have_text("live", timeout=6_000)
    assert time.monotonic() - began < 5.5
    expect(page.locator("#banner")).to_be_hidden()
    expect(duration).not_to_have_text(frozen or "")  # ticking again
    page_log.console_errors = [error for error in page_log.console_errors if "ERR_CONNECTION_REFUSED" not in error]


def test_log_y_leaves_a_gap_where_values_are_not_positive(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    operation = ops.create_operation(metadata={"strategy": "crossing"}, total_epochs=30)
    values = [0.5 - 0.05 * e if e < 10 else (-0.05 if e < 19 else 0.05 + 0.01 * e) for e in range(30)]
    ops.add_epochs(
        operation.operation_id, [EpochRecord(epoch=e, val_loss=v, train_loss=v + 0.1) for e, v in enumerate(values)]
    )
    open_run(page, operation.operation_id)
    page.get_by_test_id("log-y").check()
    expect(chart(page)).to_have_attribute("data-log-y", "true")

    gaps = chart(page).evaluate(
        """element => {
            const u = element.plot;
            const column = u.series.findIndex(series => series.label === "val_loss");
            const at = epoch => u.data[column][u.data[0].indexOf(epoch)];
            return [[10, 14, 18].map(epoch => at(epoch) === null), [9, 19].map(epoch => typeof at(epoch))];
        }"""
    )
    assert gaps == [[True, True, True], ["number", "number"]]  # null: a gap; undefined would be joined across
    # the cursor still reads what the epoch held
    legend = chart(page).evaluate(
        """element => {
            const u = element.plot;
            const column = u.series.findIndex(series => series.label === "val_loss");
            return u.series[column].value(u, null, column, u.data[0].indexOf(12));
        }"""
    )
    assert legend == "-0.05"
    screenshot(page, "run-log-y-gap")


def test_many_non_finite_labels_do_not_pile_up(page: Page, dashboard: Dashboard) -> None:
    ops = dashboard.ops
    operation = ops.create_operation(metadata={"strategy": "diverging"}, total_epochs=40)
    records = [EpochRecord(epoch=e, train_loss=1.0 - 0.02 * e, val_loss=1.1 - 0.02 * e) for e in range(30)]
    for e in (10, 11, 12, 27, 28, 29):
        records[e] = EpochRecord(epoch=e, train_loss=math.inf if e < 20 else math.nan, val_loss=math.nan)
    ops.add_epochs(operation.operation_id, records)
    open_run(page, operation.operation_id)

    markers = chart(page).get_by_test_id("nonfinite-marker")
    expect(markers).to_have_count(12)  # every marker kept
    boxes = chart(page).evaluate(
        """element => [...element.querySelectorAll('[data-testid="nonfinite-marker"] .overlay-line-label')]
            .filter(label => !label.hidden)
            .map(label => { const r = label.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"""
    )
    assert len(boxes) >= 4  # the first of each cluster and those stacked under them stay readable
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap, (a, b)
    hidden = chart(page).locator("[data-testid='nonfinite-marker'][data-label-hidden='true']")
    if hidden.count():
        assert hidden.first.get_attribute("title")  # the hidden label's text is the line's tooltip
    screenshot(page, "run-nonfinite-labels")
