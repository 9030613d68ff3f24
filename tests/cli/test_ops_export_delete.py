"""``trainops ops export`` and ``trainops ops delete``: on the local database and against a live server."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import trainops.cli.ops
from tests.live_server import LiveServer
from trainops.cli.main import app
from trainops.client import LocalTrainOps
from trainops.core import EpochRecord
from trainops.service.operations import OperationsService
from trainops.settings import Settings

runner = CliRunner()


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=stdin, catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def ended_run(service: OperationsService, tmp_path: Path, epochs: int = 5) -> str:
    operation_id = service.create(total_epochs=epochs).operation_id
    records = [EpochRecord(epoch=e, train_loss=1 / (e + 1), val_loss=0.5, f1=e / 10) for e in range(epochs)]
    records[1] = records[1].model_copy(update={"val_loss": float("nan")})
    service.add_epochs(operation_id, records)
    source = tmp_path / "notes.txt"
    source.write_text("lr 1e-3")
    LocalTrainOps(service).log_artifact(operation_id, source)
    service.complete(operation_id)
    return operation_id


@pytest.fixture(params=["local", "http"])
def where(request: pytest.FixtureRequest, settings: Settings) -> Iterator[list[str]]:
    if request.param == "local":
        yield []
        return
    with LiveServer(settings) as server:
        yield ["--url", server.url]


@pytest.mark.parametrize(
    ("output", "problem"),
    [("folder", "Is a directory"), ("missing/run.csv", "No such file or directory")],
)
def test_export_to_a_path_it_cannot_write_is_an_error_line(
    service: OperationsService, tmp_path: Path, output: str, problem: str
) -> None:
    operation_id = ended_run(service, tmp_path)
    (tmp_path / "folder").mkdir()

    code, _, err = invoke("ops", "export", operation_id, "--format", "csv", "--output", str(tmp_path / output))

    assert code == 1
    assert err.startswith(f"Error: cannot write {tmp_path / output}: {problem}; give --output a file"), err


def test_export_csv_and_json(where: list[str], service: OperationsService, tmp_path: Path) -> None:
    operation_id = ended_run(service, tmp_path)

    code, out, _ = invoke("ops", "export", operation_id, *where)
    assert code == 0
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame["epoch"]) == [0, 1, 2, 3, 4] and math.isnan(frame["val_loss"][1])
    assert list(frame.columns)[-1] == "f1" and frame["f1"][3] == 0.3

    target = tmp_path / "out" / "run.csv"
    target.parent.mkdir()
    code, out, _ = invoke("ops", "export", operation_id, "--output", str(target), "--since-epoch", "2", *where)
    assert code == 0 and f"Wrote 2 epoch(s) of {operation_id} to {target}" in out
    assert list(pd.read_csv(target)["epoch"]) == [3, 4]
    code, out, _ = invoke("ops", "export", operation_id, "--from-epoch", "1", "--to-epoch", "3", *where)
    assert code == 0 and list(pd.read_csv(io.StringIO(out))["epoch"]) == [1, 2, 3]

    code, out, _ = invoke("ops", "export", operation_id, "--format", "json", *where)
    assert code == 0
    exported = json.loads(out)
    assert exported["operation_id"] == operation_id and len(exported["metrics"]["epochs"]) == 5

    code, _, err = invoke("ops", "export", operation_id, "--format", "xlsx", *where)
    assert code == 2 and "xlsx" in err
    code, _, err = invoke("ops", "export", "op_training_20250101_000000_deadbeef", *where)
    assert code == 1 and "no operation" in err


def test_delete_with_yes(where: list[str], service: OperationsService, settings: Settings, tmp_path: Path) -> None:
    operation_id = ended_run(service, tmp_path)
    code, out, _ = invoke("ops", "delete", operation_id, "--yes", *where)
    assert code == 0
    assert f"Deleted {operation_id}: 5 epoch(s), 0 step point(s), 1 artifact(s) (7 B)" in out
    assert not (settings.resolved_artifacts_dir / operation_id).exists()
    code, _, err = invoke("ops", "delete", operation_id, "--yes", *where)
    assert code == 1 and "no operation" in err

    other = ended_run(service, tmp_path)
    code, out, _ = invoke("ops", "delete", other, "--yes", "--json", *where)
    assert code == 0 and json.loads(out)["epochs"] == 5 and json.loads(out)["deleted"] is True


def test_a_running_run_is_refused_with_the_next_step(where: list[str], service: OperationsService) -> None:
    operation_id = service.create().operation_id
    service.add_epochs(operation_id, [EpochRecord(epoch=0, val_loss=1.0)])
    for extra in (["--yes"], []):
        code, _, err = invoke("ops", "delete", operation_id, *extra, *where)
        assert code == 1
        assert "is running: cancel it first" in " ".join(err.split()), err
    assert service.get(operation_id).status == "running"


def test_off_a_terminal_it_needs_yes(service: OperationsService, tmp_path: Path) -> None:
    operation_id = ended_run(service, tmp_path)
    code, _, err = invoke("ops", "delete", operation_id)
    assert code == 1 and "standard input is not a terminal; pass --yes" in " ".join(err.split())
    assert service.get(operation_id).status == "completed"


def test_on_a_terminal_it_asks(service: OperationsService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainops.cli.ops, "_on_terminal", lambda: True)
    operation_id = ended_run(service, tmp_path)

    code, out, _ = invoke("ops", "delete", operation_id, stdin="n\n")
    assert code == 1
    assert f"{operation_id} (completed): 5 epoch(s), 1 artifact(s) (7 B). This cannot be undone." in out
    assert "Nothing deleted." in out and service.get(operation_id).status == "completed"

    code, out, _ = invoke("ops", "delete", operation_id, stdin="y\n")
    assert code == 0 and f"Deleted {operation_id}" in out
    assert [item.operation_id for item in service.list_operations().items] == []
