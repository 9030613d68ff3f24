"""Deleting a run for good: its row and history in the database, its artifact files, its worker's log, and the
model version it wrote unless a named model uses it. Named models made from it stay (the registry is the record
of what was kept), still naming their ``source_operation`` and reporting ``source_deleted: true``.

Only an ended run can go: a pending or running one is refused (409) with nothing touched, since its trainer still
writes to it; cancel it first. The database goes first, in one transaction under the operation's lock, so from
then on every write to the run is a 404 (no artifact can arrive for it); the files follow.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from trainops.schemas.operations import DeletedOperation
from trainops.service.artifacts import ArtifactService
from trainops.service.operations import OperationsService
from trainops.service.workers import worker_log_path
from trainops.settings import Settings
from trainops.store.models import ModelStore

logger = logging.getLogger("trainops.service")


def delete_operation(
    operation_id: str, *, operations: OperationsService, artifacts: ArtifactService, settings: Settings
) -> DeletedOperation:
    """Remove the ended run ``operation_id`` and everything that is only its own; see the module's docstring.

    Args:
        operation_id: The run to delete.
        operations: The operations service (its database).
        artifacts: Where its artifact files are.
        settings: The models directory and ``TRAINOPS_HOME`` (the workers' logs).

    Returns:
        What was removed, and the named models kept.

    Raises:
        NotFoundError: no such operation (a second delete included).
        ConflictError: it is still pending or running; nothing is removed.

    Example:
        >>> delete_operation(run_id, operations=service, artifacts=files, settings=settings).epochs  # doctest: +SKIP
        120
    """
    removed = operations.delete(operation_id)
    count, size = artifacts.delete_all(operation_id)
    models = ModelStore(operations.store.engine)
    kept = models.made_from(operation_id)
    version = removed.operation.result.get("model_version") if removed.operation.result else None
    versions = 0
    if isinstance(version, str) and not kept:
        versions = _remove_version(models, settings.resolved_models_dir, version, operation_id)
    log = worker_log_path(settings, operation_id)
    had_log = log.is_file()
    log.unlink(missing_ok=True)
    return DeletedOperation(
        operation_id=operation_id,
        status=removed.operation.status,
        epochs=removed.epochs,
        steps=removed.steps,
        artifacts=count,
        artifact_bytes=size,
        model_versions=versions,
        worker_log=had_log,
        models_kept=kept,
    )


def _remove_version(models: ModelStore, models_dir: Path, relative: str, operation_id: str) -> int:
    """Remove the version directory ``relative`` (below ``models_dir``) when it is one and no named model points at
    it; 1 when removed."""
    root = models_dir.resolve()
    path = (root / relative).resolve()
    if root not in path.parents or not path.is_dir():
        return 0
    if models.references(relative) or models.references(str(path.relative_to(root))):
        return 0
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        logger.warning("the model version %s of deleted operation %s could not be removed", path, operation_id)
        return 0
    return 1
