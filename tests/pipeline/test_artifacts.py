"""Model versions on disk: the layout, what each file holds, and that no damaged or hostile file gets past reading.

One small ``mean_reversion`` model is trained once for the module on the real sample data; each test writes it to
its own models directory (writing takes milliseconds) and, for the tampering cases, damages one file.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from trainops.core.reporter import NullReporter
from trainops.errors import ArtifactError
from trainops.pipeline.artifacts import (
    JSON_FILES,
    MAX_JSON_BYTES,
    MAX_WEIGHTS_BYTES,
    WEIGHTS,
    VersionMetrics,
    latest_version,
    read_model_version,
    series_key,
    write_model_version,
)
from trainops.pipeline.data_files import write_sample_data
from trainops.pipeline.model import architecture_name, build_mlp
from trainops.pipeline.strategy import load_strategy, parse_strategy
from trainops.pipeline.training import StrategyTrainingJob, TrainedStrategy
from trainops.schemas.training import DataSummary

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
FILES = {WEIGHTS, *JSON_FILES}
OPERATION = "op_training_20250101_000000_0123abcd"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedStrategy:
    """``mean_reversion`` trained for 3 epochs on the CPU, on the real sample data."""
    data_dir = tmp_path_factory.mktemp("market")
    write_sample_data(data_dir)
    config = load_strategy(STRATEGIES / "mean_reversion.yaml").to_dict()
    config["model"]["training"]["epochs"] = 3
    job = StrategyTrainingJob(parse_strategy(config), data_dir=data_dir, reporter=NullReporter(), device="cpu")
    return job.run()


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture
def version(trained: TrainedStrategy, models_dir: Path) -> Path:
    """A freshly written version directory of the module's model."""
    return write_model_version(trained, models_dir, operation_id=OPERATION)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# -- layout ---------------------------------------------------------------------------------------------------


def test_versions_are_numbered_and_the_latest_pointer_names_the_newest(
    trained: TrainedStrategy, models_dir: Path
) -> None:
    first = write_model_version(trained, models_dir, operation_id=OPERATION)
    second = write_model_version(trained, models_dir, operation_id=OPERATION)

    assert first == models_dir / "mean_reversion" / "EURUSD_1h_v1"
    assert second == models_dir / "mean_reversion" / "EURUSD_1h_v2"
    assert {path.name for path in first.iterdir()} == FILES
    assert {path.name for path in second.iterdir()} == FILES
    pointer = models_dir / "mean_reversion" / "EURUSD_1h_latest"
    assert pointer.read_text(encoding="utf-8").strip() == "EURUSD_1h_v2"
    assert latest_version(models_dir, "mean_reversion", "EURUSD_1h") == second
    # nothing half-written is left behind: only the two versions and the pointer (and hidden bookkeeping)
    assert sorted(path.name for path in (models_dir / "mean_reversion").iterdir() if not path.name.startswith(".")) == [
        "EURUSD_1h_latest",
        "EURUSD_1h_v1",
        "EURUSD_1h_v2",
    ]


def test_no_latest_pointer_means_no_version(models_dir: Path) -> None:
    assert latest_version(models_dir, "mean_reversion", "EURUSD_1h") is None


def test_several_timeframes_join_with_plus() -> None:
    config = load_strategy(STRATEGIES / "multi_timeframe.yaml")

    assert series_key(config) == "EURUSD_1h+4h+1d"


def test_concurrent_writers_take_distinct_version_numbers(trained: TrainedStrategy, models_dir: Path) -> None:
    write_concurrently(trained, models_dir, writers=8)  # the pointer's own race: see the xfail below

    parent = models_dir / "mean_reversion"
    versions = sorted(path.name for path in parent.iterdir() if path.is_dir())
    assert versions == [f"EURUSD_1h_v{number}" for number in range(1, 9)]
    assert all({path.name for path in (parent / name).iterdir()} == FILES for name in versions)


