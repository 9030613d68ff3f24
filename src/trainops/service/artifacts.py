"""ArtifactService: the files logged to operations, with the rules every interface shares.

The rules: an artifact belongs to an operation that exists (404 otherwise); its path is a safe relative name
(:func:`~trainops.schemas.artifacts.check_artifact_path`); a file is at most ``max_bytes`` (413), refused while
it streams in; a re-upload of the same path replaces the file. An operation that has ended still accepts
artifacts, as an MLflow run does: a run's files (the final checkpoint, plots of its curves, an evaluation report)
often come after its last epoch, or after it was stopped.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from trainops.schemas.artifacts import ArtifactInfo, check_artifact_path
from trainops.service.operations import OperationsService
from trainops.settings import Settings
from trainops.store.artifacts import ArtifactStore, ArtifactUpload, too_large


class ArtifactService:
    """Artifacts of operations: store, list, open.

    Args:
        store: Where the files live.
        operations: The operations they belong to (checked to exist).
        max_bytes: The largest file accepted.
    """

    def __init__(self, store: ArtifactStore, operations: OperationsService, *, max_bytes: int) -> None:
        self.store = store
        self.operations = operations
        self.max_bytes = max_bytes

    def check_upload(self, operation_id: str, artifact_path: str, size: int | None = None) -> str:
        """Everything that can be refused before reading a byte: the path, an announced ``size``, the operation.

        Returns:
            The checked artifact path.

        Raises:
            InvalidInputError: an unsafe path.
            PayloadTooLargeError: ``size`` exceeds the limit.
            NotFoundError: no such operation.
        """
        check_artifact_path(artifact_path)
        if size is not None and size > self.max_bytes:
            raise too_large(artifact_path, self.max_bytes, size)
        self.operations.get(operation_id)
        return artifact_path

    def begin(self, operation_id: str, artifact_path: str, *, size: int | None = None) -> ArtifactUpload:
        """Check an upload (:meth:`check_upload`) and open it: the caller writes the content as it arrives and
        commits (the API route, which reads the request body on the event loop and writes in worker threads).

        Raises:
            InvalidInputError, PayloadTooLargeError, NotFoundError: see :meth:`check_upload`.
            ConflictError: a file of artifacts sits where a directory of ``artifact_path`` goes.
        """
        self.check_upload(operation_id, artifact_path, size)
        return self.store.upload(operation_id, artifact_path, max_bytes=self.max_bytes)

    def put(
        self, operation_id: str, artifact_path: str, chunks: Iterable[bytes], *, size: int | None = None
    ) -> ArtifactInfo:
        """Store the content ``chunks`` yields as the operation's ``artifact_path``.

        Nothing is pulled from ``chunks`` before the checks of :meth:`check_upload` pass, and nothing more once
        the content passes the limit: a refused upload is never read whole.

        Args:
            size: The size the sender announced, if any (refused at once when over the limit).

        Raises:
            InvalidInputError, PayloadTooLargeError, NotFoundError: see :meth:`check_upload`; the limit is also
                enforced on the content itself.
            ConflictError: a directory of artifacts sits at ``artifact_path`` (or a file on its way).
        """
        self.check_upload(operation_id, artifact_path, size)
        return self.store.put(operation_id, artifact_path, chunks, max_bytes=self.max_bytes)

    def put_file(self, operation_id: str, artifact_path: str, source: Path) -> ArtifactInfo:
        """Store the local file ``source`` as the operation's ``artifact_path``; see :meth:`put`."""
        self.check_upload(operation_id, artifact_path, source.stat().st_size)
        return self.store.put_file(operation_id, artifact_path, source, max_bytes=self.max_bytes)

    def list(self, operation_id: str) -> list[ArtifactInfo]:
        """The operation's artifacts, by path. Raises :class:`~trainops.errors.NotFoundError` for an unknown
        operation."""
        self.operations.get(operation_id)
        return self.store.list(operation_id)

    def open(self, operation_id: str, artifact_path: str) -> tuple[ArtifactInfo, BinaryIO]:
        """One artifact's description and an open file of that content (the caller closes it).

        Raises:
            InvalidInputError: an unsafe path.
            NotFoundError: no such operation, or no artifact at that path.
        """
        check_artifact_path(artifact_path)
        self.operations.get(operation_id)
        return self.store.open(operation_id, artifact_path)

    def delete_all(self, operation_id: str) -> tuple[int, int]:
        """Remove every file logged to the operation, whether or not it still exists (the purge of a run removes
        its row first, so that no new artifact can arrive, then its files).

        Returns:
            How many artifacts there were and their bytes.
        """
        return self.store.delete_all(operation_id)


def open_artifacts(settings: Settings, operations: OperationsService) -> ArtifactService:
    """The artifact service over ``settings``' artifacts directory and size limit."""
    return ArtifactService(
        ArtifactStore(settings.resolved_artifacts_dir), operations, max_bytes=settings.max_artifact_bytes
    )
