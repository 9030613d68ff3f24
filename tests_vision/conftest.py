"""Fixtures of the vision tests (Ultralytics and timm), which run in their own environment, ``.venv-vision``.

torchvision, which both frameworks need, exists here only beside torch 2.14.1, while the main environment stays on
torch 2.13.0: ``make test`` builds ``.venv-vision`` and runs these tests with its pytest (``tests/`` is the main
suite's; it never collects this folder). The database is SQLite: the store's PostgreSQL path is the main suite's.

Nothing may leave this machine: Ultralytics is offline with its settings in a temporary folder (no telemetry, no
logger integrations), and every test fails if anything tried to reach a host other than this one.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# before Ultralytics is imported anywhere: it reads them once, and writes its settings file on import
os.environ["YOLO_OFFLINE"] = "1"  # no online checks, no downloads of fonts, weights or data sets
os.environ["YOLO_CONFIG_DIR"] = tempfile.mkdtemp(prefix="trainops-yolo-config-")
os.environ["YOLO_VERBOSE"] = "false"
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

import pytest
import torch
from matplotlib import get_data_path
from tests.environment import no_trainops_environment  # noqa: F401 (an autouse fixture)
from tests.live_server import LiveServer
from ultralytics import settings as ultralytics_settings
from ultralytics.utils import USER_CONFIG_DIR

from trainops.client import HttpTrainOps, LocalTrainOps, TrainOps
from trainops.service.bootstrap import open_service
from trainops.settings import Settings, get_settings
from trainops.store import create_database_engine, upgrade

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", ""}


@pytest.fixture(scope="session", autouse=True)
def _ultralytics_offline(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Ultralytics' telemetry and its own logger integrations off; its folders in the session's temporary one.

    Every fit checks that the font its plots use is at hand, and downloads it when not (even with plots off):
    a font that matplotlib ships stands in for it where Ultralytics keeps its download.
    """
    root = tmp_path_factory.mktemp("ultralytics")
    shutil.copyfile(Path(get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf", USER_CONFIG_DIR / "Arial.ttf")
    ultralytics_settings.update(
        sync=False,
        clearml=False,
        comet=False,
        dvc=False,
        mlflow=False,
        raytune=False,
        tensorboard=False,
        wandb=False,
        datasets_dir=str(root / "datasets"),
        weights_dir=str(root / "weights"),
        runs_dir=str(root / "runs"),
    )


def _is_loopback(host: object) -> bool:
    text = str(host).strip("[]")
    return text in LOOPBACK_NAMES or text.startswith("127.")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse, and record, any connection or name lookup to a host other than this machine; the test fails if
    there was one (a framework downloading a font, weights or a data set, or sending telemetry)."""
    attempts: list[str] = []
    connect, lookup = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(host):
            attempts.append(f"connect {address}")
            raise OSError(f"the tests reach no network ({address})")
        return connect(self, address)

    def guarded_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host.decode() if isinstance(host, bytes) else host):
            attempts.append(f"lookup {host}")
            raise socket.gaierror(f"the tests reach no network ({host})")
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_lookup)
    yield attempts
    assert attempts == [], f"something tried to reach the network: {attempts}"


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> Iterator[None]:
    """Two threads at most: the machine has two cores, shared with whatever else runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings on a new SQLite database, also installed as the process's (for ``trainops.connect()``)."""
    url = f"sqlite:///{tmp_path / 'trainops.db'}"
    engine = create_database_engine(url)
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("TRAINOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRAINOPS_DATABASE_URL", url)
    monkeypatch.delenv("TRAINOPS_URL", raising=False)
    monkeypatch.delenv("TRAINOPS_API_TOKEN", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def local_ops(settings: Settings) -> Iterator[TrainOps]:
    """The in-process facade on the test database."""
    client = LocalTrainOps(open_service(settings))
    yield client
    client.close()


@pytest.fixture
def http_ops(settings: Settings) -> Iterator[TrainOps]:
    """The HTTP facade against a live server on the test database."""
    with LiveServer(settings) as server, HttpTrainOps(server.url, retries=0) as client:
        yield client