def test_concurrent_writers_in_one_process_all_succeed(trained: TrainedStrategy, models_dir: Path) -> None:
    for round_number in range(3):
        directory = models_dir / f"round{round_number}"
        errors = write_concurrently(trained, directory, writers=8)

        assert errors == []
        assert latest_version(directory, "mean_reversion", "EURUSD_1h") == directory / "mean_reversion" / (
            "EURUSD_1h_v8"
        )


def write_concurrently(trained: TrainedStrategy, models_dir: Path, *, writers: int) -> list[BaseException]:
    """Write ``writers`` versions at once from as many threads; the errors raised."""
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write() -> None:
        start.wait()
        try:
            write_model_version(trained, models_dir, operation_id=OPERATION)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


# -- contents -------------------------------------------------------------------------------------------------


def test_metadata_describes_the_model(trained: TrainedStrategy, models_dir: Path) -> None:
    moment = datetime(2025, 6, 10, 12, 30, tzinfo=UTC)
    path = write_model_version(trained, models_dir, operation_id=OPERATION, created_at=moment)

    metadata = read_json(path / "metadata.json")

    assert metadata["strategy"] == "mean_reversion"
    assert metadata["symbol"] == "EURUSD"
    assert metadata["timeframe"] == "1h"
    assert datetime.fromisoformat(metadata["created_at"]) == moment
    assert metadata["architecture"] == architecture_name(trained.config.model.architecture) == "mlp_32_16"
    assert metadata["input_size"] == len(trained.data.feature_names) == 27
    assert metadata["torch_version"] == torch.__version__
    assert metadata["source_operation"] == OPERATION
    assert metadata["cancelled"] is False


def test_config_reloads_to_an_equal_strategy(trained: TrainedStrategy, version: Path) -> None:
    assert parse_strategy(read_json(version / "config.json")) == trained.config


def test_features_hold_the_ordered_names_the_scaler_and_the_lookback(trained: TrainedStrategy, version: Path) -> None:
    features = read_json(version / "features.json")

    assert features["feature_names"] == trained.data.feature_names
    assert features["feature_names"][:3] == ["rsi_14_oversold", "rsi_14_neutral", "rsi_14_overbought"]
    assert trained.data.scaler is not None
    assert features["scaler"]["mean"] == trained.data.scaler.mean.tolist()
    assert features["scaler"]["scale"] == trained.data.scaler.scale.tolist()
    assert features["lookback_periods"] == 2
    assert features["class_names"] == ["BUY", "HOLD", "SELL"]


def test_metrics_hold_the_training_test_and_data_parts_of_the_result(trained: TrainedStrategy, version: Path) -> None:
    stored = read_json(version / "metrics.json")
    result = trained.result().model_dump(mode="json")

    assert stored == {key: result[key] for key in ("training_metrics", "test_metrics", "data")}
    assert read_model_version(version).metrics == VersionMetrics.model_validate(stored)


def test_metrics_written_by_an_older_version_still_read(version: Path) -> None:
    """A key an older trainops did not write gets its default; one this version does not know is kept."""

    def older(document: dict[str, Any]) -> dict[str, Any]:
        training = {key: value for key, value in document["training_metrics"].items() if key != "diverged"}
        return {"training_metrics": {**training, "lr_finder": {"best": 0.01}}, "test_metrics": document["test_metrics"]}

    edited("metrics.json", older)(version)

    metrics = read_model_version(version).metrics

    assert metrics.training_metrics.diverged is None
    assert metrics.training_metrics.model_extra == {"lr_finder": {"best": 0.01}}
    assert metrics.data == DataSummary()
    assert metrics.test_metrics.test_accuracy == read_json(version / "metrics.json")["test_metrics"]["test_accuracy"]


