"""Refusals made before a request is read (``api/guards.py``): a token server refuses a request without the token
before it reads the body, and no server obeys a write that another site's page sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.live_server import LiveServer
from trainops.api.app import API_PREFIX, OPEN_PATHS, create_app
from trainops.client import HttpTrainOps
from trainops.core.operation import OperationStatus
from trainops.settings import Settings

TOKEN = "guard-test-token-0123456789"

# the guards read headers only: the database behind them does not change what they refuse
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def token_server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings.model_copy(update={"api_token": TOKEN})) as server:
        yield server


@pytest.fixture
def open_server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as server:
        yield server


def test_a_request_without_the_token_is_refused_before_its_body_is_read(token_server: LiveServer) -> None:
    malformed = b"{" + b" " * 7_000_000  # not JSON: a server that read it first would answer 422
    with httpx.Client(base_url=token_server.url, timeout=30) as http:
        refused = http.post(f"{API_PREFIX}/operations", content=malformed, headers={"Content-Type": "application/json"})
        read = http.post(
            f"{API_PREFIX}/operations",
            content=malformed,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )
        unknown = http.get(f"{API_PREFIX}/no-such-endpoint")
        health = http.get(f"{API_PREFIX}/health")
        document = http.get(f"{API_PREFIX}/openapi.json")

    assert refused.status_code == 401, refused.text
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["error"]["code"] == "unauthorized"
    assert "Authorization: Bearer" in refused.json()["error"]["message"]
    assert read.status_code == 422  # with the token, the body is read (and found malformed)
    assert unknown.status_code == 401  # the API's paths say nothing to a caller without the token
    assert health.status_code == document.status_code == 200


def test_the_paths_open_without_a_token_are_the_routes_that_do_not_check_it(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"api_token": TOKEN}))
    document = app.openapi()  # a route that checks the token declares it (``security``) for each of its methods
    unchecked = {
        path
        for path, methods in document["paths"].items()
        if any(not operation.get("security") for operation in methods.values())
    }

    # and the two that are not in the document: the document itself and the docs page that reads it
    assert unchecked | {app.openapi_url, f"{API_PREFIX}/docs"} == set(OPEN_PATHS)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame, a file:// page
        {"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"},  # another port of this machine
        {"Sec-Fetch-Site": "cross-site"},
    ],
    ids=["other-origin", "null-origin", "other-port", "cross-site"],
)
def test_a_write_another_site_sent_is_refused_and_changes_nothing(
    open_server: LiveServer, headers: dict[str, str]
) -> None:
    with HttpTrainOps(open_server.url) as ops, httpx.Client(base_url=open_server.url) as http:
        operation = ops.create_operation(metadata={"name": "queued"})
        path = f"{API_PREFIX}/operations/{operation.operation_id}"
        start = http.post(f"{path}/start", headers=headers)  # no body: the browser sends it without asking first
        cancel = http.delete(path, params={"reason": "no"}, headers=headers)
        read = http.get(path, headers=headers)

        assert start.status_code == cancel.status_code == 403, start.text
        error = start.json()["error"]
        assert error["code"] == "cross_site_request"
        assert "another site" in error["message"]
        assert read.status_code == 200  # reading is not refused: the browser keeps the answer from the page
        stored = ops.get_operation(operation.operation_id)
        assert stored.status is OperationStatus.PENDING and stored.cancel_request is None


@pytest.mark.parametrize(
    "headers",
    [
        {},  # a program: the client, curl, the callbacks
        {"Sec-Fetch-Site": "same-origin"},  # the dashboard's own page
        {"Origin": "{url}"},  # a browser that sends no Sec-Fetch-Site, from the server's own page
    ],
    ids=["program", "same-origin", "own-origin"],
)
def test_writes_from_programs_and_the_servers_own_pages_pass(open_server: LiveServer, headers: dict[str, str]) -> None:
    sent = {name: value.format(url=open_server.url) for name, value in headers.items()}
    with HttpTrainOps(open_server.url) as ops, httpx.Client(base_url=open_server.url) as http:
        operation = ops.create_operation(metadata={"name": "queued"})
        started = http.post(f"{API_PREFIX}/operations/{operation.operation_id}/start", headers=sent)

    assert started.status_code == 200, started.text


@pytest.mark.browser
def test_a_page_of_another_origin_cannot_start_a_queued_run_in_a_real_browser(open_server: LiveServer) -> None:
    """The attack as a browser makes it: a page served from another port of this machine (the same site, another
    origin) sends a bodiless POST (``no-cors``: the page never reads the answer, and the browser asks nobody first).
    """
    from playwright.sync_api import sync_playwright

    from tests.dashboard.conftest import CHROMIUM

    with HttpTrainOps(open_server.url) as ops:
        operation = ops.create_operation(metadata={"name": "queued"})
        target = f"{open_server.url}{API_PREFIX}/operations/{operation.operation_id}/start"
        page = f"<script>fetch({json.dumps(target)}, {{method: 'POST', mode: 'no-cors'}})</script>".encode()
        with _serving(page) as attacker, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                tab = browser.new_page()
                with tab.expect_response(lambda response: response.url == target, timeout=10_000) as answer:
                    tab.goto(attacker)
                status = answer.value.status
            finally:
                browser.close()

        assert status == 403  # the request reached the server, which refused it
        assert ops.get_operation(operation.operation_id).status is OperationStatus.PENDING


@contextmanager
def _serving(body: bytes) -> Iterator[str]:
    """A web server on another loopback port answering every GET with the page ``body``: its address."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
