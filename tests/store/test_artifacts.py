"""Artifact files: the name rule, atomic replacement, the size limit while streaming, the SHA-256 index."""

from __future__ import annotations

import doctest
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import trainops.schemas.artifacts
from trainops.errors import ConflictError, InvalidInputError, NotFoundError, PayloadTooLargeError
from trainops.schemas.artifacts import artifact_location, check_artifact_path
from trainops.store.artifacts import INDEX_DIR, ArtifactStore

OPERATION = "op_training_20250610_123456_ab12cd34"


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# -- the name rule -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "best.pt",
        "checkpoints/epoch-12/model_final.safetensors",
        ".hydra/config.yaml",
        "a" * 255,
        "/".join(["d" * 200] * 5),  # 1004 characters
        "console.log",  # only the device names themselves are Windows' own
        "v1.2.3",
    ],
)
def test_plain_relative_paths_are_accepted(path: str) -> None:
    assert check_artifact_path(path) == path


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../../etc/passwd", "the name '..' is not allowed"),
        ("/etc/passwd", "it is absolute"),
        ("a/../../b", "the name '..' is not allowed"),
        ("./a", "the name '.' is not allowed"),
        ("con", "device name on Windows"),
        ("logs/NUL.txt", "device name on Windows"),
        ("lpt1", "device name on Windows"),
        ("a\x00b", "NUL byte"),
        ("x" * 300, "has 300 characters (at most 255)"),
        ("/".join(["d" * 250] * 5), "at most 1,024"),
        ("", "it is empty"),
        ("a//b", "empty name"),
        ("dir/", "empty name"),
        ("a\\b", "backslash"),
        ("..\\..\\windows", "backslash"),
        ("loss curve.png", "holds ' '"),
        ("résumé.txt", "holds 'é'"),
        ("a:b", "holds ':'"),
        ("back~up", "holds '~'"),  # trainops' own entries carry a '~'
        ("report.", "ends with '.'"),
        ("...", "ends with '.'"),
    ],
)
def test_unsafe_paths_are_refused_with_the_rule(path: str, problem: str) -> None:
    with pytest.raises(InvalidInputError, match="is invalid") as refused:
        check_artifact_path(path)
    assert problem in refused.value.message
    assert "letters, digits, '.', '_', '-'" in refused.value.message  # the rule, so the fix is obvious
    assert refused.value.details["problem"] in refused.value.message


@pytest.mark.parametrize(
    ("filename", "directory", "stored"),
    [
        ("best.pt", None, "best.pt"),
        ("best.pt", "", "best.pt"),
        ("best.pt", "checkpoints", "checkpoints/best.pt"),
        ("best.pt", "checkpoints/", "checkpoints/best.pt"),
        ("loss.png", "plots/train", "plots/train/loss.png"),
    ],
)
def test_a_logged_file_keeps_its_name_inside_artifact_path_as_in_mlflow(
    filename: str, directory: str | None, stored: str
) -> None:
    assert artifact_location(filename, directory) == stored


def test_a_bad_directory_is_named_as_artifact_path() -> None:
    with pytest.raises(InvalidInputError, match=r"^artifact_path '\.\./up' is invalid"):
        artifact_location("best.pt", "../up")
    with pytest.raises(InvalidInputError, match=r"^file name 'my model\.pt' is invalid"):
        artifact_location("my model.pt", "checkpoints")


