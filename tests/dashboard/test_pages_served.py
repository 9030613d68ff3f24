"""The pages and the docs page are served by trainops itself and load without a request elsewhere."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import Dashboard, PageLog, screenshot


def test_every_page_answers_html_with_a_policy_that_keeps_it_on_this_server(dashboard: Dashboard) -> None:
    for path in ("/", "/runs/op_training_20260101_000000_abcdef12", "/compare", "/models"):
        response = httpx.get(dashboard.url + path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "script-src 'self'" in policy
    assert httpx.get(dashboard.url + "/static/vendor/uplot/uPlot.iife.min.js").status_code == 200


def test_the_api_docs_page_renders_offline_from_the_servers_own_swagger_ui(
    page: Page, dashboard: Dashboard, page_log: PageLog
) -> None:
    page.goto("/api/v1/docs")
    # Swagger UI drew the document: the operations routes are listed
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    expect(page.get_by_text("/api/v1/operations/{operation_id}/events").first).to_be_visible()
    assert any(url.endswith("/static/vendor/swagger-ui/swagger-ui-bundle.js") for url in page_log.requests)
    screenshot(page, "api-docs")