def test_nothing_is_pickled(version: Path) -> None:
    raw = (version / WEIGHTS).read_bytes()
    [header_size] = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_size])

    tensors = {name: entry for name, entry in header.items() if name != "__metadata__"}
    assert set(tensors) == {"0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias"}
    assert all(entry["dtype"] == "F32" for entry in tensors.values())
    assert 8 + header_size + max(entry["data_offsets"][1] for entry in tensors.values()) == len(raw)
    assert header["__metadata__"]["operation"] == OPERATION
    assert [path.name for path in version.parent.rglob("*") if path.suffix in {".pt", ".pth", ".pkl", ".bin"}] == []


def test_reading_gives_the_trained_model_back(trained: TrainedStrategy, version: Path) -> None:
    loaded = read_model_version(version)

    assert loaded.path == version
    assert loaded.config == trained.config
    assert loaded.feature_names == trained.data.feature_names
    assert not loaded.model.training
    original = trained.model.state_dict()
    assert loaded.model.state_dict().keys() == original.keys()
    assert all(torch.equal(tensor, original[name].cpu()) for name, tensor in loaded.model.state_dict().items())
    assert loaded.scaler is not None and trained.data.scaler is not None
    assert loaded.scaler.mean.tolist() == trained.data.scaler.mean.tolist()
    assert loaded.metrics.test_metrics.test_accuracy == trained.evaluation.test_accuracy
    assert loaded.metadata["source_operation"] == OPERATION
    assert loaded.size_bytes == sum(path.stat().st_size for path in version.iterdir())


# -- damaged and hostile files --------------------------------------------------------------------------------

Tamper = Callable[[Path], None]


def truncated(name: str) -> Tamper:
    def tamper(version: Path) -> None:
        file = version / name
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])

    return tamper


def replaced(name: str, content: bytes) -> Tamper:
    def tamper(version: Path) -> None:
        (version / name).write_bytes(content)

    return tamper


def removed(name: str) -> Tamper:
    def tamper(version: Path) -> None:
        (version / name).unlink()

    return tamper


def edited(name: str, change: Callable[[dict[str, Any]], Any]) -> Tamper:
    """Rewrite a JSON file as ``change`` makes its document."""

    def tamper(version: Path) -> None:
        document = read_json(version / name)
        (version / name).write_text(json.dumps(change(document)), encoding="utf-8")

    return tamper


def weights_changed(change: Callable[[dict[str, torch.Tensor], Path], dict[str, torch.Tensor]]) -> Tamper:
    """Rewrite the weights file (still valid safetensors) with the tensors ``change`` makes."""

    def tamper(version: Path) -> None:
        state = dict(load_safetensors((version / WEIGHTS).read_bytes()))
        (version / WEIGHTS).write_bytes(save_safetensors(change(state, version)))

    return tamper


def other_architecture(state: dict[str, torch.Tensor], version: Path) -> dict[str, torch.Tensor]:
    config = parse_strategy(read_json(version / "config.json"))
    return build_mlp(5, config.model.architecture).state_dict()


def transposed_first_layer(state: dict[str, torch.Tensor], version: Path) -> dict[str, torch.Tensor]:
    return {**state, "0.weight": state["0.weight"].T.contiguous()}


def missing_tensor(state: dict[str, torch.Tensor], version: Path) -> dict[str, torch.Tensor]:
    return {name: tensor for name, tensor in state.items() if name != "6.bias"}


def extra_tensor(state: dict[str, torch.Tensor], version: Path) -> dict[str, torch.Tensor]:
    return {**state, "7.weight": torch.zeros(3, 3)}


def with_value(value: float) -> Callable[[dict[str, torch.Tensor], Path], dict[str, torch.Tensor]]:
    def change(state: dict[str, torch.Tensor], version: Path) -> dict[str, torch.Tensor]:
        weight = state["3.weight"].clone()
        weight[1, 2] = value
        return {**state, "3.weight": weight}

    return change