def test_the_rule_examples_run() -> None:
    result = doctest.testmod(trainops.schemas.artifacts, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# -- storing and reading -------------------------------------------------------------------------------------------


def test_put_lists_and_reads_back_with_size_and_sha256(store: ArtifactStore) -> None:
    info = store.put(OPERATION, "checkpoints/best.pt", [b"weights", b"-", b"v1"])
    store.put(OPERATION, "config.json", [b"{}"])

    assert (info.path, info.size, info.sha256) == ("checkpoints/best.pt", 10, sha(b"weights-v1"))
    assert store.root.joinpath(OPERATION, "checkpoints", "best.pt").read_bytes() == b"weights-v1"
    assert [a.path for a in store.list(OPERATION)] == ["checkpoints/best.pt", "config.json"]
    assert store.list(OPERATION)[0] == info
    assert store.read(OPERATION, "checkpoints/best.pt") == b"weights-v1"
    assert store.list("op_training_20250610_123456_00000000") == []  # nothing logged yet


def test_a_reupload_replaces_the_file(store: ArtifactStore) -> None:
    store.put(OPERATION, "model.pt", [b"old content"])
    replaced = store.put(OPERATION, "model.pt", [b"new"])

    assert store.read(OPERATION, "model.pt") == b"new"
    assert store.list(OPERATION) == [replaced]
    assert replaced.sha256 == sha(b"new") and replaced.size == 3


def test_an_empty_file_is_an_artifact(store: ArtifactStore) -> None:
    info = store.put(OPERATION, "empty.txt", [])
    assert (info.size, info.sha256) == (0, sha(b""))


def test_missing_artifacts_are_not_found_naming_the_path(store: ArtifactStore) -> None:
    store.put(OPERATION, "dir/a.txt", [b"a"])
    for path in ("nope.txt", "dir", "dir/a.txt/deeper"):
        with pytest.raises(NotFoundError, match="has no artifact"):
            store.open(OPERATION, path)


def test_the_store_refuses_unsafe_names_and_ids_itself(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is invalid"):
        store.put(OPERATION, "../escape.txt", [b"x"])
    with pytest.raises(InvalidInputError, match="operation id"):
        store.put("../../tmp", "x.txt", [b"x"])
    with pytest.raises(InvalidInputError, match="operation id"):
        store.list("..")
    assert not (tmp_path / "escape.txt").exists()


def test_a_file_and_a_directory_cannot_share_a_path(store: ArtifactStore) -> None:
    store.put(OPERATION, "plots", [b"a file"])
    with pytest.raises(ConflictError, match="sits where one of its directories goes"):
        store.put(OPERATION, "plots/loss.png", [b"png"])
    store.put(OPERATION, "reports/eval.txt", [b"text"])
    with pytest.raises(ConflictError, match="a directory of artifacts has that path"):
        store.put(OPERATION, "reports", [b"a file"])
    assert [a.path for a in store.list(OPERATION)] == ["plots", "reports/eval.txt"]
    assert leftovers(store) == []


def leftovers(store: ArtifactStore) -> list[str]:
    """Uploads in progress left behind."""
    return [str(path) for path in store.root.rglob(".upload-*")]


# -- the size limit ----------------------------------------------------------------------------------------------


def test_content_over_the_limit_is_refused_while_streaming(store: ArtifactStore) -> None:
    pulled = 0

    def chunks() -> Iterator[bytes]:
        nonlocal pulled
        for _ in range(1000):
            pulled += 1
            yield b"x" * 100

    store.put(OPERATION, "big.bin", [b"the previous version"])
    with pytest.raises(PayloadTooLargeError, match=r"the limit is 1,000 bytes per file") as refused:
        store.put(OPERATION, "big.bin", chunks(), max_bytes=1000)

    assert pulled == 11  # the 11th chunk crossed the limit; the other 989 were never pulled
    assert refused.value.details["limit_bytes"] == 1000
    assert store.read(OPERATION, "big.bin") == b"the previous version"  # unchanged
    assert leftovers(store) == []


def test_content_at_the_limit_is_stored(store: ArtifactStore) -> None:
    assert store.put(OPERATION, "exact.bin", [b"x" * 1000], max_bytes=1000).size == 1000


def test_a_local_file_over_the_limit_is_refused_from_its_size(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 2000)
    with pytest.raises(PayloadTooLargeError, match=r"\(2,000 bytes\)"):
        store.put_file(OPERATION, "big.bin", source, max_bytes=1000)
    assert store.put_file(OPERATION, "big.bin", source, max_bytes=2000).sha256 == sha(b"x" * 2000)


def test_a_failing_source_stores_nothing(store: ArtifactStore) -> None:
    def broken() -> Iterator[bytes]:
        yield b"half"
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        store.put(OPERATION, "half.bin", broken())
    assert store.list(OPERATION) == [] and leftovers(store) == []


# -- atomicity ---------------------------------------------------------------------------------------------------


def test_a_reader_of_the_old_file_keeps_reading_it_whole_across_a_replace(store: ArtifactStore) -> None:
    old = os.urandom(3 * 1024 * 1024)
    new = os.urandom(2 * 1024 * 1024)
    store.put(OPERATION, "model.bin", [old])

    info, handle = store.open(OPERATION, "model.bin")
    with handle:
        first = handle.read(1024 * 1024)
        store.put(OPERATION, "model.bin", [new])  # replaced while the reader is a third of the way in
        content = first + handle.read()

    assert content == old and info.sha256 == sha(old)  # the old file whole, described by its own hash
    reopened, handle = store.open(OPERATION, "model.bin")
    with handle:
        assert handle.read() == new and reopened.sha256 == sha(new)


def test_concurrent_readers_never_see_a_partial_file(store: ArtifactStore) -> None:
    versions = [bytes([n]) * (512 * 1024) for n in range(1, 9)]
    hashes = {sha(v) for v in versions}
    store.put(OPERATION, "weights.bin", [versions[0]])
    done = threading.Event()
    seen: list[tuple[str, str, int]] = []

    def read() -> None:
        while not done.is_set():
            info, handle = store.open(OPERATION, "weights.bin")
            with handle:
                content = handle.read()
            seen.append((sha(content), info.sha256, info.size))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for version in versions[1:] * 3:
            # written in small pieces, so a non-atomic write would be caught half-way
            store.put(OPERATION, "weights.bin", (version[i : i + 4096] for i in range(0, len(version), 4096)))
    finally:
        done.set()
        for reader in readers:
            reader.join()

    assert seen
    for content_sha, described_sha, size in seen:
        assert content_sha in hashes  # a whole version, never a mix or a prefix
        assert described_sha == content_sha and size == 512 * 1024  # and described by its own hash
    assert store.list(OPERATION)[0].sha256 == sha(versions[-1])


# -- the index ---------------------------------------------------------------------------------------------------


def test_a_lost_or_tampered_index_never_gives_a_wrong_hash(store: ArtifactStore) -> None:
    store.put(OPERATION, "a/b.txt", [b"content"])
    index = store.root / OPERATION / INDEX_DIR / "a" / "b.txt~"
    assert json.loads(index.read_text())["sha256"] == sha(b"content")

    index.write_text(json.dumps({**json.loads(index.read_text()), "sha256": "0" * 64, "inode": -1}))
    assert store.list(OPERATION)[0].sha256 == sha(b"content")  # not trusted: rehashed
    index.unlink()
    assert store.list(OPERATION)[0].sha256 == sha(b"content")
    assert json.loads(index.read_text())["sha256"] == sha(b"content")  # and cached again


def test_a_file_changed_behind_the_stores_back_is_rehashed(store: ArtifactStore) -> None:
    store.put(OPERATION, "notes.txt", [b"first"])
    (store.root / OPERATION / "notes.txt").write_bytes(b"edited by hand")
    info = store.list(OPERATION)[0]
    assert (info.sha256, info.size) == (sha(b"edited by hand"), 14)


def test_listing_skips_what_trainops_did_not_store(store: ArtifactStore) -> None:
    store.put(OPERATION, "kept.txt", [b"k"])
    base = store.root / OPERATION
    (base / ".upload-abc~").write_bytes(b"an upload in progress")
    (base / "has space.txt").write_bytes(b"put there by hand")
    assert [a.path for a in store.list(OPERATION)] == ["kept.txt"]


def test_an_upload_left_uncommitted_stores_nothing(store: ArtifactStore) -> None:
    store.put(OPERATION, "model.bin", [b"kept"])
    with store.upload(OPERATION, "model.bin") as upload:
        upload.write(b"never committed")
    assert store.read(OPERATION, "model.bin") == b"kept" and leftovers(store) == []

    with store.upload(OPERATION, "model.bin") as upload:
        upload.write(b"committed")
        info = upload.commit()
    with pytest.raises(ValueError, match="already finished"):
        upload.write(b"more")
    assert store.read(OPERATION, "model.bin") == b"committed" and info.size == 9


# -- uploads that do not complete ---------------------------------------------------------------------------------


def test_an_upload_refused_for_its_size_leaves_no_directory_behind(store: ArtifactStore) -> None:
    """Its directories were made before the first byte and left empty: not listed, yet a file of that name was
    then refused as 'a directory of artifacts has that path'."""
    store.put(OPERATION, "kept.txt", [b"x"])
    with pytest.raises(PayloadTooLargeError):
        store.put(OPERATION, "ghost/deeper/w.bin", [b"0123456789"], max_bytes=4)

    assert not (store.root / OPERATION / "ghost").exists()
    assert store.put(OPERATION, "ghost", [b"a file"]).size == 6
    assert [info.path for info in store.list(OPERATION)] == ["ghost", "kept.txt"]


def test_an_aborted_upload_keeps_a_directory_another_upload_writes_into(store: ArtifactStore) -> None:
    with store.upload(OPERATION, "shared/a.bin") as first, store.upload(OPERATION, "shared/b.bin") as second:
        second.write(b"b")
        second.commit()
        first.abort()

    assert [info.path for info in store.list(OPERATION)] == ["shared/b.bin"]


def test_an_upload_whose_operation_is_deleted_meanwhile_stores_nothing_and_says_so(store: ArtifactStore) -> None:
    """It failed with a FileNotFoundError (a 500), and its index entry made the deleted operation's directory
    again, which nothing ever removed."""
    store.put(OPERATION, "before.txt", [b"x"])
    with store.upload(OPERATION, "sub/late.bin") as upload:
        upload.write(b"late")
        assert store.delete_all(OPERATION) == (1, 1)
        with pytest.raises(NotFoundError, match=f"operation {OPERATION} was deleted while 'sub/late.bin' was being"):
            upload.commit()

    assert not (store.root / OPERATION).exists()
    assert [path.name for path in store.root.iterdir()] == []
