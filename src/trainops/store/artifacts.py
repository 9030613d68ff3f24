"""Artifact files on disk: one directory per operation, each file written atomically with its size and SHA-256.

Layout, under the artifacts directory (``TRAINOPS_ARTIFACTS_DIR``, default ``$TRAINOPS_HOME/artifacts``)::

    {operation_id}/{artifact_path}                the file, exactly as uploaded
    {operation_id}/.index~/{artifact_path}~       its size and SHA-256, for the file of one inode (a cache)
    {operation_id}/.../.upload-XXXX~              an upload in progress, in its target's directory

An artifact's name never holds a ``~`` (see :func:`~trainops.schemas.artifacts.check_artifact_path`), so trainops'
own entries can never collide with one, and listing skips them.

A file is written to a temporary file in its target's directory, flushed to disk, and renamed over the target:
a reader sees the old content or the new, never half of one, and a reader that opened the old file keeps reading
it whole. The SHA-256 is computed while writing and kept in the index entry together with the inode, size and
modification time of the file it describes; a reader trusts the entry only when they match the file it opened, and
otherwise hashes the file itself (and rewrites the entry). So the index is a cache that can be lost, stale or
tampered with without a wrong answer ever coming out.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from trainops.core.operation import looks_like_operation_id
from trainops.errors import ConflictError, InvalidInputError, NotFoundError, PayloadTooLargeError
from trainops.schemas.artifacts import ArtifactInfo, artifact_path_problem, check_artifact_path

CHUNK_BYTES = 1024 * 1024
"""Bytes read at a time from a file being stored or hashed."""
INDEX_DIR = ".index~"
INDEX_SUFFIX = "~"
UPLOAD_PREFIX = ".upload-"
UPLOAD_SUFFIX = "~"


def too_large(artifact_path: str, limit: int, size: int | None = None) -> PayloadTooLargeError:
    """The error for a file over the limit, the same whether its size was announced or found while streaming."""
    told = f" ({size:,} bytes)" if size is not None else ""
    return PayloadTooLargeError(
        f"artifact {artifact_path!r} is too large{told}: the limit is {limit:,} bytes per file "
        "(TRAINOPS_MAX_ARTIFACT_BYTES on the server); split the file or raise the limit",
        details={"path": artifact_path, "limit_bytes": limit, "size_bytes": size},
    )


class ArtifactStore:
    """The files logged to operations, under ``root``.

    Args:
        root: The artifacts directory; created on the first write.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- paths ----------------------------------------------------------------------------------------------

    def _operation_dir(self, operation_id: str) -> Path:
        # the id becomes a directory name: only ids of trainops' own form, never '..' or a path
        if not looks_like_operation_id(operation_id):
            raise InvalidInputError(
                f"operation id {operation_id!r} is invalid: use one like op_training_20250610_123456_ab12cd34"
            )
        return self.root / operation_id

    def _file(self, operation_id: str, artifact_path: str) -> Path:
        return self._operation_dir(operation_id).joinpath(*check_artifact_path(artifact_path).split("/"))

    def _index_file(self, operation_id: str, artifact_path: str) -> Path:
        parts = artifact_path.split("/")
        parts[-1] += INDEX_SUFFIX
        return self._operation_dir(operation_id).joinpath(INDEX_DIR, *parts)

    # -- writing --------------------------------------------------------------------------------------------

    def upload(self, operation_id: str, artifact_path: str, *, max_bytes: int | None = None) -> ArtifactUpload:
        """Begin storing ``artifact_path``: write its content with :meth:`ArtifactUpload.write`, then
        :meth:`~ArtifactUpload.commit` (or leave the ``with`` block, which aborts an upload not committed).

        Raises:
            InvalidInputError: an unsafe ``artifact_path`` or operation id.
            ConflictError: a file of the operation's artifacts sits where a directory of this path goes.
        """
        target = self._file(operation_id, artifact_path)
        created = self._make_directory(target.parent, artifact_path)
        return ArtifactUpload(self, operation_id, artifact_path, target, created, max_bytes)

    def put(
        self,
        operation_id: str,
        artifact_path: str,
        chunks: Iterable[bytes],
        *,
        max_bytes: int | None = None,
    ) -> ArtifactInfo:
        """Store the content ``chunks`` yields as ``artifact_path``, replacing any file stored there.

        The chunks are written as they come (a file is never held in memory whole); past ``max_bytes`` the write
        stops, nothing is stored, and no further chunk is pulled.

        Raises:
            InvalidInputError: an unsafe ``artifact_path`` or operation id.
            PayloadTooLargeError: the content exceeds ``max_bytes``.
            ConflictError: a directory sits where the file goes, or a file where a directory of its path goes.
        """
        with self.upload(operation_id, artifact_path, max_bytes=max_bytes) as upload:
            for chunk in chunks:
                upload.write(chunk)
            return upload.commit()

    def put_file(
        self, operation_id: str, artifact_path: str, source: Path, *, max_bytes: int | None = None
    ) -> ArtifactInfo:
        """Store the local file ``source`` as ``artifact_path``; see :meth:`put`.

        Raises:
            PayloadTooLargeError: the file exceeds ``max_bytes`` (found from its size, before reading it).
        """
        size = source.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise too_large(artifact_path, max_bytes, size)
        with source.open("rb") as handle:
            return self.put(operation_id, artifact_path, _chunks_of(handle), max_bytes=max_bytes)

    def _make_directory(self, directory: Path, artifact_path: str) -> list[Path]:
        """Make ``directory`` and return the directories this made, deepest first (an upload that does not
        complete removes those it leaves empty: an empty directory would refuse a file of its name)."""
        created = []
        missing = directory
        while missing != self.root and not missing.exists():
            created.append(missing)
            missing = missing.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as error:
            raise ConflictError(
                f"cannot store artifact {artifact_path!r}: a file of the operation's artifacts sits where one of "
                "its directories goes; choose another path",
                details={"path": artifact_path},
            ) from error
        return created

    def _write_index(self, operation_id: str, artifact_path: str, stat: os.stat_result, sha256: str) -> None:
        """Record the hash of the file of ``stat``'s inode; best effort, since a missing entry only costs a
        re-hash."""
        entry = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}
        index = self._index_file(operation_id, artifact_path)
        try:
            # never made again once the operation's directory is gone (a purge during the upload): no parents
            (self._operation_dir(operation_id) / INDEX_DIR).mkdir(exist_ok=True)
            index.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=index.parent, prefix=UPLOAD_PREFIX, suffix=UPLOAD_SUFFIX)
            try:
                with os.fdopen(descriptor, "w") as out:
                    json.dump(entry, out)
                os.replace(temporary, index)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
        except OSError:
            pass

    # -- reading --------------------------------------------------------------------------------------------

    def list(self, operation_id: str) -> list[ArtifactInfo]:
        """Every artifact of the operation, by path; none when it has none (or no directory yet)."""
        base = self._operation_dir(operation_id)
        found = []
        for directory, subdirectories, files in os.walk(base):
            # trainops' own entries (the index, uploads in progress) hold a '~'; anything else not of the rule
            # was not stored through trainops and is left out rather than served
            subdirectories[:] = sorted(d for d in subdirectories if artifact_path_problem(d) is None)
            relative = Path(directory).relative_to(base).as_posix()
            for name in files:
                artifact_path = name if relative == "." else f"{relative}/{name}"
                if artifact_path_problem(artifact_path) is not None:
                    continue
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):  # replaced or removed meanwhile
                    info, handle = self.open(operation_id, artifact_path)
                    handle.close()
                    found.append(info)
        return sorted(found, key=lambda info: info.path)

    def open(self, operation_id: str, artifact_path: str) -> tuple[ArtifactInfo, BinaryIO]:
        """The artifact's description and an open binary file of exactly the content it describes (the caller
        closes it). A re-upload meanwhile does not change what this file reads.

        Raises:
            NotFoundError: no artifact at ``artifact_path``.
            InvalidInputError: an unsafe ``artifact_path``.
        """
        path = self._file(operation_id, artifact_path)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFoundError(
                f"operation {operation_id} has no artifact {artifact_path!r}; list them with "
                f"`trainops ops artifacts {operation_id}`",
                details={"operation_id": operation_id, "path": artifact_path},
            ) from None
        try:
            stat = os.fstat(handle.fileno())
            sha256 = self._cached_sha256(operation_id, artifact_path, stat)
            if sha256 is None:
                sha256 = _hash(handle)
                handle.seek(0)
                self._write_index(operation_id, artifact_path, stat, sha256)
        except BaseException:
            handle.close()
            raise
        return _info(artifact_path, stat, sha256), handle

    def read(self, operation_id: str, artifact_path: str) -> bytes:
        """The whole content of a (small) artifact; see :meth:`open` to stream a large one."""
        _, handle = self.open(operation_id, artifact_path)
        with handle:
            return handle.read()

    def _cached_sha256(self, operation_id: str, artifact_path: str, stat: os.stat_result) -> str | None:
        try:
            entry = json.loads(self._index_file(operation_id, artifact_path).read_bytes())
        except (OSError, ValueError):
            return None
        same_file = isinstance(entry, dict) and (
            entry.get("inode") == stat.st_ino
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
        )
        sha256 = entry.get("sha256") if same_file else None
        return sha256 if isinstance(sha256, str) and len(sha256) == 64 else None

    # -- deleting -------------------------------------------------------------------------------------------

    def delete_all(self, operation_id: str) -> tuple[int, int]:
        """Remove every file of the operation (its artifacts and trainops' own entries beside them).

        The operation's directory is first renamed out of the way (one atomic step: a reader then finds no
        artifact rather than some), then removed.

        Returns:
            How many artifacts there were, and their bytes (as :meth:`list` counts them, without hashing).
        """
        base = self._operation_dir(operation_id)
        count = size = 0
        for directory, subdirectories, files in os.walk(base):
            subdirectories[:] = [d for d in subdirectories if artifact_path_problem(d) is None]
            for name in files:
                if artifact_path_problem(name) is None:
                    with contextlib.suppress(OSError):
                        size += os.lstat(os.path.join(directory, name)).st_size
                        count += 1
        doomed = self.root / f".deleting-{operation_id}-{os.urandom(4).hex()}~"
        try:
            os.replace(base, doomed)
        except FileNotFoundError:
            return count, size
        shutil.rmtree(doomed)
        return count, size


