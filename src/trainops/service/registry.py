"""The model registry: name a trained model, find it again, load it, ask it for signals, delete it.

Every finished training writes a model version to the models directory (see ``pipeline/artifacts.py``); saving
gives one of those versions a name in the ``models`` table. Loaded models stay in a small LRU cache, and so do the
market data files predictions read, so a repeated prediction costs the feature computation and one forward pass.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tarfile
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from trainops.core.listing import CursorPosition, decode_cursor, encode_cursor
from trainops.core.lru import LRUCache
from trainops.core.operation import Operation, OperationStatus
from trainops.errors import ArtifactError, ConflictError, InvalidInputError, PayloadTooLargeError
from trainops.pipeline.artifacts import (
    JSON_FILES,
    MAX_JSON_BYTES,
    MAX_WEIGHTS_BYTES,
    WEIGHTS,
    ModelVersion,
    install_model_version,
    read_model_version,
    series_key,
)
from trainops.pipeline.data import normalize_symbol, parse_timeframe
from trainops.pipeline.data_files import StoredDataFile, find_data_file
from trainops.pipeline.prediction import BarPrediction, first_usable_bar, predict_range, resolve_bar, utc_moment
from trainops.pipeline.symbol_frames import load_frames
from trainops.schemas.models import (
    LoadedModel,
    ModelInfo,
    ModelList,
    ModelSummary,
    PredictionAnswer,
    PredictRequest,
    RangePredictionAnswer,
    SavedModel,
    SaveModelRequest,
    StoredModelVersion,
    check_model_name,
)
from trainops.service.model_names import locked, names_locked
from trainops.service.operations import OperationsService, utcnow
from trainops.service.training import strategy_of
from trainops.store.models import ModelRecord, ModelStore

DEFAULT_CACHE_SIZE = 8

SKIPPED_SHOWN = 20
"""A range's answer names at most this many of the bars it skipped (it counts them all)."""

VERSION_FILES = (WEIGHTS, *JSON_FILES)
"""The files of a model version, each exactly once in an uploaded archive."""
_FILE_LIMITS = {WEIGHTS: MAX_WEIGHTS_BYTES, **dict.fromkeys(JSON_FILES, MAX_JSON_BYTES)}
INCOMING_DIR = ".incoming"
"""Below the models directory: uploaded archives while they arrive (never a strategy's name: those start with a
letter or digit)."""


