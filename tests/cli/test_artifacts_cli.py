"""``trainops ops artifacts``: list an operation's files and download one, on the local database and over HTTP."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.live_server import LiveServer
from trainops.cli.main import app
from trainops.client import LocalTrainOps
from trainops.service.operations import OperationsService
from trainops.settings import Settings

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "160"})
    return result.exit_code, result.stdout, result.stderr


def logged_run(service: OperationsService, tmp_path: Path) -> tuple[str, bytes]:
    ops = LocalTrainOps(service)
    operation_id = ops.create_operation().operation_id
    weights = bytes(range(256)) * 6  # 1.5 KiB
    source = tmp_path / "sources" / "best.pt"
    source.parent.mkdir()
    source.write_bytes(weights)
    ops.log_artifact(operation_id, source, artifact_path="checkpoints")
    (tmp_path / "sources" / "notes.txt").write_text("lr 1e-3")
    ops.log_artifact(operation_id, tmp_path / "sources" / "notes.txt")
    return operation_id, weights


@pytest.mark.parametrize("transport", ["local", "http"])
def test_list_and_download(transport: str, service: OperationsService, settings: Settings, tmp_path: Path) -> None:
    operation_id, weights = logged_run(service, tmp_path)
    with LiveServer(settings) as server:
        where = ["--url", server.url] if transport == "http" else []

        code, out, _ = invoke("ops", "artifacts", operation_id, *where)
        assert code == 0
        assert "checkpoints/best.pt" in out and "1.5 KiB" in out and hashlib.sha256(weights).hexdigest()[:12] in out
        assert "notes.txt" in out and "7 B" in out
        assert f"trainops ops artifacts {operation_id} --download PATH --to DIR" in out

        code, out, _ = invoke("ops", "artifacts", operation_id, "--json", *where)
        listed = json.loads(out)
        assert [item["path"] for item in listed] == ["checkpoints/best.pt", "notes.txt"]
        assert listed[0]["sha256"] == hashlib.sha256(weights).hexdigest() and listed[0]["size"] == 1536

        target = tmp_path / "downloaded"
        code, out, _ = invoke(
            "ops", "artifacts", operation_id, "--download", "checkpoints/best.pt", "--to", str(target), *where
        )
        assert code == 0 and f"Downloaded checkpoints/best.pt to {target / 'checkpoints' / 'best.pt'}" in out
        assert (target / "checkpoints" / "best.pt").read_bytes() == weights

        downloaded = ["-d", "notes.txt", "--to", str(target), "--json"]
        code, out, _ = invoke("ops", "artifacts", operation_id, *downloaded, *where)
        assert json.loads(out) == {"path": "notes.txt", "file": str(target / "notes.txt")}


def test_nothing_logged_and_errors(service: OperationsService) -> None:
    operation_id = service.create().operation_id
    code, out, _ = invoke("ops", "artifacts", operation_id)
    assert code == 0 and "has no artifacts yet" in out and "log_artifact" in out

    code, _, err = invoke("ops", "artifacts", "op_training_20250101_000000_00000000")
    assert code == 1 and "Error: no operation" in err

    code, _, err = invoke("ops", "artifacts", operation_id, "--download", "../../etc/passwd")
    assert code == 1 and "'..' is not allowed" in err

    code, _, err = invoke("ops", "artifacts", operation_id, "--download", "missing.pt")
    assert code == 1 and "has no artifact 'missing.pt'" in err
