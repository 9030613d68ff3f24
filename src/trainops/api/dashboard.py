"""The dashboard's pages and static files, and the OpenAPI docs page, all served from this server (no CDN).

Pages: ``/`` (runs), ``/runs/{operation_id}`` (one run), ``/compare?ids=a,b`` and ``/models``. Each is the same
HTML shell naming its page's script; the scripts read the REST API and the events stream with the token the person
typed (kept in the browser's local storage), like any other client. The pages and ``/static`` need no token: they
hold no data.
"""

from __future__ import annotations

import html
import logging
from functools import cache

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from trainops.dashboard import STATIC_DIR, missing_vendor_files

logger = logging.getLogger("trainops.api")

STATIC_PREFIX = "/static"

PAGES = {"runs": "Runs", "run": "Run", "compare": "Compare", "models": "Models"}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # uPlot and Swagger UI size and place their elements with inline style attributes
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""Nothing a page loads or sends leaves this server; no inline script runs."""

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@cache
def _shell() -> str:
    return (STATIC_DIR / "page.html").read_text(encoding="utf-8")


def page(name: str) -> HTMLResponse:
    """The HTML shell with the page's title and script filled in."""
    body = _shell().replace("{{page}}", name).replace("{{title}}", html.escape(PAGES[name]))
    return HTMLResponse(body, headers=PAGE_HEADERS)


@router.get("/")
async def runs_page() -> Response:
    return page("runs")


@router.get("/runs")
async def runs_redirect() -> Response:
    return RedirectResponse("/", status_code=308)


@router.get("/runs/{operation_id:path}")
async def run_page(operation_id: str) -> Response:
    # the script reads the id from the address and shows "no such run" itself, as it does for one deleted later;
    # ``:path``, so an id holding an encoded slash (``..%2Fx``) gets the page too, not the API's JSON 404
    return page("run")


@router.get("/compare")
async def compare_page() -> Response:
    return page("compare")


@router.get("/models")
async def models_page() -> Response:
    return page("models")


@router.get("/favicon.ico")
async def favicon() -> Response:
    return RedirectResponse(f"{STATIC_PREFIX}/favicon.svg", status_code=308)


def docs_page(openapi_url: str) -> HTMLResponse:
    """Swagger UI from this server's own copy (``static/vendor/swagger-ui``), set up by ``static/docs.js``."""
    body = (STATIC_DIR / "docs.html").read_text(encoding="utf-8").replace("{{openapi_url}}", html.escape(openapi_url))
    return HTMLResponse(body, headers=PAGE_HEADERS)


def install_dashboard(app: FastAPI, *, docs_path: str, openapi_url: str) -> None:
    """Mount the pages, ``/static`` and the docs page on ``app``."""
    missing = missing_vendor_files()
    if missing:
        logger.warning(
            "the dashboard's charts and docs page lack %s: run `python web/vendor.py` in a source checkout "
            "(make does), or install a built wheel",
            ", ".join(missing),
        )
    app.include_router(router)

    async def docs() -> Response:
        return docs_page(openapi_url)

    app.add_api_route(docs_path, docs, include_in_schema=False)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
