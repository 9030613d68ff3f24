"""Model versions on disk: weights in safetensors, everything else in JSON. Nothing is ever unpickled.

Every finished training (completed, or cancelled with its best weights) writes one version::

    {models_dir}/{strategy}/{symbols}_{timeframes}_v{N}/
        model.safetensors   the MLP's weights (tensors only: loading one cannot run code)
        config.json         the strategy exactly as trained
        features.json       ordered feature names, the scaler's numbers, the lookback
        metrics.json        training and test metrics, the data summary (VersionMetrics)
        metadata.json       strategy, symbol, timeframe, created_at, architecture, input size, torch, operation
    {models_dir}/{strategy}/{symbols}_{timeframes}_latest      the name of the newest version directory

Several symbols or timeframes join with ``+`` (``EURUSD+GOOG``, ``1h+4h+1d``). A version is written to a
temporary directory and renamed into place, so readers never see half of one; version numbers come from
creating the directory, so two writers cannot take the same one. Reading checks every file (present, within
size, valid JSON of the right shape, tensors matching the architecture) and says which one is wrong.
"""

from __future__ import annotations

import json
import os

try:
    import fcntl
except ImportError:  # Windows: the pointer is still replaced atomically, without the ordering guarantee
    fcntl = None  # type: ignore[assignment]
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors_file
from safetensors.torch import save as save_safetensors
from torch import nn

from trainops.core.payload import storable
from trainops.errors import ArtifactError
from trainops.pipeline.features import FeatureScaler
from trainops.pipeline.labels import LABEL_NAMES
from trainops.pipeline.model import architecture_name, build_mlp
from trainops.pipeline.strategy import StrategyConfig, parse_strategy
from trainops.pipeline.training import TrainedStrategy
from trainops.schemas.training import DataSummary, StrategyTestMetrics, StrategyTrainingMetrics

WEIGHTS = "model.safetensors"
JSON_FILES = ("config.json", "features.json", "metrics.json", "metadata.json")
MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_WEIGHTS_BYTES = 1024 * 1024 * 1024
FORMAT_VERSION = 1
_VERSION_DIR = re.compile(r"^(?P<key>.+)_v(?P<number>[1-9][0-9]{0,8})$")


def series_key(config: StrategyConfig) -> str:
    """``EURUSD_1h``, ``EURUSD+GOOG_1d``, ``EURUSD_1h+4h+1d``: the part of a version's name before ``_vN``."""
    return f"{'+'.join(config.symbols)}_{'+'.join(config.timeframes)}"


class VersionMetrics(BaseModel):
    """``metrics.json``: the training, test and data figures of the training that wrote the version.

    The same parts, with the same defaults for keys an older version did not write, as the training's
    :class:`~trainops.schemas.training.StrategyResult`; keys this version does not know are kept.
    """

    model_config = ConfigDict(extra="allow")

    training_metrics: StrategyTrainingMetrics = Field(default_factory=StrategyTrainingMetrics)
    test_metrics: StrategyTestMetrics = Field(default_factory=StrategyTestMetrics)
    data: DataSummary = Field(default_factory=DataSummary)


@dataclass(frozen=True)
class ModelVersion:
    """A model loaded from its version directory, ready to predict (in eval mode, on the CPU)."""

    path: Path
    config: StrategyConfig
    model: nn.Module
    feature_names: list[str]
    scaler: FeatureScaler | None
    metrics: VersionMetrics
    metadata: dict[str, Any]

    @property
    def size_bytes(self) -> int:
        return sum(file.stat().st_size for file in self.path.iterdir() if file.is_file())


def write_model_version(
    trained: TrainedStrategy, models_dir: Path, *, operation_id: str, created_at: datetime | None = None
) -> Path:
    """Write ``trained`` as the next version of its strategy, symbols and timeframes; return its directory.

    Raises:
        ArtifactError: the version cannot be written (a file where a folder should be, no space, no access).
    """
    try:
        return _write_model_version(trained, models_dir, operation_id=operation_id, created_at=created_at)
    except OSError as error:
        problem = error.strerror or str(error)
        if isinstance(error, FileExistsError | NotADirectoryError):
            problem = "a file is in the way of a folder"
        where = f" ({error.filename})" if error.filename else ""
        raise ArtifactError(
            f"cannot write the model version into {models_dir / trained.config.name}: {problem}{where}; fix that "
            "folder (or TRAINOPS_MODELS_DIR) and train again",
            details={"models_dir": str(models_dir)},
        ) from None