def header_only(header: dict[str, Any]) -> bytes:
    """A safetensors file whose JSON header promises tensors its body does not hold."""
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text


def without_scaler_column(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "scaler": {"mean": document["scaler"]["mean"][:-1], "scale": document["scaler"]["scale"][:-1]}}


def with_feature(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**document, **changes}


TAMPERING = [
    # the weights
    pytest.param(truncated(WEIGHTS), WEIGHTS, "is not a readable safetensors file", id="weights-truncated"),
    pytest.param(replaced(WEIGHTS, b""), WEIGHTS, "is not a readable safetensors file", id="weights-empty"),
    pytest.param(
        replaced(WEIGHTS, struct.pack("<Q", 2**62) + b"{}"),
        WEIGHTS,
        "is not a readable safetensors file",
        id="weights-header-length-huge",
    ),
    pytest.param(
        replaced(WEIGHTS, header_only({"0.weight": {"dtype": "F32", "shape": [32, 27], "data_offsets": [0, 3456]}})),
        WEIGHTS,
        "is not a readable safetensors file",
        id="weights-body-missing",
    ),
    pytest.param(
        replaced(WEIGHTS, b'{"0.weight": [[1, 2]]}'), WEIGHTS, "is not a readable safetensors file", id="weights-json"
    ),
    pytest.param(weights_changed(other_architecture), WEIGHTS, "does not fit", id="weights-other-input-size"),
    pytest.param(weights_changed(transposed_first_layer), WEIGHTS, "does not fit", id="weights-transposed"),
    pytest.param(weights_changed(missing_tensor), WEIGHTS, "does not fit", id="weights-tensor-missing"),
    pytest.param(weights_changed(extra_tensor), WEIGHTS, "does not fit", id="weights-tensor-extra"),
    pytest.param(weights_changed(with_value(float("nan"))), WEIGHTS, "non-finite", id="weights-nan"),
    pytest.param(weights_changed(with_value(float("-inf"))), WEIGHTS, "non-finite", id="weights-inf"),
    # missing files
    *(pytest.param(removed(name), name, "is missing", id=f"missing-{name}") for name in sorted(FILES)),
    # not JSON
    *(
        pytest.param(replaced(name, b'{"name": '), name, "is not valid JSON", id=f"invalid-{name}")
        for name in JSON_FILES
    ),
    pytest.param(replaced("config.json", b"\xff\xfe{}"), "config.json", "is not valid JSON", id="config-not-utf8"),
    pytest.param(
        replaced("metadata.json", b'{"a": ' * 100_000 + b"1" + b"}" * 100_000),
        "metadata.json",
        "is nested too deeply",
        id="metadata-nested-too-deep",
    ),
    # JSON of the wrong shape
    pytest.param(replaced("config.json", b"[]"), "config.json", "must hold a JSON object", id="config-a-list"),
    pytest.param(replaced("metadata.json", b'"v1"'), "metadata.json", "must hold a JSON object", id="metadata-text"),
    pytest.param(replaced("metrics.json", b"null"), "metrics.json", "must hold a JSON object", id="metrics-null"),
    pytest.param(
        edited("metrics.json", lambda document: {**document, "test_metrics": "good"}),
        "metrics.json",
        "test_metrics: Input should be a valid dictionary",
        id="metrics-section-text",
    ),
    pytest.param(
        edited("metrics.json", lambda document: {**document, "training_metrics": {"best_epoch": "the third"}}),
        "metrics.json",
        "training_metrics.best_epoch: Input should be a valid integer",
        id="metrics-value-of-the-wrong-type",
    ),
    pytest.param(
        edited("config.json", lambda document: {**document, "indicators": "rsi"}),
        "config.json",
        "is not a valid strategy",
        id="config-invalid-strategy",
    ),
    pytest.param(
        edited("features.json", lambda document: with_feature(document, feature_names="rsi_14_oversold")),
        "features.json",
        "feature_names must be a non-empty list",
        id="features-names-text",
    ),
    pytest.param(
        edited("features.json", lambda document: with_feature(document, feature_names=[])),
        "features.json",
        "feature_names must be a non-empty list",
        id="features-names-empty",
    ),
    pytest.param(
        edited("features.json", lambda document: with_feature(document, scaler={"mean": [0.0], "scale": [0.0]})),
        "features.json",
        "the scaler is unusable",
        id="features-scale-zero",
    ),
    pytest.param(
        edited("features.json", lambda document: with_feature(document, scaler=[1, 2])),
        "features.json",
        "the scaler is unusable",
        id="features-scaler-a-list",
    ),
    pytest.param(
        edited("features.json", without_scaler_column),
        "features.json",
        "26 scaler columns for 27 features",
        id="features-scaler-short",
    ),
    pytest.param(
        edited("features.json", lambda document: with_feature(document, scaler=None, feature_names=["a", "b"])),
        WEIGHTS,
        "does not fit the recorded architecture mlp_32_16 with 2 inputs",
        id="features-fewer-names-than-weights",
    ),
]


