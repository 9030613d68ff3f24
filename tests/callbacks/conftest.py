"""Fixtures of the callback tests: MLflow with its telemetry off, and real MLflow tracking stores to mirror into.

The stores live for the whole session (a fresh ``sqlite://`` store spends seconds creating its tables): every
mirrored training gets its own experiment, named after its operation, so tests never see each other's runs.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import LOOPBACK, base_interpreter, clean_env, free_port, run, serving

NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
os.environ.update(NO_TELEMETRY)  # before any test module imports mlflow: nothing may leave this machine

MLFLOW_SERVER_VERSION = "3.17.2"
"""The full ``mlflow`` package the tracking server runs (the tests' client is ``mlflow-skinny`` of the same
version, from the ``mlflow`` extra)."""


@pytest.fixture(autouse=True)
def _no_mlflow_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in NO_TELEMETRY.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def _mlflow_cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow-cwd")


@pytest.fixture(autouse=True)
def _out_of_the_checkout(monkeypatch: pytest.MonkeyPatch, _mlflow_cwd: Path) -> None:
    """Run in a temporary folder: a ``sqlite://`` tracking store keeps its artifacts in ``./mlruns``, MLflow's
    default, which would otherwise land in the checkout."""
    monkeypatch.chdir(_mlflow_cwd)


@pytest.fixture(scope="session")
def mlflow_file_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``file://`` tracking store in a temporary folder (MLflow 3 wants ``MLFLOW_ALLOW_FILE_STORE=true`` for it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        yield (tmp_path_factory.mktemp("mlflow-file") / "mlruns").as_uri()


@pytest.fixture(scope="session")
def mlflow_sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A ``sqlite://`` tracking store in a temporary folder (the artifacts beside it)."""
    folder = tmp_path_factory.mktemp("mlflow-sqlite")
    return f"sqlite:///{folder / 'mlflow.db'}"


@dataclass(frozen=True)
class MlflowServer:
    url: str
    log: Path
    artifacts: Path


def server_cache() -> Path:
    """Where the server's virtual environment is kept between sessions (``TRAINOPS_TEST_CACHE``, else the user's
    cache folder): building it takes about a minute, reusing it no time."""
    given = os.environ.get("TRAINOPS_TEST_CACHE")
    base = Path(given) if given else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trainops-tests"
    base.mkdir(parents=True, exist_ok=True)
    return base


def mlflow_server_venv() -> Path:
    """A virtual environment holding the full ``mlflow`` (with its own pins; it conflicts with the project's), built
    once and reused: the marker file is written last, so a build that was interrupted is built again."""
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    venv = server_cache() / f"mlflow-server-{MLFLOW_SERVER_VERSION}-{python}"
    ready = venv / ".trainops-ready"
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions at once build it once
        if ready.is_file() and (venv / "bin" / "mlflow").is_file():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        env = clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1")
        created = run([base_interpreter(), "-m", "venv", venv], env=env, cwd=venv.parent, timeout=120)
        assert created.returncode == 0, f"python -m venv failed:\n{created.stdout}\n{created.stderr}"
        installed = run(
            [venv / "bin" / "python", "-m", "pip", "install", "--quiet", f"mlflow=={MLFLOW_SERVER_VERSION}"],
            env=env,
            cwd=venv.parent,
            timeout=600,
        )
        assert installed.returncode == 0, f"pip install mlflow failed:\n{installed.stdout}\n{installed.stderr}"
        ready.write_text(f"mlflow=={MLFLOW_SERVER_VERSION}\n")
    return venv


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` on a loopback port: runs in SQLite, artifacts uploaded through it (proxied) into a
    temporary folder; stopped with its whole process group at the end of the session."""
    venv = mlflow_server_venv()
    home = tmp_path_factory.mktemp("mlflow-server")
    artifacts = home / "artifacts"
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    command = [
        venv / "bin" / "mlflow",
        "server",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination",
        artifacts,
    ]
    log = home / "server.log"
    with serving(command, env=clean_env(**NO_TELEMETRY), cwd=home, log=log, health=f"{url}/health", timeout=120):
        yield MlflowServer(url, log, artifacts)