def _write_model_version(
    trained: TrainedStrategy, models_dir: Path, *, operation_id: str, created_at: datetime | None
) -> Path:
    config = trained.config
    parent = models_dir / config.name
    parent.mkdir(parents=True, exist_ok=True)
    key = series_key(config)
    moment = created_at or datetime.now(UTC)
    result = trained.result()
    state = {name: tensor.detach().to("cpu").contiguous() for name, tensor in trained.model.state_dict().items()}
    documents = {
        "config.json": config.to_dict(),
        "features.json": {
            "feature_names": trained.data.feature_names,
            "scaler": trained.data.scaler.to_dict() if trained.data.scaler is not None else None,
            "lookback_periods": config.model.features.lookback_periods,
            "class_names": list(LABEL_NAMES),
        },
        "metrics.json": storable(
            VersionMetrics(
                training_metrics=result.training_metrics, test_metrics=result.test_metrics, data=result.data
            ).model_dump(mode="json"),
            "metrics",
        ),
        "metadata.json": {
            "format_version": FORMAT_VERSION,
            "strategy": config.name,
            "symbol": "+".join(config.symbols),
            "timeframe": "+".join(config.timeframes),
            "symbols": config.symbols,
            "timeframes": config.timeframes,
            "created_at": moment.isoformat(),
            "architecture": architecture_name(config.model.architecture),
            "hidden_layers": list(config.model.architecture.hidden_layers),
            "input_size": len(trained.data.feature_names),
            "num_classes": len(LABEL_NAMES),
            "torch_version": torch.__version__,
            "source_operation": operation_id,
            "cancelled": trained.cancelled,
        },
    }
    staging = Path(tempfile.mkdtemp(prefix=".writing-", dir=parent))
    try:
        (staging / WEIGHTS).write_bytes(save_safetensors(state, metadata={"format": "pt", "operation": operation_id}))
        for name, document in documents.items():
            (staging / name).write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        target = _claim_next_version(parent, key)
        os.replace(staging, target)  # the claimed (empty) directory is replaced by the complete one
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _write_latest(parent, key, target.name)
    return target


def install_model_version(staging: Path, models_dir: Path, config: StrategyConfig) -> Path:
    """Move ``staging``, a complete version directory inside ``models_dir/{strategy}``, into place as the next
    version of ``config``'s series, and point ``_latest`` at it: how a version written elsewhere (a worker on
    another machine uploaded it) joins the registry exactly as :func:`write_model_version` would have written it.

    Returns:
        The version's directory.
    """
    parent = models_dir / config.name
    key = series_key(config)
    target = _claim_next_version(parent, key)
    os.replace(staging, target)  # the claimed (empty) directory is replaced by the complete one
    _write_latest(parent, key, target.name)
    return target


def _claim_next_version(parent: Path, key: str) -> Path:
    """Create the next version directory. Numbers are never reused, even after a version was deleted: the
    highest ever issued is kept in ``.{key}_issued`` (creating the directory is what makes the claim atomic)."""
    taken = [
        int(match["number"]) for match in map(_VERSION_DIR.match, os.listdir(parent)) if match and match["key"] == key
    ]
    issued = parent / f".{key}_issued"
    try:
        highest = int(issued.read_text(encoding="utf-8").strip() or 0)
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        highest = 0
    number = max([*taken, highest], default=0) + 1
    while True:
        candidate = parent / f"{key}_v{number}"
        try:
            candidate.mkdir()
        except FileExistsError:
            number += 1
            continue
        _replace_text(issued, str(number))
        return candidate