class ArtifactUpload:
    """One file being stored: a temporary file in its target's directory, renamed over the target on
    :meth:`commit`. Made by :meth:`ArtifactStore.upload`; a context manager that aborts when left uncommitted."""

    def __init__(
        self,
        store: ArtifactStore,
        operation_id: str,
        artifact_path: str,
        target: Path,
        created: list[Path],
        max_bytes: int | None,
    ) -> None:
        self.store = store
        self.operation_id = operation_id
        self.artifact_path = artifact_path
        self.max_bytes = max_bytes
        self.size = 0
        self._target = target
        self._directory = target.parent
        self._created = created
        self._digest = hashlib.sha256()
        try:
            descriptor, temporary = tempfile.mkstemp(dir=self._directory, prefix=UPLOAD_PREFIX, suffix=UPLOAD_SUFFIX)
        except FileNotFoundError:  # another upload that made the directory gave up and removed it meanwhile
            self._directory.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=self._directory, prefix=UPLOAD_PREFIX, suffix=UPLOAD_SUFFIX)
        self._temporary = temporary
        self._out: BinaryIO | None = os.fdopen(descriptor, "wb")
        self._committed = False

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``.

        Raises:
            PayloadTooLargeError: the content passed ``max_bytes`` (the upload is aborted: nothing is stored).
        """
        if self._out is None:
            raise ValueError(f"the upload of {self.artifact_path!r} is already finished")
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            self.abort()
            raise too_large(self.artifact_path, self.max_bytes)
        self._digest.update(chunk)
        self._out.write(chunk)

    def commit(self) -> ArtifactInfo:
        """Put the file in place (replacing what was stored there) and describe it.

        Raises:
            ConflictError: a directory of artifacts has this path (the upload is aborted).
        """
        if self._out is None:
            raise ValueError(f"the upload of {self.artifact_path!r} is already finished")
        try:
            self._out.flush()
            os.fsync(self._out.fileno())
            written = os.fstat(self._out.fileno())
            self._out.close()
            self._out = None
            sha256 = self._digest.hexdigest()
            # The index entry names the new file's inode, which the rename keeps: written first, it is ignored
            # until the rename lands, and a reader in between hashes the old file itself.
            self.store._write_index(self.operation_id, self.artifact_path, written, sha256)
            try:
                os.replace(self._temporary, self._target)
            except FileNotFoundError as error:  # the operation was deleted for good meanwhile (its files with it)
                raise NotFoundError(
                    f"operation {self.operation_id} was deleted while {self.artifact_path!r} was being uploaded; "
                    "nothing was stored",
                    details={"operation_id": self.operation_id, "path": self.artifact_path},
                ) from error
            except (IsADirectoryError, NotADirectoryError, PermissionError) as error:
                if not self._target.is_dir():
                    raise
                raise ConflictError(
                    f"cannot store artifact {self.artifact_path!r}: a directory of artifacts has that path; "
                    "choose another name",
                    details={"path": self.artifact_path},
                ) from error
            self._committed = True
            _sync_directory(self._directory)
        except BaseException:
            self.abort()
            raise
        return _info(self.artifact_path, written, sha256)

    def abort(self) -> None:
        """Drop the upload: nothing is stored, the temporary file is gone. Harmless when already finished."""
        if self._committed:
            return
        if self._out is not None:
            self._out.close()
            self._out = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temporary)
        for directory in self._created:  # those this upload made, if it left them empty
            try:
                directory.rmdir()
            except OSError:  # not empty (another upload's file), or gone
                break
        self._created = []

    def __enter__(self) -> ArtifactUpload:
        return self

    def __exit__(self, *_: object) -> None:
        self.abort()


def _chunks_of(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk


def _hash(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in _chunks_of(handle):
        digest.update(chunk)
    return digest.hexdigest()


def _info(artifact_path: str, stat: os.stat_result, sha256: str) -> ArtifactInfo:
    created = datetime.fromtimestamp(stat.st_mtime_ns / 1e9, tz=UTC)
    return ArtifactInfo(path=artifact_path, size=stat.st_size, sha256=sha256, created_at=created)


def _sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` survive a power loss (POSIX; Windows has no directory handles to sync)."""
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
