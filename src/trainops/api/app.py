"""The FastAPI application: REST under ``/api/v1``, OpenAPI docs at ``/api/v1/docs``, the dashboard at ``/``."""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from trainops import extras
from trainops.api.dashboard import install_dashboard
from trainops.api.deps import require_json, require_token
from trainops.api.errors import install_error_handlers
from trainops.api.guards import RequestGuardMiddleware
from trainops.api.hosts import HostCheckMiddleware, allowed_hosts
from trainops.api.limits import BodySizeLimitMiddleware
from trainops.api.openapi import TRAIN_EXTRA_ERRORS, install_openapi
from trainops.api.query_numbers import no_nul_in_url, plain_query_numbers, single_query_values
from trainops.api.routes import artifacts, events, health, metrics, operations
from trainops.executors.base import Executor, open_executor
from trainops.executors.reaper import Reaper
from trainops.service.artifacts import open_artifacts
from trainops.service.bootstrap import open_registry, open_service, open_training
from trainops.service.operations import OperationsService
from trainops.settings import Settings, get_settings
from trainops.version import trainops_version

API_PREFIX = "/api/v1"
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
DOCS_PATH = f"{API_PREFIX}/docs"
OPEN_PATHS = (f"{API_PREFIX}/health", OPENAPI_PATH, DOCS_PATH)
"""The API's paths that need no token: liveness, the OpenAPI document and the docs page that reads it."""

logger = logging.getLogger("trainops.api")


def start_service(settings: Settings) -> OperationsService:
    """Open the service a server runs on, and fail the operations a previous server left running."""
    service = open_service(settings)
    orphans = service.recover_orphans("local")
    if orphans:
        logger.warning("marked %d operation(s) left running by a previous server as failed", len(orphans))
    return service


def create_app(
    settings: Settings | None = None,
    *,
    service: OperationsService | None = None,
    executor: Executor | None = None,
    bound_host: str | None = None,
) -> FastAPI:
    """Build the API app.

    Args:
        settings: Configuration; :func:`get_settings` when omitted.
        service: An already open service (tests, embedding); otherwise one is opened on ``settings``' database
            at start-up, and operations a previous server left running are marked failed.
        executor: An already open executor on ``service`` (``trainops serve`` opens it first, so a Ray cluster
            that cannot be reached is a one-line error); otherwise the one ``TRAINOPS_EXECUTOR`` names is opened
            at start-up. Either way a reaper thread watches its jobs (``TRAINOPS_REAPER_INTERVAL``).
        bound_host: The address the server listens on (``trainops serve`` passes its ``--host``): requests whose
            ``Host`` names another are refused (``api/hosts.py``), with ``TRAINOPS_ALLOWED_HOSTS`` adding names.
            Without it (an app built in-process) only ``TRAINOPS_ALLOWED_HOSTS``, when set, is checked.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = getattr(app.state, "service", None) is None
        if opened:
            app.state.service = start_service(settings)
        if executor is None:
            app.state.executor = open_executor(app.state.service, settings)
        reaper = Reaper(
            app.state.service, app.state.executor, interval=settings.reaper_interval, grace=settings.cancel_grace
        )
        if settings.reaper_interval > 0:
            reaper.start()
        app.state.artifacts = open_artifacts(settings, app.state.service)
        if extras.is_installed("train"):
            app.state.training = open_training(settings, app.state.service)
            app.state.registry = open_registry(settings, app.state.service)
        # Everything alive now (FastAPI's models and routes, SQLAlchemy's metadata, imported modules: some 100k
        # objects) lives as long as the server. Freezing it keeps the collector's full passes from re-scanning
        # it: measured here, a full pass fell from ~67 ms to well under 1 ms, and those pauses were the
        # latency tail of busy polling.
        gc.freeze()
        try:
            yield
        finally:
            reaper.stop()
            app.state.executor.shutdown()
            if opened:  # a service handed in belongs to whoever opened it
                app.state.service.store.engine.dispose()
                app.state.service = None

    app = FastAPI(
        title="trainops",
        version=trainops_version(),
        summary="Run, watch and steer model training.",
        # the docs page is the dashboard's own (install_dashboard): FastAPI's loads Swagger UI from a CDN, blank
        # without internet
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_PATH,
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.executor = executor
    app.state.settings = settings
    app.state.api_token = settings.api_token
    train_routers, train_uploads = _train_routers()
    # the artifact and model version uploads stream to disk and enforce TRAINOPS_MAX_ARTIFACT_BYTES themselves
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        exempt=[artifacts.UPLOAD_ROUTE, *train_uploads],
    )
    # outside the size limit: a request refused for its token or its origin is not read at all
    app.add_middleware(
        RequestGuardMiddleware,
        token=settings.api_token,
        prefix=API_PREFIX,
        open_paths=OPEN_PATHS,
    )
    hosts = allowed_hosts(bound_host, settings.allowed_hosts, settings.public_url)
    if hosts is not None:  # added last: the outermost layer, so a refused name reaches nothing else
        app.add_middleware(HostCheckMiddleware, allowed=hosts)
    install_error_handlers(app)

    # Routers are mounted on the app itself, not nested under a prefix router: each level of nesting adds a
    # round of route matching to every request.
    app.include_router(health.router, prefix=API_PREFIX)
    checks = [
        Depends(require_token),
        Depends(require_json),
        Depends(plain_query_numbers),
        Depends(single_query_values),
        Depends(no_nul_in_url),
    ]
    for router in (operations.router, events.router, metrics.router, artifacts.router):
        app.include_router(router, prefix=API_PREFIX, dependencies=checks)
    for router in train_routers:  # a server without the extra answers them 501: the document says so
        app.include_router(router, prefix=API_PREFIX, dependencies=checks, responses=TRAIN_EXTRA_ERRORS)
    install_dashboard(app, docs_path=DOCS_PATH, openapi_url=OPENAPI_PATH)
    install_openapi(app, API_PREFIX)  # every error status a route answers, with the envelope
    return app


def _train_routers() -> tuple[list[APIRouter], list[tuple[str, re.Pattern[str]]]]:
    """The routes of the ``train`` extra and its streamed uploads, or where it is not installed, routes that answer
    501 naming it."""
    if not extras.is_installed("train"):
        from trainops.api.routes import unavailable

        return [unavailable.router], []
    # imported here: they import the strategy pipeline (torch, TA-Lib, pandas)
    from trainops.api.routes import data, models, strategies, training

    return [training.router, strategies.router, models.router, data.router], [models.UPLOAD_ROUTE]
