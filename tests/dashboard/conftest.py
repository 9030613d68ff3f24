"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright against a live server.

Every page a test opens is watched: a request that leaves the server's origin, a console error or an uncaught
exception fails the test at its end. Screenshots go to ``build/screenshots/`` (``SCREENSHOTS``), for people to look
at; the README's image is one of them, copied by hand.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, sync_playwright

from tests.live_server import LiveServer
from trainops.client import HttpTrainOps, TrainOps
from trainops.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.browser


@dataclass
class Dashboard:
    """A live server with the dashboard, and a client of it to make runs with."""

    url: str
    ops: TrainOps
    settings: Settings
    server: LiveServer


@pytest.fixture
def dashboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dashboard]:
    """The dashboard's server on a fresh SQLite database (the pages are a client of the REST API, whose tests
    cover PostgreSQL), with an events stream that looks for changes every 50 ms."""
    for name in ("TRAINOPS_URL", "TRAINOPS_API_TOKEN", "TRAINOPS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(
        home=tmp_path / "home",
        progress_interval=0.0,
        reaper_interval=0,
        events_poll_interval=0.05,
        events_keepalive=2.0,
    )
    with LiveServer(settings) as server, HttpTrainOps(server.url) as ops:
        yield Dashboard(url=server.url, ops=ops, settings=settings, server=server)


# Module-scoped, not session-scoped: Playwright's sync API runs an asyncio loop in the main thread while it is
# open, and tests after the dashboard's that call asyncio.run() (the MCP and Ray tests) would find it running.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("the browser tests need Chromium: apt-get install -y chromium (make test installs it)")
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
    yield browser
    browser.close()


@dataclass
class PageLog:
    """What a page did that a test must not see: requests elsewhere, console errors, uncaught exceptions."""

    origin: str
    foreign_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        url = request.url
        self.requests.append(url)
        if not (url.startswith(self.origin + "/") or url.startswith(("data:", "blob:", "about:"))):
            self.foreign_requests.append(url)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def on_page_error(self, error: Exception) -> None:
        self.console_errors.append(f"uncaught: {error}")


@pytest.fixture
def page_log(dashboard: Dashboard) -> PageLog:
    return PageLog(origin=dashboard.url)


@pytest.fixture
def page(browser: Browser, dashboard: Dashboard, page_log: PageLog) -> Iterator[Page]:
    """A fresh browser tab (1440 x 900) on the dashboard's server; at its end, no request has left the server's
    origin and nothing was logged as an error. A test that expects an error (a 401 the page answers with its
    token dialog, say) clears ``page_log.console_errors`` itself."""
    with watched_page(browser, dashboard.url, page_log) as page:
        yield page


@contextmanager
def watched_page(browser: Browser, url: str, log: PageLog) -> Iterator[Page]:
    """A fresh browser tab (1440 x 900) on ``url`` whose requests and errors go to ``log``; when the block ends,
    it fails if a request left ``url``'s origin or anything was logged as an error."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("request", log.on_request)
    page.on("console", log.on_console)
    page.on("pageerror", log.on_page_error)
    try:
        yield page
    finally:
        context.close()
    assert log.foreign_requests == [], "the page sent requests outside the server's origin"
    assert log.console_errors == [], "the page logged errors"


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``build/screenshots/<name>.png``, for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def to_fixed(value: float, digits: int) -> str:
    """``value.toFixed(digits)`` as the page's JavaScript writes it: of two equally near, the one further from zero
    (toFixed rounds the magnitude). Python's format rounds such a tie to even, so 41.25 is "41.3" on the page and
    "41.2" in an f-string.

    >>> to_fixed(41.25, 1), f"{41.25:.1f}"
    ('41.3', '41.2')
    """
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))