class ModelRegistry:
    """Save, list, load, predict with and delete named models.

    Args:
        store: The ``models`` table.
        operations: Where the trainings that produced the models are recorded.
        models_dir: The model versions' files.
        data_dir: The market data predictions read.
        cache_size: Loaded models (and data files) kept in memory.
    """

    def __init__(
        self,
        store: ModelStore,
        operations: OperationsService,
        *,
        models_dir: Path,
        data_dir: Path,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.store = store
        self.operations = operations
        self.models_dir = models_dir.expanduser().resolve()  # one spelling: paths are compared to it
        self.data_dir = data_dir
        self.cache_size = cache_size
        # name -> (the version's path and its files' stamps when it was loaded, the version)
        self._loaded: LRUCache[str, tuple[tuple[str, FilesStamp], ModelVersion]] = LRUCache(cache_size)
        self._frames: LRUCache[tuple[Any, ...], dict[str, pd.DataFrame]] = LRUCache(cache_size)
        # a few per model and data file: the first bar with complete features is a small answer worth keeping
        self._first: LRUCache[tuple[str, tuple[Any, ...]], pd.Timestamp] = LRUCache(4 * cache_size)

    # -- saving -----------------------------------------------------------------------------------------------

    def save(self, request: SaveModelRequest) -> SavedModel:
        """Name the model a finished training wrote.

        Raises:
            InvalidInputError: a hostile or malformed name.
            NotFoundError: no such task.
            ConflictError: the name is taken (unless ``overwrite``), or the task has not finished, failed, or
                left no model; the message says which.
        """
        name = check_model_name(request.model_name)
        operation = self.operations.get(request.task_id)
        # with delete's lock: a delete between the check of the files and the record would leave a name on none
        with self._names_locked():
            path = self._version_of(operation)
            version = read_model_version(path)
            if version.metadata.get("source_operation") != operation.operation_id:
                raise ConflictError(
                    f"the model version {path.name} was not written by {operation.operation_id} (it says "
                    f"{version.metadata.get('source_operation')!r}); that training's model is gone, train it again"
                )
            record = self._insert(name, path, version, operation, request)
        self._loaded.pop(name)
        return SavedModel(
            model_id=record.model_id,
            model_name=record.name,
            model_path=str(path),
            task_id=operation.operation_id,
            saved_at=record.saved_at,
            model_size_mb=round(record.size_bytes / 2**20, 6),
        )

    def _names_locked(self) -> contextlib.AbstractContextManager[None]:
        """The lock that a save (files checked, then named), a delete (name dropped, then files) and a run's purge
        (:mod:`trainops.service.model_names`) hold."""
        return names_locked(self.models_dir)

    def _insert(
        self, name: str, path: Path, version: ModelVersion, operation: Operation, request: SaveModelRequest
    ) -> ModelRecord:
        metrics = _headline(version)
        now = utcnow()
        return self.store.insert(
            ModelRecord(
                model_id=0,
                name=name,
                version_path=str(path.relative_to(self.models_dir)),
                strategy=version.config.name,
                symbol=str(version.metadata.get("symbol", "+".join(version.config.symbols))),
                timeframe=str(version.metadata.get("timeframe", "+".join(version.config.timeframes))),
                source_operation=operation.operation_id,
                description=request.description or None,
                metrics=metrics,
                size_bytes=version.size_bytes,
                created_at=_created_at(version, operation),
                saved_at=now,
            ),
            replace=request.overwrite,
        )

    def _version_of(self, operation: Operation) -> Path:
        status = operation.status
        result = operation.result or {}
        if status in (OperationStatus.PENDING, OperationStatus.RUNNING):
            raise ConflictError(
                f"training {operation.operation_id} is still {status.value} ({operation.progress.percentage:.0f}%); "
                "save its model once it has finished",
                details={"status": status.value},
            )
        if status is OperationStatus.FAILED:
            raise ConflictError(
                f"training {operation.operation_id} failed, so it has no model to save: {operation.error}",
                details={"status": status.value},
            )
        relative = result.get("model_version")
        if not isinstance(relative, str):
            raise ConflictError(
                f"operation {operation.operation_id} ended {status.value} without a model "
                "(it was stopped before its first epoch ended, or it is not a strategy training)",
                details={"status": status.value},
            )
        path = (self.models_dir / relative).resolve()
        if self.models_dir.resolve() not in path.parents:
            raise ArtifactError(f"operation {operation.operation_id} names a model outside the models directory")
        if not path.exists():
            raise ConflictError(
                f"the model version of training {operation.operation_id}, {path}, is no longer there (`trainops "
                "models delete` removed it with the last name on it, or it was removed by hand); train again for a "
                "model to save",
                details={"status": status.value, "model_version": relative},
            )
        return path

    # -- receiving versions trained elsewhere -------------------------------------------------------------------

    def data_file(self, symbol: str, timeframe: str) -> StoredDataFile:
        """The stored market data file of ``symbol`` and ``timeframe`` (the one predictions read), identified by its
        SHA-256, for serving it whole to a worker that trains away from this disk.

        Raises:
            DataError: a symbol or timeframe that is not one (``../etc``, ``1M``).
            NotFoundError: no such file (the message lists those there are).
        """
        return find_data_file(self.data_dir, symbol, timeframe)

    def check_upload(self, task_id: str) -> Operation:
        """Everything about an upload of ``task_id``'s model version that can be refused before its bytes arrive.

        Raises:
            NotFoundError: no such operation.
            InvalidInputError: the operation is not a strategy training.
            ConflictError: the training has not started, or it failed (a failed training has no model).
        """
        operation = self.operations.get(task_id)
        strategy_of(operation)
        if operation.status is OperationStatus.PENDING:
            raise ConflictError(
                f"training {task_id} has not started; a worker uploads its model version once it has trained it",
                details={"status": operation.status.value},
            )
        if operation.status is OperationStatus.FAILED:
            raise ConflictError(
                f"training {task_id} failed, so it has no model version to store: {operation.error}",
                details={"status": operation.status.value},
            )
        return operation

    def incoming_file(self) -> Path:
        """A new empty file, on the models directory's disk, to receive an uploaded archive into."""
        directory = self.models_dir / INCOMING_DIR
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix="upload-", suffix=".tar", delete=False) as file:
            return Path(file.name)

    def receive_version(self, task_id: str, archive: Path) -> StoredModelVersion:
        """Store the model version a worker on another machine trained for ``task_id``, sent as a tar archive of
        its five files (:data:`VERSION_FILES`, at the archive's top level), as the next version of its series:
        exactly where :func:`~trainops.pipeline.artifacts.write_model_version` would have put it on this machine.

        Every file is checked as :func:`~trainops.pipeline.artifacts.read_model_version` checks a version, and it
        must be this training's: written by ``task_id`` (``metadata.json``) from the strategy the operation records
        (``config.json``). A training stores one version: a retried upload names the one already stored.

        Raises:
            NotFoundError, InvalidInputError, ConflictError: see :meth:`check_upload`.
            InvalidInputError: not a tar archive, or one holding anything but the version's files (paths,
                links, directories, duplicates) or missing one, or files that do not make a readable version of
                this training.
            PayloadTooLargeError: a file larger than a version's file can be.
        """
        operation = self.check_upload(task_id)
        config = strategy_of(operation)
        parent = self.models_dir / config.name
        parent.mkdir(parents=True, exist_ok=True)
        key = series_key(config)
        stored = self._version_written_by(parent, key, task_id)
        if stored is not None:
            return self._stored(task_id, stored, created=False)
        staging = Path(tempfile.mkdtemp(prefix=".receiving-", dir=parent))
        try:
            unpack_version(archive, staging)
            try:
                version = read_model_version(staging)
            except ArtifactError as error:
                raise InvalidInputError(
                    "the uploaded model version is unusable: " + error.message.replace(f"{staging}/", ""),
                    details={"task_id": task_id},
                ) from None
            if version.metadata.get("source_operation") != task_id:
                raise InvalidInputError(
                    f"the uploaded model version was written by {version.metadata.get('source_operation')!r}, not "
                    f"by {task_id} (metadata.json source_operation); upload each training's own version"
                )
            if version.config.to_dict() != config.to_dict():
                raise InvalidInputError(
                    f"the uploaded model version's config.json is not the strategy {task_id} trains (as recorded "
                    "on the operation); upload the version this training wrote"
                )
            # a retry that arrives while the first upload is still being stored finds it here, not a twin
            with locked(parent / f".{key}_receive.lock"):
                stored = self._version_written_by(parent, key, task_id)
                if stored is None:
                    return self._stored(task_id, install_model_version(staging, self.models_dir, config), created=True)
            shutil.rmtree(staging, ignore_errors=True)
            return self._stored(task_id, stored, created=False)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _version_written_by(self, parent: Path, key: str, task_id: str) -> Path | None:
        """The version of series ``key`` that ``task_id`` wrote, if one is stored (read from its metadata only)."""
        for path in sorted(parent.glob(f"{key}_v*")):
            try:
                metadata = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(metadata, dict) and metadata.get("source_operation") == task_id:
                return path
        return None

    def _stored(self, task_id: str, path: Path, *, created: bool) -> StoredModelVersion:
        return StoredModelVersion(
            task_id=task_id,
            model_version=str(path.relative_to(self.models_dir)),
            model_path=str(path),
            size_bytes=sum(file.stat().st_size for file in path.iterdir() if file.is_file()),
            created=created,
        )

    # -- reading ----------------------------------------------------------------------------------------------

    def list_models(
        self, *, symbol: str | None = None, timeframe: str | None = None, strategy: str | None = None
    ) -> list[ModelSummary]:
        """Named models, newest first; ``symbol`` and ``timeframe`` are matched in their canonical spelling."""
        symbol = "+".join(normalize_symbol(part) for part in symbol.split("+")) if symbol else None
        timeframe = "+".join(parse_timeframe(part) for part in timeframe.split("+")) if timeframe else None
        return self._summaries(self.store.list_models(symbol=symbol, timeframe=timeframe, strategy=strategy))

    def list_page(
        self,
        *,
        symbol: str | None = None,
        timeframe: str | None = None,
        strategy: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> ModelList:
        """Named models, newest first, a page of at most ``limit`` (all without one), and the cursor of the next.

        Raises:
            InvalidInputError: a ``cursor`` this list (these filters) did not hand out, or one without ``limit``.
        """
        if cursor is not None and limit is None:
            raise InvalidInputError("cursor pages a list of limit models: send the limit of the first page too")
        symbol = "+".join(normalize_symbol(part) for part in symbol.split("+")) if symbol else None
        timeframe = "+".join(parse_timeframe(part) for part in timeframe.split("+")) if timeframe else None
        scope = f"models|{symbol}|{timeframe}|{strategy}"
        after = None
        if cursor is not None:
            position = decode_cursor(cursor, scope)
            try:
                after = (datetime.fromisoformat(str(position.value)), position.seq)
            except ValueError:
                raise InvalidInputError(
                    "cursor is not one this list handed out: pass the next_cursor of the previous page unchanged",
                    details={"cursor": cursor[:200]},
                ) from None
        records = self.store.list_models(
            symbol=symbol,
            timeframe=timeframe,
            strategy=strategy,
            limit=None if limit is None else limit + 1,
            after=after,
        )
        more = limit is not None and len(records) > limit
        records = records[:limit] if limit is not None else records
        next_cursor = None
        if more and records:
            last = records[-1]
            next_cursor = encode_cursor(CursorPosition(last.saved_at.isoformat(), last.model_id), scope)
        models = self._summaries(records)
        return ModelList(models=models, count=len(models), next_cursor=next_cursor)

    def get(self, name: str) -> ModelSummary:
        return self._summaries([self.store.get(check_model_name(name))])[0]

    def _summaries(self, records: list[ModelRecord]) -> list[ModelSummary]:
        """``records`` as listed, each saying whether the run it came from was deleted since (one query for all:
        a model's record keeps its ``source_operation``, the run may be gone)."""
        sources = {record.source_operation for record in records if record.source_operation}
        existing = self.operations.store.versions(sources) if sources else {}
        return [
            self._summary(
                record, source_deleted=bool(record.source_operation) and record.source_operation not in existing
            )
            for record in records
        ]

    def _summary(self, record: ModelRecord, *, source_deleted: bool = False) -> ModelSummary:
        metrics = record.metrics
        return ModelSummary(
            model_id=record.model_id,
            model_name=record.name,
            strategy=record.strategy,
            symbol=record.symbol,
            timeframe=record.timeframe,
            created_at=record.created_at,
            saved_at=record.saved_at,
            training_accuracy=metrics.get("training_accuracy"),
            test_accuracy=metrics.get("test_accuracy"),
            f1_score=metrics.get("f1_score"),
            architecture=metrics.get("architecture"),
            description=record.description,
            source_operation=record.source_operation,
            source_deleted=source_deleted,
            model_path=str(self.models_dir / record.version_path),
            model_size_mb=round(record.size_bytes / 2**20, 6),
        )

    def load(self, name: str) -> LoadedModel:
        """Load a model into the cache (reading and checking every file), and describe it."""
        record, version = self._loaded_version(name, reload=True)
        metrics = record.metrics
        return LoadedModel(
            model_name=name,
            model_info=ModelInfo(
                created_at=record.created_at,
                symbol=record.symbol,
                timeframe=record.timeframe,
                strategy=record.strategy,
                architecture=metrics.get("architecture"),
                training_accuracy=metrics.get("training_accuracy"),
                test_accuracy=metrics.get("test_accuracy"),
                input_size=len(version.feature_names),
                features=version.feature_names,
                source_operation=record.source_operation,
            ),
        )

    def _loaded_version(self, name: str, *, reload: bool = False) -> tuple[ModelRecord, ModelVersion]:
        """The model's record and its version, from the cache unless ``reload`` (or its files changed)."""
        record = self.store.get(check_model_name(name))
        path = self.models_dir / record.version_path
        stamp = (record.version_path, _files_stamp(path))
        cached = self._loaded.get(name)
        if cached is not None and cached[0] == stamp and not reload:
            return record, cached[1]
        try:
            version = read_model_version(path)
        except ArtifactError as damaged:
            self._loaded.pop(name)  # damaged since it was cached: do not keep serving the old copy
            raise ArtifactError(
                f"model {name!r}: {damaged.message}. Its files cannot be trusted: delete the model (`trainops models "
                f"delete {name}`) and save a retrained run",
                details={**damaged.details, "model_name": name},
            ) from None
        self._loaded.put(name, (stamp, version))
        return record, version

    @property
    def loaded(self) -> list[str]:
        """Names of the models in memory, least recently used first."""
        return self._loaded.keys()

    # -- predicting -------------------------------------------------------------------------------------------

    def predict(self, request: PredictRequest) -> PredictionAnswer | RangePredictionAnswer:
        """A signal for one bar, or the signal series of a range, from bars up to the date asked only.

        Raises:
            InvalidInputError: the timeframe is not the model's, or a date is outside the data or before the
                indicators' warm-up (the message gives the valid range).
            DataError: no data for the symbol.
        """
        _, version = self._loaded_version(request.model_name)
        symbol = normalize_symbol(request.symbol)
        timeframe = parse_timeframe(request.timeframe)
        base = version.config.timeframes[0]
        if timeframe != base:
            raise InvalidInputError(
                f"model {request.model_name!r} predicts on {base} bars (it was trained on "
                f"{'+'.join(version.config.timeframes)}); ask with timeframe {base!r}"
            )
        if request.start_date is not None and request.end_date is not None:
            _check_range(request.start_date, request.end_date)
        data_key, frames = self._frames_of(version, symbol)
        first = self._first_usable(version, data_key, frames)
        bars = frames[base]
        if request.test_date is not None:
            bar = resolve_bar(bars, base, request.test_date, first_usable=first)
            single = predict_range(version, frames, bar, bar)
            if bar in single.incomplete:
                raise InvalidInputError(
                    f"the {base} bar {bar} has no complete features: {_missing(single.incomplete[bar])} undefined "
                    "there (a flat or gapped stretch of the data leaves an indicator undefined); ask for another bar",
                    details={"bar": str(bar), "missing": single.incomplete[bar][:20]},
                )
            return _answer(request.model_name, symbol, timeframe, single.predictions[0])
        assert request.start_date is not None and request.end_date is not None  # the request model checks
        end = resolve_bar(bars, base, request.end_date, first_usable=first)
        start = _first_bar_from(bars, request.start_date, first)
        if start > end:  # the range lies between two bars (a weekend, a gap in the data)
            raise InvalidInputError(
                f"no {base} bar from {request.start_date} to {request.end_date}: the bar before is {end}, the next "
                f"one {start}; widen the range",
                details={"bar_before": str(end), "next_bar": str(start)},
            )
        series = predict_range(version, frames, start, end)
        predictions = [item.prediction for item in series.predictions]
        counts = {signal: sum(1 for item in predictions if item.signal == signal) for signal in ("buy", "hold", "sell")}
        return RangePredictionAnswer(
            model_name=request.model_name,
            symbol=symbol,
            timeframe=timeframe,
            start_date=predictions[0].timestamp if predictions else start.to_pydatetime(),
            end_date=end.to_pydatetime(),
            count=len(predictions),
            predictions=predictions,
            signal_counts=counts,
            skipped=len(series.incomplete),
            skipped_bars=[stamp.to_pydatetime() for stamp in list(series.incomplete)[:SKIPPED_SHOWN]],
        )

    def _frames_of(self, version: ModelVersion, symbol: str) -> tuple[tuple[Any, ...], dict[str, pd.DataFrame]]:
        """The symbol's bars in every timeframe of the model, cached while the files are unchanged."""
        stamps = tuple(
            (path.name, path.stat().st_mtime_ns) for path in sorted(self.data_dir.glob(f"{symbol}_*")) if path.is_file()
        )
        key = (symbol, tuple(version.config.timeframes), stamps)
        frames = self._frames.get(key)
        if frames is None:
            frames = load_frames(version.config, self.data_dir, symbol, whole_history=True)
            self._frames.put(key, frames)
        return key, frames

    def _first_usable(
        self, version: ModelVersion, data_key: tuple[Any, ...], frames: dict[str, pd.DataFrame]
    ) -> pd.Timestamp:
        """The first bar with complete features: it depends only on the model and the data, so it is cached."""
        key = (str(version.path), data_key)
        known = self._first.get(key)
        if known is None:
            known = first_usable_bar(version, frames)
            self._first.put(key, known)
        return known

    # -- deleting ---------------------------------------------------------------------------------------------

    def delete(self, name: str) -> ModelSummary:
        """Forget a named model; its files go too unless another name points at the same version."""
        with self._names_locked():
            record = self.store.delete(check_model_name(name))
            summary = self._summaries([record])[0]
            if self.store.references(record.version_path) == 0:
                path = (self.models_dir / record.version_path).resolve()
                if self.models_dir.resolve() in path.parents:
                    shutil.rmtree(path, ignore_errors=True)
        self._loaded.pop(name)
        return summary


def unpack_version(archive: Path, target: Path) -> None:
    """Extract the model version files of a tar ``archive`` into the directory ``target``, refusing anything else.

    Only regular files named exactly as a version's files (a leading ``./`` and a ``.`` directory entry, as
    ``tar -C DIR .`` writes them, are accepted) are written, each at most the size a version's file may have:
    no path of the archive is ever used as a path here, so neither ``../``, absolute names nor links can reach
    outside ``target``.

    Nor can a small archive unpack into a large version: sparse members (whose holes would be written out in
    full) are refused, and so is a member once the sizes declared so far add up to more than the archive's own
    size, which no whole archive can (the upload route already bounds that size by
    ``TRAINOPS_MAX_ARTIFACT_BYTES``). Both are refused before the member's bytes are copied.

    Raises:
        InvalidInputError: not a (plain, uncompressed) tar archive; a member that is not one of the files; a
            link, directory, device or sparse file; a file twice; a missing file; files declaring more bytes than
            the archive holds.
        PayloadTooLargeError: a file larger than its kind may be.
    """
    how = (
        f"send a tar archive of exactly {', '.join(VERSION_FILES)} (e.g. tar -cf version.tar -C VERSION_DIR "
        f"{' '.join(VERSION_FILES)})"
    )
    seen: set[str] = set()
    holds = archive.stat().st_size
    declared = 0
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if member.isdir() and name in ("", "."):
                    continue
                if name not in _FILE_LIMITS:
                    raise InvalidInputError(
                        f"the archive holds {member.name!r}, which is not a file of a model version; {how}",
                        details={"member": member.name, "expected": list(VERSION_FILES)},
                    )
                if not member.isfile():
                    raise InvalidInputError(
                        f"the archive's {member.name!r} is a link, directory or device, not a file; {how}",
                        details={"member": member.name},
                    )
                if member.issparse():
                    raise InvalidInputError(
                        f"the archive's {name} is a sparse file ({member.size:,} bytes once its holes are filled); "
                        f"pack the version without --sparse (-S): {how}",
                        details={"member": name, "size_bytes": member.size},
                    )
                if name in seen:
                    raise InvalidInputError(f"the archive holds {name!r} twice; {how}", details={"member": name})
                seen.add(name)
                limit = _FILE_LIMITS[name]
                if member.size > limit:
                    raise PayloadTooLargeError(
                        f"the archive's {name} is {member.size:,} bytes; a model version's {name} is at most {limit:,}",
                        details={"member": name, "size_bytes": member.size, "limit_bytes": limit},
                    )
                declared += member.size
                if declared > holds:
                    raise InvalidInputError(
                        f"the archive's files declare {declared:,} bytes up to and including {name}, more than the "
                        f"archive holds ({holds:,} bytes): it is truncated or damaged; {how}",
                        details={"member": name, "declared_bytes": declared, "archive_bytes": holds},
                    )
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - isfile() members always have content
                    raise InvalidInputError(f"the archive's {name!r} has no content; {how}")
                with source, (target / name).open("xb") as out:
                    shutil.copyfileobj(source, out)
    except tarfile.TarError as error:
        raise InvalidInputError(f"the upload is not a readable tar archive ({error}); {how}") from None
    missing = [name for name in VERSION_FILES if name not in seen]
    if missing:
        raise InvalidInputError(
            f"the archive lacks {', '.join(missing)}; {how}",
            details={"missing": missing, "expected": list(VERSION_FILES)},
        )


FilesStamp = tuple[tuple[int, int] | None, ...]


def _files_stamp(version: Path) -> FilesStamp:
    """Each of a version's files' modification time and size (``None`` for a missing one): a cached model whose
    files were replaced, edited or removed since is read again, so it fails as its files do rather than being
    served from memory."""
    stamps: list[tuple[int, int] | None] = []
    for name in VERSION_FILES:
        try:
            status = (version / name).stat()
        except OSError:
            stamps.append(None)
        else:
            stamps.append((status.st_mtime_ns, status.st_size))
    return tuple(stamps)


def _check_range(start: date | datetime, end: date | datetime) -> None:
    """Refuse a range that ends before it starts, time zones and a date's whole day (an ``end_date`` given as a
    date takes in that day's bars) taken into account."""
    first, _ = utc_moment(start)
    last, whole_day = utc_moment(end)
    if first >= (last + pd.Timedelta(days=1) if whole_day else last + pd.Timedelta(1)):
        raise InvalidInputError(f"start_date {start} is after end_date {end}")


def _missing(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _first_bar_from(bars: pd.DataFrame, moment: date | datetime, first: pd.Timestamp) -> pd.Timestamp:
    """The first base bar at or after ``moment`` (a date means that day's first bar).

    Raises:
        InvalidInputError: ``moment`` is before the first bar with complete features, or after the data.
    """
    stamp, _ = utc_moment(moment)
    last = pd.Timestamp(bars.index[-1])
    valid = f"predictions are possible from {first.isoformat()} to {last.isoformat()}"
    earliest = first if isinstance(moment, datetime) else first.normalize()  # a date: any bar of that day
    if stamp < earliest:
        raise InvalidInputError(
            f"start_date {moment} is before the first bar with complete features (the indicators' warm-up); {valid}",
            details={"first": first.isoformat(), "last": last.isoformat()},
        )
    position = int(bars.index.searchsorted(stamp))
    if position >= len(bars.index):
        raise InvalidInputError(f"start_date {moment} is after the last bar of the data; {valid}")
    return max(pd.Timestamp(bars.index[position]), first)


def _answer(model_name: str, symbol: str, timeframe: str, single: BarPrediction) -> PredictionAnswer:
    return PredictionAnswer(
        model_name=model_name,
        symbol=symbol,
        timeframe=timeframe,
        test_date=single.prediction.timestamp,
        prediction=single.prediction,
        input_features=single.input_features,
        bar=single.bar,
    )


def _headline(version: ModelVersion) -> dict[str, Any]:
    """The figures the ``models`` table keeps for listing: read by name, so the keys are a stored contract."""
    training = version.metrics.training_metrics
    test = version.metrics.test_metrics
    return {
        # the weights the model keeps (a version written before kept_* existed: the last epoch's)
        "training_accuracy": _finite(_first(training.kept_train_accuracy, training.final_train_accuracy)),
        "validation_accuracy": _finite(_first(training.kept_val_accuracy, training.final_val_accuracy)),
        "test_accuracy": _finite(test.test_accuracy),
        "f1_score": _finite(test.f1_score),
        "best_epoch": training.best_epoch,
        "epochs_completed": training.epochs_completed,
        "architecture": version.metadata.get("architecture"),
    }


def _first(*values: float | None) -> float | None:
    return next((value for value in values if value is not None), None)


def _finite(value: float | None) -> float | None:
    """``value`` when finite, else ``None``: a diverged run's NaN is no score for a listing to show."""
    return value if value is not None and math.isfinite(value) else None


def _created_at(version: ModelVersion, operation: Operation) -> datetime:
    text = version.metadata.get("created_at")
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else operation.completed_at or utcnow()
    except ValueError:
        return operation.completed_at or utcnow()
