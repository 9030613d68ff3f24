"""Artifacts through the facade: the same behaviour in-process and over HTTP (``ops``), on SQLite and PostgreSQL;
then what only the HTTP transport does (streamed retries, checked downloads) against fake transports."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.live_server import LiveServer
from trainops import InvalidInputError, NotFoundError, TrainOps
from trainops.client import HttpTrainOps
from trainops.errors import ArtifactError, PayloadTooLargeError
from trainops.settings import Settings, get_settings

LIMIT = 64 * 1024


@pytest.fixture
def settings(database_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRAINOPS_MAX_ARTIFACT_BYTES", str(LIMIT))
    get_settings.cache_clear()
    return get_settings()


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_log_artifact_names_files_as_mlflow_does(ops: TrainOps, tmp_path: Path) -> None:
    operation_id = ops.create_operation().operation_id
    weights = os.urandom(50_000)
    best = write(tmp_path / "outputs" / "best.pt", weights)

    at_top = ops.log_artifact(operation_id, best)
    inside = ops.log_artifact(operation_id, str(best), artifact_path="checkpoints")

    assert (at_top.path, inside.path) == ("best.pt", "checkpoints/best.pt")
    assert inside.size == 50_000 and inside.sha256 == sha(weights)
    assert ops.list_artifacts(operation_id) == [at_top, inside]

    local = ops.download_artifact(operation_id, "checkpoints/best.pt", tmp_path / "copy")
    assert local == tmp_path / "copy" / "checkpoints" / "best.pt"
    assert local.read_bytes() == weights
    assert not [p for p in local.parent.iterdir() if p.name != "best.pt"]  # no temporary file left


def test_log_artifacts_keeps_the_paths_below_the_directory(ops: TrainOps, tmp_path: Path) -> None:
    operation_id = ops.create_operation().operation_id
    outputs = tmp_path / "outputs"
    write(outputs / "metrics.json", b'{"f1": 0.7}')
    write(outputs / "plots" / "loss.png", b"\x89PNG")
    write(outputs / "plots" / "deep" / "lr.csv", b"epoch,lr\n0,0.1\n")
    (outputs / "empty").mkdir()

    logged = ops.log_artifacts(operation_id, outputs, artifact_path="run")

    expected = ["run/metrics.json", "run/plots/deep/lr.csv", "run/plots/loss.png"]
    assert [info.path for info in logged] == expected
    assert [info.path for info in ops.list_artifacts(operation_id)] == expected
    assert [info.path for info in ops.log_artifacts(operation_id, outputs / "plots")] == ["deep/lr.csv", "loss.png"]
    assert ops.log_artifacts(operation_id, outputs / "empty") == []


def test_logging_again_replaces_and_ended_operations_accept_files(ops: TrainOps, tmp_path: Path) -> None:
    operation_id = ops.create_operation().operation_id
    ops.finish_operation(operation_id, "completed")
    report = write(tmp_path / "report.txt", b"draft")
    ops.log_artifact(operation_id, report)
    write(report, b"final")
    replaced = ops.log_artifact(operation_id, report)

    assert ops.list_artifacts(operation_id) == [replaced]
    destination = tmp_path / "downloads"
    write(destination / "report.txt", b"an older local copy")
    assert ops.download_artifact(operation_id, "report.txt", destination).read_bytes() == b"final"


def test_names_are_checked_before_anything_is_stored(ops: TrainOps, tmp_path: Path) -> None:
    operation_id = ops.create_operation().operation_id
    outputs = tmp_path / "outputs"
    write(outputs / "a.txt", b"a")
    write(outputs / "loss curve.png", b"png")

    with pytest.raises(InvalidInputError, match=r"loss curve\.png.*holds ' '.*nothing was stored"):
        ops.log_artifacts(operation_id, outputs)
    with pytest.raises(InvalidInputError, match=r"^artifact_path '\.\./up' is invalid"):
        ops.log_artifact(operation_id, outputs / "a.txt", artifact_path="../up")
    with pytest.raises(InvalidInputError, match="is absolute"):
        ops.upload_artifact(operation_id, "/etc/passwd", outputs / "a.txt")
    with pytest.raises(InvalidInputError, match=r"'\.\.' is not allowed"):
        ops.download_artifact(operation_id, "../../etc/passwd", tmp_path)
    assert ops.list_artifacts(operation_id) == []


def test_local_paths_that_are_not_files_are_refused(ops: TrainOps, tmp_path: Path) -> None:
    operation_id = ops.create_operation().operation_id
    with pytest.raises(InvalidInputError, match="not an existing file"):
        ops.log_artifact(operation_id, tmp_path / "missing.pt")
    with pytest.raises(InvalidInputError, match="log it with log_artifacts"):
        ops.log_artifact(operation_id, tmp_path)
    with pytest.raises(InvalidInputError, match="not a directory"):
        ops.log_artifacts(operation_id, tmp_path / "missing")
    ops.log_artifact(operation_id, write(tmp_path / "a.txt", b"a"))
    with pytest.raises(InvalidInputError, match="it is a file; give a directory"):
        ops.download_artifact(operation_id, "a.txt", tmp_path / "a.txt")


def test_unknown_operations_and_artifacts_are_not_found(ops: TrainOps, tmp_path: Path) -> None:
    unknown = "op_training_20250101_000000_00000000"
    source = write(tmp_path / "a.txt", b"a")
    with pytest.raises(NotFoundError):
        ops.log_artifact(unknown, source)
    with pytest.raises(NotFoundError):
        ops.list_artifacts(unknown)
    with pytest.raises(NotFoundError):
        ops.download_artifact(unknown, "a.txt", tmp_path / "out")
    operation_id = ops.create_operation().operation_id
    with pytest.raises(NotFoundError, match=r"has no artifact 'a\.txt'"):
        ops.download_artifact(operation_id, "a.txt", tmp_path / "out")
    assert not (tmp_path / "out" / "a.txt").exists()


def test_files_over_the_limit_are_refused(ops: TrainOps, tmp_path: Path) -> None:
    operation_id = ops.create_operation().operation_id
    with pytest.raises(PayloadTooLargeError, match="TRAINOPS_MAX_ARTIFACT_BYTES"):
        ops.log_artifact(operation_id, write(tmp_path / "big.bin", b"x" * (LIMIT + 1)))
    assert ops.list_artifacts(operation_id) == []
    assert ops.log_artifact(operation_id, write(tmp_path / "fits.bin", b"x" * LIMIT)).size == LIMIT


def test_a_local_path_in_the_way_of_a_download_is_named(ops: TrainOps, tmp_path: Path) -> None:
    operation_id = ops.create_operation().operation_id
    source = write(tmp_path / "re.txt", b"content")
    for name in ("re.txt", "ok/name.pt", "ok/deep/name.pt"):
        ops.upload_artifact(operation_id, name, source)
    destination = tmp_path / "downloads"
    (destination / "re.txt").mkdir(parents=True)
    write(destination / "ok", b"a local file")

    in_the_way = {
        "re.txt": f"'{destination / 're.txt'}' is a directory; move it away",
        "ok/name.pt": f"'{destination / 'ok'}' is a file, where a directory must go",
        "ok/deep/name.pt": f"'{destination / 'ok'}' is a file, where a directory must go",
    }
    for name, message in in_the_way.items():
        with pytest.raises(InvalidInputError, match=rf"^cannot download '{name}' to .*: {re.escape(message)}"):
            ops.download_artifact(operation_id, name, destination)

    assert sorted(p.name for p in destination.rglob("*")) == ["ok", "re.txt"]  # as they were, no temporary file
    assert (destination / "ok").read_bytes() == b"a local file"


# -- the HTTP transport alone --------------------------------------------------------------------------------------

INFO = {"path": "model.bin", "size": 0, "sha256": sha(b""), "created_at": "2025-06-10T12:00:00Z"}
OPERATION = "op_training_20250610_123456_ab12cd34"


def fake_server(handler: httpx.MockTransport) -> HttpTrainOps:
    return HttpTrainOps("http://trainops.test", transport=handler, retries=2, backoff=0)


def test_an_upload_retried_after_a_503_sends_the_whole_file_again(tmp_path: Path) -> None:
    content = os.urandom(3 * 1024 * 1024 + 7)  # several chunks
    bodies: list[bytes] = []

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        assert request.headers["content-type"] == "application/octet-stream"
        assert request.headers["content-length"] == str(len(content))
        assert request.url.params["path"] == "checkpoints/model.bin"
        if len(bodies) == 1:
            return httpx.Response(503, json={"success": False, "error": {"code": "service_unavailable", "message": ""}})
        info = {**INFO, "path": "checkpoints/model.bin", "size": len(content), "sha256": sha(content)}
        return httpx.Response(201, json={"success": True, "data": info})

    with fake_server(httpx.MockTransport(handle)) as ops:
        info = ops.log_artifact(OPERATION, write(tmp_path / "model.bin", content), artifact_path="checkpoints")

    assert bodies == [content, content]
    assert info.sha256 == sha(content)


def test_a_bad_name_is_refused_without_a_request(tmp_path: Path) -> None:
    requests: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(500)

    with fake_server(httpx.MockTransport(handle)) as ops:
        with pytest.raises(InvalidInputError, match="is invalid"):
            ops.log_artifact(OPERATION, write(tmp_path / "bad name.bin", b"x"))
        with pytest.raises(InvalidInputError, match="device name on Windows"):
            ops.download_artifact(OPERATION, "aux", tmp_path)
    assert requests == []


def test_a_damaged_download_writes_nothing(tmp_path: Path) -> None:
    stored = b"the stored content"

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/api/v1/operations/{OPERATION}/artifacts/models/model.bin"
        damaged = b"the stored c0ntent"  # same size, other bytes
        return httpx.Response(200, content=damaged, headers={"ETag": f'"{sha(stored)}"'})

    damaged = pytest.raises(ArtifactError, match=r"the copy of artifact 'models/model\.bin' is damaged")
    with fake_server(httpx.MockTransport(handle)) as ops, damaged:
        ops.download_artifact(OPERATION, "models/model.bin", tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_download_error_is_the_servers_error(tmp_path: Path) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        error = {"code": "not_found", "message": f"operation {OPERATION} has no artifact 'x.bin'"}
        return httpx.Response(404, content=json.dumps({"success": False, "error": error}))

    with fake_server(httpx.MockTransport(handle)) as ops, pytest.raises(NotFoundError, match="has no artifact"):
        ops.download_artifact(OPERATION, "x.bin", tmp_path)


class ChangingFile(httpx.BaseTransport):
    """The way to a live server, on which ``change`` alters the file of an upload just before its body is sent: a
    log the training still writes to, or a file rewritten meanwhile."""

    def __init__(self, change: Callable[[], None]) -> None:
        self.server = httpx.HTTPTransport()
        self.change = change

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/artifacts"):
            self.change()
        return self.server.handle_request(request)

    def close(self) -> None:
        self.server.close()


def test_a_file_that_grows_while_it_is_sent_is_stored_as_it_was(live_server: LiveServer, tmp_path: Path) -> None:
    began = os.urandom(40_000)
    log = write(tmp_path / "train.log", began)

    def log_on() -> None:
        with log.open("ab") as out:
            out.write(b"epoch 7: val_loss 0.25\n" * 400)

    with HttpTrainOps(live_server.url, transport=ChangingFile(log_on), retries=0) as ops:
        operation_id = ops.create_operation().operation_id
        stored = ops.log_artifact(operation_id, log)
        copy = ops.download_artifact(operation_id, "train.log", tmp_path / "copy")

    assert log.stat().st_size > len(began)  # it grew
    assert (stored.size, stored.sha256) == (len(began), sha(began))
    assert copy.read_bytes() == began


def test_a_file_that_shrinks_while_it_is_sent_is_refused(live_server: LiveServer, tmp_path: Path) -> None:
    checkpoint = write(tmp_path / "model.pt", os.urandom(40_000))

    def rewrite() -> None:
        checkpoint.write_bytes(b"rewritten")

    with HttpTrainOps(live_server.url, transport=ChangingFile(rewrite), retries=0) as ops:
        operation_id = ops.create_operation().operation_id
        shrank = r"^'\S+/model\.pt' shrank while it was being sent: it ended after 9 of the 40,000 bytes .*nothing"
        with pytest.raises(InvalidInputError, match=shrank):
            ops.log_artifact(operation_id, checkpoint)
        assert ops.list_artifacts(operation_id) == []
