"""A server with an API token: the pages hold no data until the person gives the token, then work as usual (the
events stream included: it is read with fetch, so the token travels in a header, never in the address)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.dashboard.conftest import PageLog, watched_page
from tests.live_server import LiveServer
from trainops.client import HttpTrainOps
from trainops.core.epoch import EpochRecord
from trainops.settings import Settings

TOKEN = "dashboard-test-token-0123456789"


@pytest.fixture
def guarded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, HttpTrainOps]]:
    for name in ("TRAINOPS_URL", "TRAINOPS_API_TOKEN", "TRAINOPS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(home=tmp_path / "home", api_token=TOKEN, reaper_interval=0, events_poll_interval=0.05)
    with LiveServer(settings) as server, HttpTrainOps(server.url, token=TOKEN) as ops:
        yield server.url, ops


def test_the_pages_ask_for_the_token_then_draw_and_follow_the_run(
    browser: Browser, guarded: tuple[str, HttpTrainOps]
) -> None:
    url, ops = guarded
    log = PageLog(origin=url)
    operation = ops.create_operation(metadata={"name": "guarded run"}, total_epochs=20)
    ops.start_operation(operation.operation_id)
    for epoch in range(1, 4):
        ops.add_epoch(operation.operation_id, EpochRecord(epoch=epoch, train_loss=1 / epoch, val_loss=1.2 / epoch))
    with watched_page(browser, url, log) as page:
        page.goto(f"/runs/{operation.operation_id}")
        dialog = page.locator("#token-dialog")
        expect(dialog).to_be_visible()
        expect(page.locator("#banner")).to_contain_text("bearer token")
        # the only errors so far are the browser's own lines for the refused requests
        assert log.console_errors and all("401" in line for line in log.console_errors)
        log.console_errors.clear()

        page.locator("#token-input").fill(TOKEN)
        page.locator("#token-form button.primary").click()
        expect(page.locator("body")).to_have_attribute("data-last-epoch", "3")
        expect(page.get_by_test_id("run-title")).to_contain_text("guarded run")
        ops.add_epoch(operation.operation_id, EpochRecord(epoch=4, train_loss=0.2, val_loss=0.25))
        expect(page.locator("body")).to_have_attribute("data-last-epoch", "4")  # the stream, with the token

        page.goto("/")
        expect(page.get_by_test_id("run-row")).to_have_count(1)
        assert all(TOKEN not in request for request in log.requests)  # never in an address
