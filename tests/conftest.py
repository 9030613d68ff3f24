"""Shared fixtures: a fresh database per test on SQLite, and on a real PostgreSQL server when asked.

Tests that take ``database_url`` (directly or through ``store``, ``service``, ``settings``, ...) run once on
SQLite and once on PostgreSQL. The PostgreSQL server is started once per session from the machine's binaries
(see ``tests/postgres.py``); where none exist those cases skip with the reason shown in the summary.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from sqlalchemy import create_engine, text

from tests import postgres
from tests.environment import no_trainops_environment  # noqa: F401 (an autouse fixture)
from tests.live_server import LiveServer
from trainops.client import HttpTrainOps, LocalTrainOps, TrainOps
from trainops.pipeline.data_files import write_sample_data
from trainops.service.bootstrap import open_service
from trainops.service.operations import OperationsService
from trainops.settings import Settings, get_settings
from trainops.store import OperationStore, create_database_engine, upgrade

REPO = Path(__file__).resolve().parent.parent
STRATEGIES = REPO / "strategies"


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """One migrated database on a throwaway server for the whole session (tests empty it, see below)."""
    reason = postgres.missing_reason()
    if reason:
        pytest.skip(f"SKIPPING POSTGRESQL TESTS: {reason}")
    with postgres.postgres_server() as base:
        admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE trainops_test"))
        admin.dispose()
        url = f"{base}/trainops_test"
        engine = create_database_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database with the current schema: a new SQLite file, or the session's PostgreSQL
    database emptied (truncating is far cheaper than creating a database per test)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'trainops.db'}"
        engine = create_database_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    shared: str = request.getfixturevalue("postgres_database_url")
    engine = create_database_engine(shared)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE epoch_metrics, operations, models RESTART IDENTITY CASCADE"))
    engine.dispose()
    return shared


@pytest.fixture
def database_settings(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings on the test database, also installed as the process's settings (for ``connect()``)."""
    monkeypatch.setenv("TRAINOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRAINOPS_DATABASE_URL", database_url)
    monkeypatch.delenv("TRAINOPS_URL", raising=False)
    monkeypatch.delenv("TRAINOPS_API_TOKEN", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def settings(database_settings: Settings) -> Settings:
    """The settings every server, client and CLI test runs on; modules that train override it with
    ``training_settings``."""
    return database_settings


@pytest.fixture(scope="session")
def market_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real sample market data (``trainops data sample``), written once per session: tests only read it."""
    directory = tmp_path_factory.mktemp("market")
    write_sample_data(directory)
    return directory


@pytest.fixture
def training_settings(
    database_settings: Settings, market_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The test database's settings plus the sample data, the repository's strategies and a temporary models
    directory, installed before any server starts (it pins them into the workers it spawns)."""
    monkeypatch.setenv("TRAINOPS_DATA_DIR", str(market_data))
    monkeypatch.setenv("TRAINOPS_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("TRAINOPS_STRATEGIES_DIR", str(STRATEGIES))
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Train on one thread: the test models are tiny, and on a busy 2-core machine torch's thread pool makes a
    training of a fraction of a second take tens of seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def store(database_url: str) -> Iterator[OperationStore]:
    engine = create_database_engine(database_url)
    yield OperationStore(engine)
    engine.dispose()


@pytest.fixture
def service(settings: Settings) -> Iterator[OperationsService]:
    service = open_service(settings)
    yield service
    service.store.engine.dispose()


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    """An httpx client on the live server's ``/api/v1``."""
    with httpx.Client(base_url=f"{live_server.url}/api/v1", timeout=30) as client:
        yield client


@pytest.fixture(params=["local", "http"])
def ops(request: pytest.FixtureRequest, settings: Settings) -> Iterator[TrainOps]:
    """The TrainOps facade, once in-process and once over HTTP against a live server: the contract suite."""
    if request.param == "local":
        client: TrainOps = LocalTrainOps(open_service(settings))
        yield client
        client.close()
        return
    with LiveServer(settings) as server, HttpTrainOps(server.url, retries=0) as http_client:
        yield http_client