@pytest.mark.parametrize(("tamper", "file", "problem"), TAMPERING)
def test_a_damaged_version_is_refused_naming_the_file(version: Path, tamper: Tamper, file: str, problem: str) -> None:
    tamper(version)

    with pytest.raises(ArtifactError, match=re.escape(problem)) as caught:
        read_model_version(version)

    assert str(version / file) in caught.value.message


class WritesAMarker:
    """Unpickling this opens (so creates) ``marker``: the shape of every pickle exploit."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_a_pickle_as_weights_is_refused_without_running_it(version: Path, tmp_path: Path) -> None:
    proof = tmp_path / "the-payload-works"
    pickle.loads(pickle.dumps(WritesAMarker(proof))).close()
    assert proof.exists()  # the payload does run code when unpickled...
    marker = tmp_path / "pickle-ran"
    (version / WEIGHTS).write_bytes(pickle.dumps(WritesAMarker(marker)))

    with pytest.raises(ArtifactError, match="is not a readable safetensors file") as caught:
        read_model_version(version)

    assert str(version / WEIGHTS) in caught.value.message
    assert not marker.exists()  # ...but reading the version never unpickled it


@pytest.mark.parametrize(("name", "limit"), [(WEIGHTS, MAX_WEIGHTS_BYTES), ("config.json", MAX_JSON_BYTES)])
def test_a_huge_file_is_refused_before_it_is_read(version: Path, name: str, limit: int) -> None:
    with (version / name).open("r+b") as file:
        file.truncate(limit + 1)  # sparse: costs no disk, and no memory unless someone reads it

    with pytest.raises(ArtifactError, match=f"is larger than {limit:,} bytes") as caught:
        read_model_version(version)

    assert str(version / name) in caught.value.message


def test_a_missing_version_directory_is_refused(models_dir: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        read_model_version(models_dir / "mean_reversion" / "EURUSD_1h_v9")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"../../etc", id="parent-directories"),
        pytest.param(b"../../etc_v1", id="parent-directories-named-like-a-version"),
        pytest.param(b"EURUSD_1h_v1/../../../etc_v1", id="through-a-version"),
        pytest.param(b"/etc/passwd_v1", id="absolute"),
        pytest.param(b"", id="empty"),
        pytest.param(b"EURUSD_1h_v0", id="version-zero"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
    ],
)
def test_a_hostile_latest_pointer_is_refused(version: Path, models_dir: Path, content: bytes) -> None:
    pointer = models_dir / "mean_reversion" / "EURUSD_1h_latest"
    pointer.write_bytes(content)

    with pytest.raises(ArtifactError, match=r"not a version directory name|is not text") as caught:
        latest_version(models_dir, "mean_reversion", "EURUSD_1h")

    assert str(pointer) in caught.value.message
