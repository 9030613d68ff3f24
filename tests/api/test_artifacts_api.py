"""``/operations/{id}/artifacts`` over a real HTTP server: upload, list, download, hostile names, size limits."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from trainops.api import create_app
from trainops.service.operations import OperationsService
from trainops.settings import Settings, get_settings

LIMIT = 64 * 1024
"""TRAINOPS_MAX_ARTIFACT_BYTES in these tests; the JSON body limit is 1 KiB, far below it."""


@pytest.fixture
def settings(database_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRAINOPS_MAX_ARTIFACT_BYTES", str(LIMIT))
    monkeypatch.setenv("TRAINOPS_MAX_REQUEST_BYTES", "1024")
    get_settings.cache_clear()
    return get_settings()


def create(api: httpx.Client) -> str:
    response = api.post("/operations", json={"operation_type": "training"})
    assert response.status_code == 201, response.text
    operation_id: str = response.json()["data"]["operation_id"]
    return operation_id


def upload(api: httpx.Client, operation_id: str, path: str, content: bytes | Iterator[bytes]) -> httpx.Response:
    return api.post(
        f"/operations/{operation_id}/artifacts",
        params={"path": path},
        content=content,
        headers={"Content-Type": "application/octet-stream"},
    )


def stored_files(settings: Settings) -> list[str]:
    root = settings.resolved_artifacts_dir
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "~" not in str(p))


def test_upload_list_and_download_byte_identical(api: httpx.Client, settings: Settings) -> None:
    operation_id = create(api)
    weights = os.urandom(40_000)  # far over the 1 KiB JSON body limit: this route has its own
    created = upload(api, operation_id, "checkpoints/best.pt", weights)
    assert created.status_code == 201, created.text
    info = created.json()["data"]
    assert created.json()["success"] is True
    assert info["path"] == "checkpoints/best.pt"
    assert info["size"] == 40_000
    assert info["sha256"] == hashlib.sha256(weights).hexdigest()
    assert set(info) == {"path", "size", "sha256", "created_at"}
    upload(api, operation_id, "config.json", b'{"lr": 0.001}')

    listed = api.get(f"/operations/{operation_id}/artifacts")
    assert listed.status_code == 200
    assert [item["path"] for item in listed.json()["data"]] == ["checkpoints/best.pt", "config.json"]
    assert listed.json()["data"][0] == info

    downloaded = api.get(f"/operations/{operation_id}/artifacts/checkpoints/best.pt")
    assert downloaded.status_code == 200
    assert downloaded.content == weights
    assert downloaded.headers["content-length"] == "40000"
    assert downloaded.headers["content-disposition"] == 'attachment; filename="best.pt"'
    assert downloaded.headers["etag"] == f'"{info["sha256"]}"'
    assert downloaded.headers["content-type"] == "application/octet-stream"
    config = api.get(f"/operations/{operation_id}/artifacts/config.json")
    assert config.headers["content-type"].startswith("application/json") and config.json() == {"lr": 0.001}

    etag = downloaded.headers["etag"]
    unchanged = api.get(f"/operations/{operation_id}/artifacts/checkpoints/best.pt", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert stored_files(settings) == [f"{operation_id}/checkpoints/best.pt", f"{operation_id}/config.json"]

    # the JSON routes keep their own limit
    too_big = api.post(f"/operations/{operation_id}/metrics", content=b" " * 2048)
    assert too_big.status_code == 413 and "TRAINOPS_MAX_REQUEST_BYTES" in too_big.json()["error"]["message"]


def test_a_reupload_replaces_and_an_ended_operation_still_accepts_files(api: httpx.Client) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/complete", json={"status": "completed"})

    assert upload(api, operation_id, "report.txt", b"draft").status_code == 201
    second = upload(api, operation_id, "report.txt", b"final report")
    assert second.status_code == 201
    assert api.get(f"/operations/{operation_id}/artifacts/report.txt").content == b"final report"
    assert [item["size"] for item in api.get(f"/operations/{operation_id}/artifacts").json()["data"]] == [12]


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../../etc/passwd", "'..' is not allowed"),
        ("/etc/passwd", "absolute"),
        ("a/../../b", "'..' is not allowed"),
        ("con", "device name on Windows"),
        ("a\x00b", "query.path contains a NUL character"),
        ("s" * 300, "300 characters"),
        ("..\\..\\boot.ini", "backslash"),
        ("", "empty"),
    ],
)
def test_hostile_upload_names_are_refused_before_the_body_is_stored(
    api: httpx.Client, settings: Settings, path: str, problem: str
) -> None:
    operation_id = create(api)
    refused = upload(api, operation_id, path, b"payload")
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_input" and problem in error["message"]
    assert stored_files(settings) == []


@pytest.mark.parametrize(
    "encoded",
    ["..%2F..%2Fetc%2Fpasswd", "%2E%2E/%2E%2E/etc/passwd", "a%2F..%2F..%2F..%2Fsecret", "%2Fetc%2Fpasswd", "x%00y"],
)
def test_encoded_hostile_download_paths_are_refused(api: httpx.Client, encoded: str) -> None:
    operation_id = create(api)
    upload(api, operation_id, "ok.txt", b"ok")
    refused = api.get(f"/operations/{operation_id}/artifacts/{encoded}")
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "invalid_input"


def test_multipart_uploads_are_refused_with_the_way_to_send_a_file(api: httpx.Client) -> None:
    operation_id = create(api)
    refused = api.post(f"/operations/{operation_id}/artifacts", params={"path": "a.txt"}, files={"file": b"abc"})
    assert refused.status_code == 422
    assert "--data-binary" in refused.json()["error"]["message"]


def test_unknown_operations_and_artifacts_are_404(api: httpx.Client) -> None:
    unknown = "op_training_20250101_000000_00000000"
    for response in (
        upload(api, unknown, "a.txt", b"abc"),
        api.get(f"/operations/{unknown}/artifacts"),
        api.get(f"/operations/{unknown}/artifacts/a.txt"),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    operation_id = create(api)
    missing = api.get(f"/operations/{operation_id}/artifacts/nope.txt")
    assert missing.status_code == 404 and "has no artifact 'nope.txt'" in missing.json()["error"]["message"]
    assert api.get(f"/operations/{operation_id}/artifacts").json()["data"] == []


def test_an_announced_size_over_the_limit_is_413(api: httpx.Client, settings: Settings) -> None:
    operation_id = create(api)
    upload(api, operation_id, "model.bin", b"previous")
    refused = upload(api, operation_id, "model.bin", b"x" * (LIMIT + 1))
    assert refused.status_code == 413
    error = refused.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "TRAINOPS_MAX_ARTIFACT_BYTES" in error["message"] and f"{LIMIT + 1:,} bytes" in error["message"]
    assert error["details"]["limit_bytes"] == LIMIT
    assert api.get(f"/operations/{operation_id}/artifacts/model.bin").content == b"previous"
    assert upload(api, operation_id, "exact.bin", b"x" * LIMIT).status_code == 201


def test_a_streamed_body_over_the_limit_is_413(api: httpx.Client, settings: Settings) -> None:
    operation_id = create(api)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while the body streams in
        for _ in range(2 * LIMIT // 4096):
            yield b"x" * 4096

    refused = upload(api, operation_id, "streamed.bin", chunks())
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "payload_too_large"
    assert stored_files(settings) == []
    assert not list(settings.resolved_artifacts_dir.rglob(".upload-*"))  # the partial file is gone


def asgi_upload(
    settings: Settings, service: OperationsService, operation_id: str, path: str, chunks: int, chunk_bytes: int = 4096
) -> tuple[httpx.Response, int]:
    """Upload ``chunks`` chunks straight into the app (no server buffering in between); returns the answer and how
    many chunks the app pulled from the client."""
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(chunks):
            pulled += 1
            yield b"x" * chunk_bytes

    async def send() -> httpx.Response:
        app = create_app(settings, service=service)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as client:
                url = f"/operations/{operation_id}/artifacts"
                return await client.post(url, params={"path": path}, content=body())

    return asyncio.run(send()), pulled


def test_a_refused_upload_is_not_read_whole(settings: Settings, service: OperationsService) -> None:
    operation_id = service.create().operation_id
    chunks = 10 * LIMIT // 4096  # ten times the limit

    refused, pulled = asgi_upload(settings, service, operation_id, "big.bin", chunks)
    assert refused.status_code == 413
    assert pulled <= LIMIT // 4096 + 2  # stopped just past the limit, not after the whole body

    unknown, pulled = asgi_upload(settings, service, "op_training_20250101_000000_00000000", "a.bin", chunks)
    assert unknown.status_code == 404 and pulled == 0  # refused before a byte was read
    bad_name, pulled = asgi_upload(settings, service, operation_id, "../a.bin", chunks)
    assert bad_name.status_code == 422 and pulled == 0

    stored, pulled = asgi_upload(settings, service, operation_id, "ok.bin", LIMIT // 4096)
    assert stored.status_code == 201 and pulled == LIMIT // 4096
    assert stored.json()["data"]["sha256"] == hashlib.sha256(b"x" * LIMIT).hexdigest()


def test_the_artifacts_directory_and_limit_follow_the_settings(tmp_path: Path) -> None:
    assert Settings(home=tmp_path).resolved_artifacts_dir == tmp_path / "artifacts"
    elsewhere = tmp_path / "elsewhere"
    assert Settings(home=tmp_path, artifacts_dir=elsewhere).resolved_artifacts_dir == elsewhere
    assert Settings(home=tmp_path).max_artifact_bytes == 512 * 1024 * 1024
