"""Deleting a run for good: its row and history in the database, its artifact files, its worker's log, and the
model version it wrote unless a named model uses it. Named models made from it stay (the registry is the record
of what was kept), still naming their ``source_operation`` and reporting ``source_deleted: true``.

The model version to remove is the folder the run's ``result.model_version`` names, and any reporting client may
write that result. So it is removed only when it is a version folder exactly as the registry names them,
``{strategy}/{series}_vN`` below the models directory, whose ``metadata.json`` says this run wrote it, and no
named model uses it. Anything else a result names (a strategy's whole folder, another run's version, ``..``, an
absolute path) stays, and the answer's ``model_version_kept`` says why.

Only an ended run can go: a pending or running one is refused (409) with nothing touched, since its trainer still
writes to it; cancel it first. The database goes first, in one transaction under the operation's lock, so from
then on every write to the run is a 404 (no artifact can arrive for it); the files follow.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from trainops.schemas.operations import DeletedOperation
from trainops.service.artifacts import ArtifactService
from trainops.service.model_names import names_locked
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
    named = (removed.operation.result or {}).get("model_version")
    versions, version_kept = 0, None
    if named is not None:
        versions, version_kept = _purge_version(models, settings.resolved_models_dir, named, operation_id, kept)
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
        model_version_kept=version_kept,
    )


_VERSION_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}/[A-Za-z0-9][A-Za-z0-9_.+-]*_v[1-9][0-9]{0,8}")
"""``{strategy}/{series}_vN``, as ``pipeline/artifacts.py`` names a version folder: a strategy's name, then its
series (symbols and timeframes, joined by ``+`` and ``_``) and ``_VERSION_DIR``'s number. Exactly two levels, each
starting with a letter or digit, so no ``.``/``..`` segment, absolute path or hidden (staging) folder matches.
Spelled out here because that module needs torch, and a purge must work without the ``train`` extra."""


def _purge_version(
    models: ModelStore, models_dir: Path, named: object, operation_id: str, kept: list[str]
) -> tuple[int, str | None]:
    """Remove the model version folder ``named`` (the run's ``result.model_version``) if it is the run's own and
    no named model uses it; see the module's docstring.

    Returns:
        ``(1, None)`` when it was removed; ``(0, why it stays)`` when it must stay (or could not go); ``(0, None)``
        when it is already gone.
    """
    root = models_dir.resolve()
    if not isinstance(named, str) or not _VERSION_FOLDER.fullmatch(named) or (root / named).resolve() != root / named:
        return 0, _refused(
            named,
            "it is not a model version folder ({strategy}/{series}_vN in the models directory, without links)",
            operation_id,
        )
    path = root / named
    if not path.exists():
        return 0, None
    foreign = _not_written_by(path, operation_id)
    if foreign is not None:
        return 0, _refused(named, foreign, operation_id)
    with names_locked(root):  # a save that names the folder now waits, then finds it gone
        users = _named_users(models, named, kept)
        if users is not None:
            return 0, _stays(named, users)
        shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        logger.warning("the model version %s of deleted operation %s could not be removed", path, operation_id)
        return 0, _stays(named, "it could not be removed (the server's log says more)")
    return 1, None


def _not_written_by(path: Path, operation_id: str) -> str | None:
    """Why the version folder ``path`` is not ``operation_id``'s own; ``None`` when its ``metadata.json`` says that
    run wrote it."""
    if not path.is_dir():
        return "it is not a model version folder (it is a file)"
    try:
        metadata = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"its metadata.json is missing or unreadable, so nothing shows that {operation_id} wrote it"
    source = metadata.get("source_operation") if isinstance(metadata, dict) else None
    if source != operation_id:
        return f"it was written by {source!r}, not by {operation_id} (its metadata.json source_operation)"
    return None


def _named_users(models: ModelStore, relative: str, kept: list[str]) -> str | None:
    """Which named models use the version folder ``relative`` (``kept``: those saved from the run); ``None`` when
    none does."""
    if kept:
        return f"the named model(s) {', '.join(kept)} saved from this run use it"
    if models.references(relative):
        return "a named model uses it"
    return None


def _refused(named: object, why: str, operation_id: str) -> str:
    """:func:`_stays`, logged: the run's result names what is not (shown to be) its own version folder, which
    points at a client reporting what it should not, or at a damaged version."""
    answer = _stays(named, why)
    logger.warning("purging %s: %s", operation_id, answer)
    return answer


def _stays(named: object, why: str) -> str:
    """The answer's ``model_version_kept``: the value (cut short when long: a client wrote it) and why it stays."""
    shown = repr(named)
    if len(shown) > 300:
        shown = shown[:300] + "..."
    return f"{shown} stays: {why}"
