"""``GET /data/{symbol}/{timeframe}``: the stored market data file, streamed, with its SHA-256 as the ETag and its
modification time as ``Last-Modified`` (a worker's cache revalidates with them); 404 naming what exists for an
unknown pair, 422 for a symbol or timeframe that is not one. Then ``TrainOps.download_data`` on both transports:
the file lands under its server name, an unchanged copy is kept without a transfer, a changed one replaced.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from trainops.client import TrainOps
from trainops.errors import ConflictError, InvalidInputError, NotFoundError
from trainops.pipeline import data_files
from trainops.settings import Settings, get_settings


@pytest.fixture
def data_dir(market_data: Path, tmp_path: Path) -> Path:
    """A data directory of this test's own (tests change files in it): EURUSD 1h and GOOG 1d."""
    directory = tmp_path / "server-data"
    directory.mkdir()
    for name in ("EURUSD_1h.csv", "GOOG_1d.csv"):
        shutil.copy2(market_data / name, directory / name)
    return directory


@pytest.fixture
def settings(training_settings: Settings, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TRAINOPS_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    return get_settings()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def error_message(response: httpx.Response, status_code: int) -> str:
    assert response.status_code == status_code, response.text
    body = response.json()
    assert body["success"] is False
    message: str = body["error"]["message"]
    return message


# -- the route ---------------------------------------------------------------------------------------------------


def test_the_stored_file_is_served_whole_with_its_identity(api: httpx.Client, data_dir: Path) -> None:
    stored = data_dir / "EURUSD_1h.csv"
    response = api.get("/data/EURUSD/1h")

    assert response.status_code == 200, response.text
    assert response.content == stored.read_bytes()
    assert response.headers["etag"] == f'"{sha256(stored)}"'
    assert response.headers["last-modified"] == formatdate(stored.stat().st_mtime, usegmt=True)
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-length"] == str(stored.stat().st_size)
    assert response.headers["content-disposition"] == 'attachment; filename="EURUSD_1h.csv"'
    assert response.headers["x-content-type-options"] == "nosniff"


def test_symbols_and_timeframes_are_read_as_everywhere_else(api: httpx.Client) -> None:
    canonical = api.get("/data/EURUSD/1h")
    for symbol, timeframe in [("eurusd", "1h"), ("EURUSD", "H1"), (" EurUsd", "hourly")]:
        response = api.get(f"/data/{symbol}/{timeframe}")
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == canonical.headers["etag"]


def test_an_unchanged_file_answers_304_to_its_etag(api: httpx.Client, data_dir: Path) -> None:
    etag = api.get("/data/EURUSD/1h").headers["etag"]
    for sent in (etag, f'"0000", {etag}', f"W/{etag}", "*"):
        response = api.get("/data/EURUSD/1h", headers={"If-None-Match": sent})
        assert response.status_code == 304, sent
        assert response.content == b""
        assert response.headers["etag"] == etag

    assert api.get("/data/EURUSD/1h", headers={"If-None-Match": '"0000"'}).status_code == 200


def test_if_modified_since_counts_only_without_an_etag(api: httpx.Client, data_dir: Path) -> None:
    modified = (data_dir / "EURUSD_1h.csv").stat().st_mtime
    later, earlier = formatdate(modified + 60, usegmt=True), formatdate(modified - 60, usegmt=True)

    assert api.get("/data/EURUSD/1h", headers={"If-Modified-Since": later}).status_code == 304
    assert api.get("/data/EURUSD/1h", headers={"If-Modified-Since": earlier}).status_code == 200
    assert api.get("/data/EURUSD/1h", headers={"If-Modified-Since": "not a date"}).status_code == 200
    both = {"If-Modified-Since": later, "If-None-Match": '"0000"'}
    assert api.get("/data/EURUSD/1h", headers=both).status_code == 200


def test_a_changed_file_gets_a_new_etag(api: httpx.Client, data_dir: Path) -> None:
    before = api.get("/data/GOOG/1d").headers["etag"]
    stored = data_dir / "GOOG_1d.csv"
    stored.write_bytes(stored.read_bytes() + b"")  # rewritten, same bytes: the identity is the content
    assert api.get("/data/GOOG/1d").headers["etag"] == before

    lines = stored.read_text().splitlines(keepends=True)
    stored.write_text("".join(lines[:-1]))
    after = api.get("/data/GOOG/1d", headers={"If-None-Match": before})
    assert after.status_code == 200
    assert after.headers["etag"] == f'"{sha256(stored)}"' != before


def test_parquet_files_are_served_as_parquet(api: httpx.Client, data_dir: Path) -> None:
    (data_dir / "EURUSD_1h.csv").rename(data_dir / "EURUSD_1h.parquet")  # the route serves bytes, never parses
    response = api.get("/data/EURUSD/1h")
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    assert response.headers["content-disposition"] == 'attachment; filename="EURUSD_1h.parquet"'


@pytest.mark.parametrize("path", ["/data/NOPE/1h", "/data/GOOG/1h", "/data/EURUSD/1w"])
def test_an_unknown_pair_is_a_404_naming_what_there_is(api: httpx.Client, path: str) -> None:
    message = error_message(api.get(path), 404)
    assert "no market data for" in message
    assert "Available: EURUSD_1h, GOOG_1d" in message


@pytest.mark.parametrize(
    "path",
    [
        "/data/..%2F..%2Fetc/1h",
        "/data/%2E%2E/1h",
        "/data/..%5Cetc/1h",
        "/data/a%20b/1h",
        "/data/.hidden/1h",
        f"/data/{'X' * 40}/1h",
        "/data/EURUSD/..%2F1h",
        "/data/%2Fetc%2Fpasswd/1h",
    ],
)
def test_hostile_symbols_are_refused_with_the_rule(api: httpx.Client, path: str) -> None:
    assert "invalid symbol" in error_message(api.get(path), 422)


@pytest.mark.parametrize("timeframe", ["1M", "2x", "%2E%2E", "1h.csv"])
def test_bad_timeframes_are_refused_naming_the_valid_ones(api: httpx.Client, timeframe: str) -> None:
    message = error_message(api.get(f"/data/EURUSD/{timeframe}"), 422)
    assert "timeframe" in message and "1h" in message


def test_a_csv_and_a_parquet_file_for_one_pair_is_a_409(api: httpx.Client, data_dir: Path) -> None:
    shutil.copy2(data_dir / "GOOG_1d.csv", data_dir / "GOOG_1d.parquet")
    response = api.get("/data/GOOG/1d")
    assert "both GOOG_1d.csv and GOOG_1d.parquet exist" in error_message(response, 409)  # the server's disk is at fault
    assert response.json()["error"]["code"] == "conflict"


def test_the_download_route_is_in_the_openapi_document(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    operation = document["paths"]["/api/v1/data/{symbol}/{timeframe}"]["get"]
    assert set(operation["responses"]) >= {"200", "304", "404", "409", "422"}
    assert "text/csv" in operation["responses"]["200"]["content"]
    assert "ETag" in operation["responses"]["200"]["headers"]


# -- a file that changes while it is served ----------------------------------------------------------------------


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """What the live server logs: uvicorn's logger does not reach the root, so caplog listens on it directly."""
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.mark.parametrize("replacement", ["same size", "shorter"])
def test_a_file_replaced_after_it_was_hashed_is_served_under_its_own_identity(
    api: httpx.Client, data_dir: Path, monkeypatch: pytest.MonkeyPatch, replacement: str
) -> None:
    stored = data_dir / "EURUSD_1h.csv"
    old = stored.read_bytes()
    new = old.replace(b"1", b"2") if replacement == "same size" else old[: len(old) // 2]
    hash_file = data_files._sha256
    replaced = []

    def hash_then_replace(source: io.BufferedReader) -> str:
        digest = hash_file(source)
        if not replaced:  # the first look hashed the old file; now the path holds a new one (atomically)
            (data_dir / "new.tmp").write_bytes(new)
            os.replace(data_dir / "new.tmp", stored)
            replaced.append(stored)
        return digest

    monkeypatch.setattr(data_files, "_sha256", hash_then_replace)
    response = api.get("/data/EURUSD/1h")

    assert replaced
    assert response.status_code == 200, response.text
    assert response.content == new  # what the path held when the route opened it
    assert response.headers["etag"] == f'"{hashlib.sha256(response.content).hexdigest()}"'
    assert response.headers["content-length"] == str(len(response.content))


@pytest.mark.parametrize("rewrite", ["truncated", "same size"])
def test_a_file_rewritten_in_place_while_it_streams_is_cut_short_without_a_traceback(
    api: httpx.Client, data_dir: Path, server_log: pytest.LogCaptureFixture, rewrite: str
) -> None:
    size = 64 * 1024 * 1024  # far more than the socket buffers: the server waits on the client, mid-file
    big = data_dir / "BIG_1h.csv"
    big.write_bytes(b"x" * size)
    with api.stream("GET", "/data/BIG/1h") as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(size)
        with big.open("r+b") as out:  # rewritten in place, as DataFrame.to_csv writes, past what was sent
            if rewrite == "truncated":
                out.truncate(size // 2)
            else:
                out.seek(size - 1024 * 1024)
                out.write(b"y" * 1024 * 1024)
        # a complete body would not be the one the ETag names: the client must see it cut short
        with pytest.raises(httpx.RemoteProtocolError, match="without sending complete message body"):
            response.read()

    assert [record.getMessage() for record in server_log.records if record.exc_info] == []
    assert api.get("/data/BIG/1h").headers["etag"] == f'"{sha256(big)}"'  # the server serves on


# -- the facade, both transports -----------------------------------------------------------------------------------


def test_download_data_writes_the_file_under_its_server_name(ops: TrainOps, data_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "data"
    path = ops.download_data("eurusd", "H1", cache)

    assert path == cache / "EURUSD_1h.csv"
    assert path.read_bytes() == (data_dir / "EURUSD_1h.csv").read_bytes()
    assert sorted(os.listdir(cache)) == ["EURUSD_1h.csv"]  # no temporary file left


def test_an_unchanged_copy_is_kept_and_a_changed_one_replaced(ops: TrainOps, data_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = ops.download_data("GOOG", "1d", cache)
    identity = first.stat().st_ino, first.stat().st_mtime_ns

    again = ops.download_data("GOOG", "1d", cache)
    assert again == first
    assert (again.stat().st_ino, again.stat().st_mtime_ns) == identity  # not written again

    stored = data_dir / "GOOG_1d.csv"
    stored.write_text("".join(stored.read_text().splitlines(keepends=True)[:-5]))
    changed = ops.download_data("GOOG", "1d", cache)
    assert changed.read_bytes() == stored.read_bytes()

    first.write_text("damaged")  # a local copy that differs is replaced too
    assert ops.download_data("GOOG", "1d", cache).read_bytes() == stored.read_bytes()


def test_a_copy_in_the_other_format_is_removed(ops: TrainOps, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "EURUSD_1h.parquet").write_bytes(b"an older copy in the other format")
    ops.download_data("EURUSD", "1h", cache)
    assert sorted(os.listdir(cache)) == ["EURUSD_1h.csv"]


def test_a_csv_and_a_parquet_file_for_one_pair_is_a_conflict_on_both_transports(
    ops: TrainOps, data_dir: Path, tmp_path: Path
) -> None:
    shutil.copy2(data_dir / "GOOG_1d.csv", data_dir / "GOOG_1d.parquet")
    with pytest.raises(ConflictError, match=r"both GOOG_1d\.csv and GOOG_1d\.parquet exist in .*; keep one"):
        ops.download_data("GOOG", "1d", tmp_path / "cache")


def test_download_data_refusals_are_the_same_on_both_transports(ops: TrainOps, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="Available: EURUSD_1h, GOOG_1d"):
        ops.download_data("NOPE", "1h", tmp_path / "cache")
    with pytest.raises(InvalidInputError, match="invalid symbol"):
        ops.download_data("../../etc", "1h", tmp_path / "cache")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(InvalidInputError, match="it is a file"):
        ops.download_data("EURUSD", "1h", tmp_path / "a-file")
    assert not list((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("symbol", ["BRK.B", "A..B", "X-1_Y"])
def test_symbols_with_dots_and_dashes_download_under_their_name(
    ops: TrainOps, data_dir: Path, tmp_path: Path, symbol: str
) -> None:
    shutil.copy2(data_dir / "GOOG_1d.csv", data_dir / f"{symbol}_1d.csv")
    path = ops.download_data(symbol.lower(), "1d", tmp_path / "cache")
    assert path == tmp_path / "cache" / f"{symbol}_1d.csv"
    assert path.read_bytes() == (data_dir / "GOOG_1d.csv").read_bytes()
