"""``POST /models/versions``: an archive unpacks to no more than it holds. The route bounds the archive itself by
``TRAINOPS_MAX_ARTIFACT_BYTES``; these archives stay under it yet declare files far larger: a sparse member (its
holes would unpack in full) and a member whose header claims more bytes than follow it. Both are refused before
anything that large is written, and nothing is left in the models directory.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_model_upload_api import FILES, LIMIT, error_message, stored_files, upload
from tests.trainings import finished_training
from trainops.client import LocalTrainOps
from trainops.core.operation import Operation
from trainops.service.bootstrap import open_service
from trainops.service.workers import this_worker
from trainops.settings import Settings, get_settings

EXPANDED = 16 * LIMIT
"""What the hostile archives' weights declare: far over the server's limit, far under a weights file's own cap."""


@pytest.fixture
def settings(training_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRAINOPS_MAX_ARTIFACT_BYTES", str(LIMIT))
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
def trained(settings: Settings, tmp_path: Path) -> Iterator[tuple[Operation, Path]]:
    """A finished training whose version was written on "another machine" (a scratch directory)."""
    local = LocalTrainOps(open_service(settings), settings=settings)
    scratch = tmp_path / "worker-models"
    ended = finished_training(local, settings, models_dir=scratch, device=None, worker=this_worker())
    yield ended, scratch / str((ended.result or {})["model_version"])
    local.close()


def sparse_version_tar(version: Path, folder: Path) -> bytes:
    """The version's files, its weights replaced by an ``EXPANDED``-byte file of holes, as ``tar --sparse`` packs
    them: a few KB on the wire."""
    folder.mkdir()
    for name in FILES:
        shutil.copy(version / name, folder / name)
    with (folder / "model.safetensors").open("r+b") as weights:
        weights.truncate(EXPANDED)
    archive = folder.parent / "sparse.tar"
    subprocess.run(
        ["tar", "--sparse", "--format=pax", "-cf", str(archive), "-C", str(folder), *FILES],
        check=True,
        capture_output=True,
    )
    with tarfile.open(archive) as tar:
        if not tar.getmember("model.safetensors").issparse():
            pytest.skip("this file system keeps no holes, so tar wrote the weights whole rather than sparse")
    return archive.read_bytes()


@pytest.mark.skipif(
    shutil.which("tar") is None, reason="needs the tar program: Python's tarfile writes no sparse files"
)
def test_a_sparse_member_is_refused(
    api: httpx.Client, trained: tuple[Operation, Path], settings: Settings, tmp_path: Path
) -> None:
    operation, version = trained
    archive = sparse_version_tar(version, tmp_path / "sparse")
    assert len(archive) < LIMIT < EXPANDED  # within the route's limit on the wire

    message = error_message(upload(api, operation.operation_id, archive), 422)

    assert "model.safetensors is a sparse file" in message and "without --sparse" in message
    assert stored_files(settings.resolved_models_dir) == ["mean_reversion"]


def test_members_declaring_more_than_the_archive_holds_are_refused(
    api: httpx.Client, trained: tuple[Operation, Path], settings: Settings
) -> None:
    """The four JSON files whole, then a weights header claiming ``EXPANDED`` bytes (more than the limit) with one
    block following: refused at that header, before its bytes are copied."""
    operation, version = trained
    documents = {name: (version / name).read_bytes() for name in FILES if name != "model.safetensors"}
    archive = b"".join(raw_member(name, content) for name, content in documents.items())
    weights = tarfile.TarInfo("model.safetensors")
    weights.size = EXPANDED
    archive += weights.tobuf(format=tarfile.PAX_FORMAT) + bytes(tarfile.BLOCKSIZE)
    assert len(archive) < LIMIT

    message = error_message(upload(api, operation.operation_id, archive), 422)

    declared = sum(map(len, documents.values())) + EXPANDED  # the running total of the members' sizes
    assert f"declare {declared:,} bytes" in message and "more than the archive holds" in message
    assert stored_files(settings.resolved_models_dir) == ["mean_reversion"]


def raw_member(name: str, content: bytes) -> bytes:
    """One tar member as it lies in an archive: its header, then its content padded to whole blocks."""
    info = tarfile.TarInfo(name)
    info.size = len(content)
    padding = -len(content) % tarfile.BLOCKSIZE
    return info.tobuf(format=tarfile.PAX_FORMAT) + content + bytes(padding)
