"""``trainops train --cpus/--gpus``: what the job needs, refused in the option's words when this machine lacks it.

The Ray executor's use of them (a job waiting for a GPU node) is tested in tests/executors/test_ray_executor.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import trainops
from trainops.cli.main import app
from trainops.settings import Settings

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def settings(training_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(REPO)
    return training_settings


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpus", "99"], "--gpus: 99 asked, but this machine has "),
        (["--cpus", "1000"], f"--cpus: 1000 asked, but this machine has {os.cpu_count()} CPUs"),
        (["--gpus", "5000"], "--gpus: Input should be less than or equal to 1024"),
        (["--cpus", "-1"], "--cpus: Input should be greater than 0"),
        (["--cpus", "0"], "--cpus: Input should be greater than 0"),
    ],
)
def test_resources_this_machine_lacks_are_one_line_errors(settings: Settings, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["train", "mean_reversion", *args], env={"COLUMNS": "300"})

    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.output
    with trainops.connect() as ops:
        assert ops.list_operations().items == []  # refused before anything was recorded
