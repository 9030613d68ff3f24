"""``POST /models/versions?task_id=``: a model version trained away from the server, sent as a tar archive of its
five files, joins the registry as the next version of its series, checked as every version is read. A training
stores one version (a retry answers the stored one). Every hostile or broken archive (not a tar, paths, links,
directories, duplicates, missing or extra files, unreadable content, another training's version, too large) is
refused with what is wrong, and leaves nothing behind. Then ``TrainOps.upload_model_version`` on both transports.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.live_server import LiveServer
from tests.trainings import finished_training, mean_reversion
from trainops.client import LocalTrainOps, TrainOps
from trainops.core.operation import Operation
from trainops.errors import InvalidInputError
from trainops.pipeline.artifacts import read_model_version
from trainops.schemas.models import SaveModelRequest
from trainops.service.bootstrap import open_service
from trainops.service.training import create_training
from trainops.service.workers import this_worker
from trainops.settings import Settings, get_settings

FILES = ("model.safetensors", "config.json", "features.json", "metrics.json", "metadata.json")
LIMIT = 64 * 1024
"""The server's TRAINOPS_MAX_ARTIFACT_BYTES here: a 2-epoch mean reversion version is about 20 KB."""


@pytest.fixture
def settings(training_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRAINOPS_MAX_ARTIFACT_BYTES", str(LIMIT))
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
def local(settings: Settings) -> Iterator[LocalTrainOps]:
    ops = LocalTrainOps(open_service(settings), settings=settings)
    yield ops
    ops.close()


@pytest.fixture
def running(local: LocalTrainOps) -> Callable[[], Operation]:
    """A started training (as a worker has it while it sends its version)."""

    def start() -> Operation:
        operation = create_training(local.service, mean_reversion(), worker=this_worker())
        return local.start_operation(operation.operation_id, worker=this_worker())

    return start


@pytest.fixture
def trained(local: LocalTrainOps, tmp_path: Path) -> tuple[Operation, Path]:
    """A finished training whose version was written on "another machine" (a scratch directory), not the
    server's models directory."""
    scratch = tmp_path / "worker-models"
    ended = finished_training(local, local.settings, models_dir=scratch, device=None, worker=this_worker())
    return ended, scratch / str((ended.result or {})["model_version"])


def tar_of(members: list[tuple[tarfile.TarInfo, bytes | None]], *, compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, content in members:
            if content is not None:
                info.size = len(content)
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    data = buffer.getvalue()
    return gzip.compress(data) if compress else data


def file_member(name: str, content: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), content


def version_tar(version: Path, *, rename: dict[str, str] | None = None, add: list[tuple[str, bytes]] = ()) -> bytes:
    names = rename or {}
    members = [file_member(names.get(name, name), (version / name).read_bytes()) for name in FILES]
    return tar_of([*members, *(file_member(name, content) for name, content in add)])


def upload(api: httpx.Client, task_id: str, content: bytes, **headers: str) -> httpx.Response:
    return api.post(
        "/models/versions",
        params={"task_id": task_id},
        content=content,
        headers={"Content-Type": "application/x-tar", **headers},
    )


def error_message(response: httpx.Response, status_code: int) -> str:
    assert response.status_code == status_code, response.text
    body = response.json()
    assert body["success"] is False
    message: str = body["error"]["message"]
    return message


def stored_files(models_dir: Path) -> list[str]:
    """Everything below the models directory but the incoming directory itself (left, empty, for later uploads)."""
    if not models_dir.exists():
        return []
    return sorted(str(path.relative_to(models_dir)) for path in models_dir.rglob("*") if path.name != ".incoming")


# -- storing -----------------------------------------------------------------------------------------------------


def test_a_version_joins_the_registry_once(
    api: httpx.Client, trained: tuple[Operation, Path], settings: Settings
) -> None:
    operation, version = trained
    response = upload(api, operation.operation_id, version_tar(version))

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True and body["created"] is True
    assert body["task_id"] == operation.operation_id
    assert body["model_version"] == "mean_reversion/EURUSD_1h_v1"
    stored = settings.resolved_models_dir / body["model_version"]
    assert body["model_path"] == str(stored)
    assert body["size_bytes"] == sum(path.stat().st_size for path in stored.iterdir())
    for name in FILES:
        assert (stored / name).read_bytes() == (version / name).read_bytes()
    assert read_model_version(stored).metadata["source_operation"] == operation.operation_id
    assert (stored.parent / "EURUSD_1h_latest").read_text().strip() == "EURUSD_1h_v1"

    again = upload(api, operation.operation_id, version_tar(version))  # a retried upload
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False
    assert again.json()["model_version"] == body["model_version"]
    assert sorted(path.name for path in stored.parent.iterdir() if path.is_dir()) == ["EURUSD_1h_v1"]
    assert list((settings.resolved_models_dir / ".incoming").iterdir()) == []


def test_an_archive_of_a_directory_as_tar_writes_it_is_accepted(
    api: httpx.Client, trained: tuple[Operation, Path]
) -> None:
    """``tar -cf v.tar -C VERSION .``: a ``.`` entry and ``./`` before every name."""
    operation, version = trained
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(version, arcname=".")
    assert upload(api, operation.operation_id, buffer.getvalue()).status_code == 201


# -- refusals ----------------------------------------------------------------------------------------------------


def link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def directory(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info, None


HOSTILE = {
    "not a tar": (lambda version: b"PK\x03\x04 this is no tar archive" * 40, "not a readable tar archive"),
    "gzipped": (
        lambda version: gzip.compress(version_tar(version)),
        "not a readable tar archive",
    ),
    "traversal": (
        lambda version: version_tar(version, add=[("../../escaped.json", b"{}")]),
        "'../../escaped.json', which is not a file of a model version",
    ),
    "absolute": (
        lambda version: version_tar(version, rename={"config.json": "/tmp/config.json"}),
        "'/tmp/config.json', which is not a file of a model version",
    ),
    "nested": (
        lambda version: version_tar(version, rename={"config.json": "sub/config.json"}),
        "'sub/config.json', which is not a file of a model version",
    ),
    "symlink": (
        lambda version: tar_of(
            [
                *(file_member(name, (version / name).read_bytes()) for name in FILES if name != "config.json"),
                link("config.json", "/etc/passwd", tarfile.SYMTYPE),
            ]
        ),
        "is a link, directory or device",
    ),
    "hardlink": (
        lambda version: tar_of(
            [
                *(file_member(name, (version / name).read_bytes()) for name in FILES if name != "metrics.json"),
                link("metrics.json", "config.json", tarfile.LNKTYPE),
            ]
        ),
        "is a link, directory or device",
    ),
    "directory": (
        lambda version: tar_of([directory("model.safetensors")]),
        "is a link, directory or device",
    ),
    "duplicate": (
        lambda version: version_tar(version, add=[("config.json", b"{}")]),
        "holds 'config.json' twice",
    ),
    "extra file": (
        lambda version: version_tar(version, add=[("notes.txt", b"hello")]),
        "'notes.txt', which is not a file of a model version",
    ),
    "missing file": (
        lambda version: tar_of([file_member(name, (version / name).read_bytes()) for name in FILES[:-1]]),
        "lacks metadata.json",
    ),
    "unreadable content": (
        lambda version: tar_of([file_member(name, b"{not json") for name in FILES]),
        "the uploaded model version is unusable",
    ),
    "wrong weights": (
        lambda version: tar_of(
            [
                file_member(name, b"\x00" * 64 if name == "model.safetensors" else (version / name).read_bytes())
                for name in FILES
            ]
        ),
        "model.safetensors is not a readable safetensors file",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_and_broken_archives_are_refused_and_leave_nothing(
    api: httpx.Client, trained: tuple[Operation, Path], settings: Settings, tmp_path: Path, case: str
) -> None:
    operation, version = trained
    build, expected = HOSTILE[case]
    message = error_message(upload(api, operation.operation_id, build(version)), 422)
    assert expected in message
    assert str(settings.resolved_models_dir) not in message  # the server's paths stay its own
    assert stored_files(settings.resolved_models_dir) == ["mean_reversion"]
    assert not list(tmp_path.rglob("escaped.json"))


def test_another_trainings_version_is_refused(
    api: httpx.Client, trained: tuple[Operation, Path], running: Callable[[], Operation], settings: Settings
) -> None:
    _, version = trained
    other = running()
    message = error_message(upload(api, other.operation_id, version_tar(version)), 422)
    assert f"not by {other.operation_id}" in message
    assert stored_files(settings.resolved_models_dir) == ["mean_reversion"]


def test_a_version_of_another_strategy_is_refused(
    api: httpx.Client, trained: tuple[Operation, Path], local: LocalTrainOps, settings: Settings
) -> None:
    operation, version = trained
    config = json.loads((version / "config.json").read_text())
    config["model"]["training"]["epochs"] = 3
    (version / "config.json").write_text(json.dumps(config))
    message = error_message(upload(api, operation.operation_id, version_tar(version)), 422)
    assert "config.json is not the strategy" in message


def test_archives_over_the_limit_are_refused_announced_or_streamed(
    api: httpx.Client, running: Callable[[], Operation], settings: Settings
) -> None:
    task_id = running().operation_id
    big = tar_of([file_member("model.safetensors", b"\x00" * (LIMIT + 1))])
    message = error_message(upload(api, task_id, big), 413)
    assert "TRAINOPS_MAX_ARTIFACT_BYTES" in message

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused as it passes the limit
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = api.post(
        "/models/versions", params={"task_id": task_id}, content=chunks(), headers={"Content-Type": "application/x-tar"}
    )
    assert "TRAINOPS_MAX_ARTIFACT_BYTES" in error_message(streamed, 413)
    assert list((settings.resolved_models_dir / ".incoming").iterdir()) == []


def test_the_upload_is_bounded_by_the_artifact_limit_not_the_json_body_limit(
    trained: tuple[Operation, Path], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    operation, version = trained
    archive = version_tar(version)
    small_json = settings.model_copy(update={"max_request_bytes": 1024})
    assert small_json.max_request_bytes < len(archive) < small_json.max_artifact_bytes
    with LiveServer(small_json) as server, httpx.Client(base_url=f"{server.url}/api/v1") as api:
        response = upload(api, operation.operation_id, archive)
    assert response.status_code == 201, response.text


def test_trainings_that_cannot_have_a_version_are_refused_before_the_body(
    api: httpx.Client, local: LocalTrainOps, running: Callable[[], Operation]
) -> None:
    pending = create_training(local.service, mean_reversion(), worker=this_worker())
    assert "has not started" in error_message(upload(api, pending.operation_id, b"x"), 409)

    failed = running()
    local.finish_operation(failed.operation_id, "failed", error="out of memory")
    assert "failed, so it has no model version" in error_message(upload(api, failed.operation_id, b"x"), 409)

    assert "no operation" in error_message(upload(api, "op_training_20200101_000000_00000000", b"x"), 404)

    script = local.create_operation("training")
    assert "not a strategy training" in error_message(upload(api, script.operation_id, b"x"), 422)

    form = api.post("/models/versions", params={"task_id": failed.operation_id}, files={"file": ("v.tar", b"x")})
    assert "not as a form" in error_message(form, 422)


def test_the_upload_route_is_in_the_openapi_document(api: httpx.Client) -> None:
    operation = api.get("/openapi.json").json()["paths"]["/api/v1/models/versions"]["post"]
    assert "application/x-tar" in operation["requestBody"]["content"]
    assert set(operation["responses"]) >= {"200", "201", "409", "413", "422"}
    assert operation["parameters"][0]["name"] == "task_id"


# -- the facade, both transports -----------------------------------------------------------------------------------


def test_upload_model_version_then_save_and_predict(ops: TrainOps, trained: tuple[Operation, Path]) -> None:
    operation, version = trained
    stored = ops.upload_model_version(operation.operation_id, version)
    assert stored.created and stored.model_version == "mean_reversion/EURUSD_1h_v1"
    assert ops.upload_model_version(operation.operation_id, version).created is False

    # the training's result names the same relative version in the scratch directory and the registry
    saved = ops.save_model(SaveModelRequest(task_id=operation.operation_id, model_name="uploaded"))
    assert saved.model_path == stored.model_path
    assert ops.load_model("uploaded").model_info.source_operation == operation.operation_id


def test_upload_model_version_refusals_are_the_same_on_both_transports(
    ops: TrainOps, trained: tuple[Operation, Path], running: Callable[[], Operation], tmp_path: Path
) -> None:
    operation, version = trained
    with pytest.raises(InvalidInputError, match="not a directory"):
        ops.upload_model_version(operation.operation_id, tmp_path / "nowhere")
    partial = tmp_path / "partial"
    shutil.copytree(version, partial)
    (partial / "metrics.json").unlink()
    with pytest.raises(InvalidInputError, match=r"lacks metrics\.json"):
        ops.upload_model_version(operation.operation_id, partial)
    with pytest.raises(InvalidInputError, match="not by"):
        ops.upload_model_version(running().operation_id, version)
    script = ops.create_operation("training")  # not a strategy training: nothing of it is a model version
    with pytest.raises(InvalidInputError, match="not a strategy training"):
        ops.upload_model_version(script.operation_id, version)


def test_concurrent_uploads_of_one_training_store_one_version(
    local: LocalTrainOps, trained: tuple[Operation, Path], settings: Settings
) -> None:
    operation, version = trained
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: local.upload_model_version(operation.operation_id, version), range(4)))
    assert sorted(answer.created for answer in answers) == [False, False, False, True]
    assert {answer.model_version for answer in answers} == {"mean_reversion/EURUSD_1h_v1"}
    series = settings.resolved_models_dir / "mean_reversion"
    assert sorted(path.name for path in series.iterdir() if path.is_dir()) == ["EURUSD_1h_v1"]