def _write_latest(parent: Path, key: str, version: str) -> None:
    """Point ``{key}_latest`` at ``version`` unless it already names a newer one (writers may finish out of order).

    The read-compare-write holds an exclusive lock on ``.{key}_latest.lock`` (where the platform has ``fcntl``), so
    of two writers finishing together the newer version wins, not the later one.
    """
    pointer = parent / f"{key}_latest"
    with (parent / f".{key}_latest.lock").open("a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        current = _VERSION_DIR.match(_read_pointer(pointer) or "")
        new = _VERSION_DIR.match(version)
        if current and new and int(current["number"]) > int(new["number"]):
            return
        _replace_text(pointer, version)


def _replace_text(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file of its own and an atomic rename: readers see old or new, whole."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_pointer(pointer: Path) -> str | None:
    if not pointer.is_file():
        return None
    try:
        return pointer.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise ArtifactError(f"the latest pointer {pointer} is not text; delete it and train again") from None


def latest_version(models_dir: Path, strategy: str, key: str) -> Path | None:
    """The newest version directory of ``strategy``/``key`` per its ``latest`` pointer (``None`` if none)."""
    pointer = models_dir / strategy / f"{key}_latest"
    name = _read_pointer(pointer)
    if name is None:
        return None
    if not _VERSION_DIR.match(name) or "/" in name or "\\" in name:
        raise ArtifactError(f"the latest pointer {pointer} holds {name!r}, not a version directory name")
    return models_dir / strategy / name


def read_model_version(path: Path) -> ModelVersion:
    """Load a version directory, checking every file.

    Raises:
        ArtifactError: a file is missing, too large, not valid JSON or of the wrong shape, or the weights do not
            match the recorded architecture; the message names the file and what is wrong with it.
    """
    if not path.is_dir():
        raise ArtifactError(f"model version {path} does not exist (or is not a directory)")
    documents = {name: _read_json(path / name) for name in JSON_FILES}
    try:
        config = parse_strategy(documents["config.json"], f"{path.name}/config.json")
    except Exception as error:
        raise ArtifactError(f"{path / 'config.json'} is not a valid strategy: {error}") from None
    features = documents["features.json"]
    names = features.get("feature_names")
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise ArtifactError(f"{path / 'features.json'}: feature_names must be a non-empty list of names")
    scaler = None
    if features.get("scaler") is not None:
        try:
            scaler = FeatureScaler.from_dict(features["scaler"])
        except Exception as error:
            raise ArtifactError(f"{path / 'features.json'}: the scaler is unusable: {error}") from None
        if scaler.n_features != len(names):
            raise ArtifactError(
                f"{path / 'features.json'}: {scaler.n_features} scaler columns for {len(names)} features"
            )
    metrics = _read_metrics(path / "metrics.json", documents["metrics.json"])
    model = build_mlp(len(names), config.model.architecture, num_classes=len(LABEL_NAMES))
    state = _read_weights(path / WEIGHTS)
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    found = {name: tuple(tensor.shape) for name, tensor in state.items()}
    if expected != found:
        raise ArtifactError(
            f"{path / WEIGHTS} does not fit the recorded architecture "
            f"{architecture_name(config.model.architecture)} with {len(names)} inputs: "
            f"expected tensors {expected}, found {found}"
        )
    if any(not torch.isfinite(tensor).all() for tensor in state.values()):
        raise ArtifactError(f"{path / WEIGHTS} holds non-finite weights; the model cannot predict")
    model.load_state_dict(state)
    model.eval()
    return ModelVersion(
        path=path,
        config=config,
        model=model,
        feature_names=names,
        scaler=scaler,
        metrics=metrics,
        metadata=documents["metadata.json"],
    )


def _read_json(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise ArtifactError(f"{file} is missing; the model version is incomplete")
    if file.stat().st_size > MAX_JSON_BYTES:
        raise ArtifactError(f"{file} is larger than {MAX_JSON_BYTES:,} bytes; it is not one trainops wrote")
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ArtifactError(f"{file} is not valid JSON ({error}); the file is damaged") from None
    except RecursionError:
        raise ArtifactError(f"{file} is nested too deeply to be one trainops wrote; the file is damaged") from None
    if not isinstance(document, dict):
        raise ArtifactError(f"{file} must hold a JSON object, found {type(document).__name__}")
    return document


def _read_metrics(file: Path, document: dict[str, Any]) -> VersionMetrics:
    try:
        return VersionMetrics.model_validate(document)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "the document"
        raise ArtifactError(f"{file}: {where}: {problem['msg']}; the file is damaged") from None


def _read_weights(file: Path) -> dict[str, torch.Tensor]:
    if not file.is_file():
        raise ArtifactError(f"{file} is missing; the model version is incomplete")
    if file.stat().st_size > MAX_WEIGHTS_BYTES:
        raise ArtifactError(f"{file} is larger than {MAX_WEIGHTS_BYTES:,} bytes; it is not one trainops wrote")
    try:
        # safetensors holds tensors and a JSON header only: reading it can never execute code. Mapped rather than
        # read whole first, so the file's bytes are not held twice (raw, then as tensors) while it loads.
        return load_safetensors_file(file)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise ArtifactError(f"{file} is not a readable safetensors file ({error}); the file is damaged") from None
