"""``pip install trainops`` without extras: a working client, CLI, in-process store and server, no torch, no TA-Lib.

A throwaway virtual environment gets the project from this source tree with only its base dependencies, at the
versions of ``constraints.txt`` (pip's cache makes a second run fast; the package index must be reachable). In it:
the training libraries are missing; ``trainops serve`` runs a real server; a plain-Python training loop reports to
it through ``trainops.connect(url)``; and ``trainops train`` says which extra to install instead of failing with a
traceback. Nothing here is skipped: a failing venv or pip fails the test with their output.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import trainops
from tests.processes import LOOPBACK, base_interpreter, clean_env, free_port, run, serving

ROOT = Path(__file__).resolve().parents[1]
TRAIN_EXTRA_HINT = "pip install 'trainops[train]'"

TRAINING_LOOP = """
import sys

import trainops

ops = trainops.connect(sys.argv[1])
with ops.run(total_epochs=5) as run:
    for epoch in range(5):
        loss = 1.0 / (epoch + 1)  # a fake, decreasing loss: no torch in a base install
        run.log(epoch, train_loss=loss, val_loss=loss * 1.1)
print(run.operation_id)
print(trainops.__file__)
"""


@dataclass(frozen=True)
class BaseInstall:
    """A virtual environment holding trainops and its base dependencies only."""

    venv: Path
    install_seconds: float

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def trainops(self) -> Path:
        return self.venv / "bin" / "trainops"


@pytest.fixture(scope="module")
def base_install(tmp_path_factory: pytest.TempPathFactory) -> BaseInstall:
    """A new venv from the base interpreter with ``pip install -c constraints.txt <this tree>``, once per module
    (about 35 s on 2 cores; the time is printed, shown with ``pytest -rP``)."""
    venv = tmp_path_factory.mktemp("base-install") / "venv"
    env = clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1")
    t0 = time.perf_counter()
    created = run([base_interpreter(), "-m", "venv", venv], env=env, cwd=venv.parent, timeout=120)
    assert created.returncode == 0, f"python -m venv failed:\n{created.stdout}\n{created.stderr}"
    # no extras: what `pip install trainops` gives
    installed = run(
        [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "-c", ROOT / "constraints.txt", ROOT],
        env=env,
        cwd=venv.parent,
        timeout=240,
    )
    seconds = time.perf_counter() - t0
    assert installed.returncode == 0, f"pip install of the base package failed:\n{installed.stdout}\n{installed.stderr}"
    print(f"venv + base install of trainops: {seconds:.1f} s")
    return BaseInstall(venv, seconds)


@dataclass(frozen=True)
class Server:
    url: str
    log: Path


@pytest.fixture(scope="module")
def base_server(base_install: BaseInstall, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``trainops serve`` of the base install on a loopback port and a fresh SQLite database, until the module
    ends; stopped with its whole process group."""
    home = tmp_path_factory.mktemp("base-server")
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    log = home / "server.log"
    command = [base_install.trainops, "serve", "--host", LOOPBACK, "--port", str(port)]
    env = clean_env(TRAINOPS_HOME=str(home))
    with serving(command, env=env, cwd=home, log=log, health=f"{url}/api/v1/health", timeout=60):
        yield Server(url, log)


def test_the_base_install_has_no_training_libraries(base_install: BaseInstall, tmp_path: Path) -> None:
    for module in ("torch", "talib"):
        done = run([base_install.python, "-c", f"import {module}"], env=clean_env(), cwd=tmp_path, timeout=60)
        assert done.returncode != 0, f"`import {module}` works in the base install: it must come only with an extra"
        assert "ModuleNotFoundError" in done.stderr, done.stderr


def test_a_plain_training_loop_reports_to_a_base_install_server(
    base_install: BaseInstall, base_server: Server, tmp_path: Path
) -> None:
    script = tmp_path / "loop.py"
    script.write_text(TRAINING_LOOP)
    done = run([base_install.python, script, base_server.url], env=clean_env(), cwd=tmp_path, timeout=120)
    assert done.returncode == 0, f"the training loop failed:\n{done.stdout}\n{done.stderr}"
    operation_id, module_file = done.stdout.strip().splitlines()[-2:]
    # the loop ran on the installed copy, not on this source tree
    assert Path(module_file).is_relative_to(base_install.venv), module_file

    with trainops.connect(base_server.url) as ops:
        metrics = ops.get_metrics(operation_id).metrics
        operation = ops.get_operation(operation_id)
    assert [record.epoch for record in metrics.epochs] == [0, 1, 2, 3, 4]
    assert metrics.epochs[-1].train_loss == pytest.approx(0.2)
    assert operation.status is trainops.OperationStatus.COMPLETED, base_server.log.read_text()[-5000:]


@pytest.mark.parametrize(
    "command",
    [
        ["train", "mean_reversion"],
        ["data", "sample"],
        ["data", "list"],
        ["strategies", "list"],
        ["models", "list"],
    ],
    ids=" ".join,
)
def test_commands_without_the_extra_say_which_to_install(
    base_install: BaseInstall, tmp_path: Path, command: list[str]
) -> None:
    env = clean_env(TRAINOPS_HOME=str(tmp_path / "home"), TRAINOPS_STRATEGIES_DIR=str(ROOT / "strategies"))
    done = run([base_install.trainops, *command], env=env, cwd=tmp_path, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert TRAIN_EXTRA_HINT in output, output
    assert "Traceback" not in output, output


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/strategies"), ("POST", "/training/start"), ("GET", "/models"), ("GET", "/data")],
)
def test_a_base_install_server_names_the_extra_on_training_routes(base_server: Server, method: str, path: str) -> None:
    response = httpx.request(method, f"{base_server.url}/api/v1{path}", json={} if method == "POST" else None)
    assert response.status_code == 501, response.text
    error = response.json()["error"]
    assert error["code"] == "missing_extra"
    assert TRAIN_EXTRA_HINT in error["message"]
    # and the client rebuilds the same error
    with trainops.connect(base_server.url) as ops, pytest.raises(trainops.TrainOpsError, match=r"trainops\[train\]"):
        ops.list_strategies()
