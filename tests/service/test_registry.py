"""The model registry on SQLite and PostgreSQL: name a finished training's model, find it, load it, predict, delete.

The trainings are real (``run_training`` on the sample data, 2 epochs of a shipped strategy on the CPU, well under a
second each), so each saved model is a version directory that a training actually wrote.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from trainops.client import LocalTrainOps
from trainops.core import OperationStatus
from trainops.core.epoch import EpochRecord
from trainops.core.operation import Operation, WriteAck
from trainops.errors import (
    ArtifactError,
    ConflictError,
    DataError,
    InvalidInputError,
    NotFoundError,
)
from trainops.executors.jobs import run_training
from trainops.pipeline.artifacts import WEIGHTS
from trainops.pipeline.strategy import StrategyConfig, load_strategy
from trainops.schemas.models import (
    MODEL_NAME_PATTERN,
    PredictionAnswer,
    PredictRequest,
    RangePredictionAnswer,
    SavedModel,
    SaveModelRequest,
)
from trainops.schemas.operations import DeletedOperation
from trainops.schemas.training import ConfigOverrides, EarlyStoppingOverride
from trainops.service.artifacts import open_artifacts
from trainops.service.deletion import delete_operation
from trainops.service.operations import OperationsService
from trainops.service.registry import ModelRegistry
from trainops.service.training import apply_overrides, create_training
from trainops.settings import Settings
from trainops.store.models import ModelStore

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
HOSTILE_NAMES = ["../../etc", "a/b", ".hidden", "x" * 65, "", "名字"]
UNTIL_STOPPED = ConfigOverrides(epochs=5000, early_stopping=EarlyStoppingOverride(patience=100_000))
"""A training that runs until it is stopped (its own early stopping would end it within seconds)."""


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture
def make_registry(service: OperationsService, models_dir: Path, market_data: Path) -> Callable[..., ModelRegistry]:
    def make(**options: Any) -> ModelRegistry:
        return ModelRegistry(
            ModelStore(service.store.engine), service, **{"models_dir": models_dir, "data_dir": market_data, **options}
        )

    return make


@pytest.fixture
def registry(make_registry: Callable[..., ModelRegistry]) -> ModelRegistry:
    return make_registry()


def strategy(name: str = "mean_reversion", **changes: Any) -> StrategyConfig:
    """A shipped strategy, 2 epochs unless ``changes`` (``apply_overrides`` arguments) say otherwise."""
    return apply_overrides(load_strategy(STRATEGIES / f"{name}.yaml"), **{"epochs": 2, **changes})


@pytest.fixture
def train(
    service: OperationsService, settings: Settings, market_data: Path, models_dir: Path
) -> Callable[..., Operation]:
    """``train(config=None, ops=None)``: create a training of ``config`` (2 epochs of ``mean_reversion`` by default)
    and run it to its end here, writing its model version."""

    def train(config: StrategyConfig | None = None, *, ops: LocalTrainOps | None = None) -> Operation:
        operation = create_training(service, config or strategy(), device="cpu")
        return run_training(
            ops or LocalTrainOps(service, settings=settings),
            operation,
            data_dir=market_data,
            models_dir=models_dir,
        )

    return train


def save(registry: ModelRegistry, operation: Operation, name: str, **options: Any) -> SavedModel:
    return registry.save(SaveModelRequest(task_id=operation.operation_id, model_name=name, **options))


def predict(registry: ModelRegistry, name: str, **request: Any) -> PredictionAnswer | RangePredictionAnswer:
    return registry.predict(PredictRequest(model_name=name, **{"symbol": "EURUSD", "timeframe": "1h", **request}))


def predict_bar(registry: ModelRegistry, name: str, **request: Any) -> PredictionAnswer:
    answer = predict(registry, name, **request)
    assert isinstance(answer, PredictionAnswer)
    return answer


def files_under(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*")}


def version_of(models_dir: Path, operation: Operation) -> Path:
    assert operation.result is not None
    return models_dir / str(operation.result["model_version"])


def hourly_bars(market_data: Path) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(
        pd.read_csv(market_data / "EURUSD_1h.csv", usecols=["timestamp"], parse_dates=True)["timestamp"]
    )


# -- the life of a model --------------------------------------------------------------------------------------


def test_save_list_get_load_predict_delete(
    registry: ModelRegistry, train: Callable[..., Operation], models_dir: Path, market_data: Path
) -> None:
    operation = train()
    assert operation.status is OperationStatus.COMPLETED
    assert operation.result is not None
    version = version_of(models_dir, operation)

    saved = save(registry, operation, "eurusd-mr", description="hourly mean reversion")

    assert saved.model_name == "eurusd-mr"
    assert saved.task_id == operation.operation_id
    assert saved.model_path == str(version)
    assert saved.model_size_mb > 0
    [summary] = registry.list_models()
    assert summary.model_name == "eurusd-mr"
    assert (summary.strategy, summary.symbol, summary.timeframe) == ("mean_reversion", "EURUSD", "1h")
    assert summary.source_operation == operation.operation_id
    assert summary.description == "hourly mean reversion"
    assert summary.architecture == "mlp_32_16"
    # the figures of the weights the model keeps (the best epoch's, when early stopping restored them)
    assert summary.training_accuracy == operation.result["training_metrics"]["kept_train_accuracy"]
    assert summary.test_accuracy == operation.result["test_metrics"]["test_accuracy"]
    assert summary.f1_score == operation.result["test_metrics"]["f1_score"]
    assert summary.model_path == str(version)
    assert registry.get("eurusd-mr") == summary

    loaded = registry.load("eurusd-mr")

    features = json.loads((version / "features.json").read_text(encoding="utf-8"))["feature_names"]
    assert loaded.model_info.features == features
    assert loaded.model_info.input_size == len(features) == 27
    assert loaded.model_info.source_operation == operation.operation_id
    assert registry.loaded == ["eurusd-mr"]

    single = predict_bar(registry, "eurusd-mr", symbol="eurusd", test_date=date(2018, 1, 10))
    series = predict(registry, "eurusd-mr", start_date=date(2018, 1, 8), end_date=date(2018, 1, 10))

    assert (single.symbol, single.timeframe) == ("EURUSD", "1h")
    assert single.test_date == datetime(2018, 1, 10, 23)
    assert single.bar["close"] > 0
    assert isinstance(series, RangePredictionAnswer)
    bars = hourly_bars(market_data)
    expected = bars[(bars >= pd.Timestamp("2018-01-08")) & (bars < pd.Timestamp("2018-01-11"))]
    assert [item.timestamp for item in series.predictions] == list(expected.to_pydatetime())
    assert series.count == len(expected) == 72
    assert (series.start_date, series.end_date) == (datetime(2018, 1, 8), datetime(2018, 1, 10, 23))
    assert sum(series.signal_counts.values()) == series.count
    # one bar alone or at the end of a range: the same call (to float32 rounding: a batch of 1 and one of 72 may
    # round a matrix product's last bit differently)
    last = series.predictions[-1]
    assert last.model_dump(exclude={"confidence", "signal_strength", "probabilities"}) == single.prediction.model_dump(
        exclude={"confidence", "signal_strength", "probabilities"}
    )
    assert last.probabilities == pytest.approx(single.prediction.probabilities, rel=1e-6)

    deleted = registry.delete("eurusd-mr")

    assert deleted == summary
    assert registry.list_models() == []
    assert registry.loaded == []
    assert not version.exists()
    with pytest.raises(NotFoundError, match="no model named 'eurusd-mr'"):
        registry.get("eurusd-mr")


def test_list_filters_by_symbol_timeframe_and_strategy(
    registry: ModelRegistry, train: Callable[..., Operation]
) -> None:
    save(registry, train(), "eurusd-hourly")
    save(registry, train(strategy("multi_timeframe")), "eurusd-multi")
    save(registry, train(strategy(symbol="GOOG", timeframe="1d")), "goog-daily")

    def names(**filters: str) -> list[str]:
        return [model.model_name for model in registry.list_models(**filters)]

    assert names() == ["goog-daily", "eurusd-multi", "eurusd-hourly"]  # the newest first
    assert names(symbol="EURUSD") == ["eurusd-multi", "eurusd-hourly"]
    assert names(timeframe="1d") == ["goog-daily"]
    assert names(timeframe="1h+4h+1d") == ["eurusd-multi"]
    assert names(strategy="mean_reversion") == ["goog-daily", "eurusd-hourly"]
    assert names(symbol="EURUSD", strategy="mean_reversion") == ["eurusd-hourly"]
    assert names(symbol="GBPUSD") == []


def test_files_stay_while_another_name_points_at_the_version(
    registry: ModelRegistry, train: Callable[..., Operation], models_dir: Path
) -> None:
    operation = train()
    version = version_of(models_dir, operation)
    save(registry, operation, "first")
    save(registry, operation, "second")

    registry.delete("first")

    assert version.is_dir()
    assert registry.load("second").model_info.source_operation == operation.operation_id

    registry.delete("second")

    assert not version.exists()
    assert registry.list_models() == []


def test_a_deleted_version_is_not_saved_again_as_another_trainings_model(
    registry: ModelRegistry, train: Callable[..., Operation], models_dir: Path
) -> None:
    first = train()
    save(registry, first, "first")
    registry.delete("first")
    second = train()
    assert version_of(models_dir, second) != version_of(models_dir, first)  # numbers are never reused

    with pytest.raises(ConflictError, match=r"version of .* is no longer there \(`trainops models delete` removed"):
        save(registry, first, "first-again")
    assert save(registry, second, "second").model_name == "second"


def test_a_delete_racing_a_save_of_the_same_version_never_leaves_a_name_without_files(
    registry: ModelRegistry, train: Callable[..., Operation], models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete of the version's last name landing between a save's check of the files and its record (another
    request, another process) had removed the files under the new name: the save answered, the load then failed."""
    operation = train()
    save(registry, operation, "old")
    insert = registry._insert
    deleting: list[threading.Thread] = []

    def insert_while_deleted(*args: Any) -> Any:
        deleting.append(threading.Thread(target=registry.delete, args=("old",)))
        deleting[0].start()
        deleting[0].join(0.5)  # holds the lock: the delete waits for the save to end
        return insert(*args)

    monkeypatch.setattr(registry, "_insert", insert_while_deleted)
    save(registry, operation, "new")
    deleting[0].join(30)

    assert [model.model_name for model in registry.list_models()] == ["new"]
    assert version_of(models_dir, operation).is_dir()
    assert registry.load("new").model_name == "new"


def test_a_purge_of_the_run_racing_a_save_of_its_model_never_leaves_a_name_without_files(
    registry: ModelRegistry,
    service: OperationsService,
    settings: Settings,
    train: Callable[..., Operation],
    models_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deleting the run for good (its purge removes the version no name uses) landing between a save's check of the
    files and its record: both had answered success, and the name pointed at a removed folder."""
    operation = train()
    on_disk = settings.model_copy(update={"models_dir": models_dir})
    insert = registry._insert
    purges: list[threading.Thread] = []
    purged: list[DeletedOperation] = []

    def purge() -> None:
        artifacts = open_artifacts(on_disk, service)
        purged.append(
            delete_operation(operation.operation_id, operations=service, artifacts=artifacts, settings=on_disk)
        )

    def insert_while_purged(*args: Any) -> Any:
        purges.append(threading.Thread(target=purge))
        purges[0].start()
        purges[0].join(0.5)  # the save holds the names' lock: the purge waits for it, then finds the name
        return insert(*args)

    monkeypatch.setattr(registry, "_insert", insert_while_purged)
    save(registry, operation, "kept")
    purges[0].join(30)

    assert purged and purged[0].model_versions == 0 and purged[0].model_version_kept is not None
    assert version_of(models_dir, operation).is_dir()
    assert registry.load("kept").model_name == "kept"


def test_a_models_folder_reached_through_a_link_or_a_relative_path_saves_loads_and_deletes(
    service: OperationsService,
    train: Callable[..., Operation],
    models_dir: Path,
    market_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A home behind a symbolic link (macOS' /tmp, a models folder on a bigger disk) or a relative TRAINOPS_HOME
    failed every save with a ValueError (a 500 through the API)."""
    operation = train()
    (tmp_path / "link").symlink_to(tmp_path, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    for spelling in (tmp_path / "link" / "models", Path("models"), Path("link/models")):
        registry = ModelRegistry(ModelStore(service.store.engine), service, models_dir=spelling, data_dir=market_data)
        name = f"via_{len(registry.list_models())}"

        saved = save(registry, operation, name)

        assert Path(saved.model_path) == version_of(models_dir, operation)
        assert registry.load(name).model_name == name
    registry.delete("via_0")
    assert version_of(models_dir, operation).is_dir()  # the other names still use it


# -- saving: what is refused ----------------------------------------------------------------------------------


def test_hostile_names_are_refused_and_change_nothing(
    registry: ModelRegistry, train: Callable[..., Operation], models_dir: Path
) -> None:
    operation = train()
    save(registry, operation, "kept")
    before = (registry.list_models(), files_under(models_dir))
    actions: dict[str, Callable[[str], object]] = {
        "save": lambda name: save(registry, operation, name, overwrite=True),
        "get": registry.get,
        "load": registry.load,
        "predict": lambda name: predict(registry, name, test_date=date(2018, 1, 10)),
        "delete": registry.delete,
    }

    outcomes = {(name, action): refusal(call, name) for name in HOSTILE_NAMES for action, call in actions.items()}

    rule = f"it must match {MODEL_NAME_PATTERN}"
    assert {key: outcome for key, outcome in outcomes.items() if rule not in outcome} == {}
    assert (registry.list_models(), files_under(models_dir)) == before


def refusal(call: Callable[[str], object], name: str) -> str:
    """The message of the ``InvalidInputError`` that ``call(name)`` raises (``"accepted"`` if none)."""
    try:
        call(name)
    except InvalidInputError as error:
        return error.message
    return "accepted"


def test_a_taken_name_conflicts_unless_overwritten_which_drops_the_cached_model(
    registry: ModelRegistry, train: Callable[..., Operation], models_dir: Path
) -> None:
    first, second = train(), train()
    save(registry, first, "model")
    registry.load("model")

    with pytest.raises(ConflictError, match=r"a model named 'model' already exists; .* \"overwrite\": true"):
        save(registry, second, "model")

    assert registry.get("model").source_operation == first.operation_id
    assert registry.loaded == ["model"]

    save(registry, second, "model", overwrite=True)

    assert registry.loaded == []
    [summary] = registry.list_models()
    assert summary.source_operation == second.operation_id
    assert summary.model_path == str(version_of(models_dir, second))
    assert registry.load("model").model_info.source_operation == second.operation_id


def test_an_unknown_task_is_not_found(registry: ModelRegistry) -> None:
    with pytest.raises(NotFoundError):
        registry.save(SaveModelRequest(task_id="op_training_20250101_000000_0123abcd", model_name="model"))


def test_an_unfinished_training_is_still_running(registry: ModelRegistry, service: OperationsService) -> None:
    operation = create_training(service, strategy(), device="cpu")

    with pytest.raises(ConflictError, match=r"is still pending \(0%\); save its model once it has finished"):
        save(registry, operation, "model")

    service.start(operation.operation_id)

    with pytest.raises(ConflictError, match=r"is still running \(0%\); save its model once it has finished"):
        save(registry, operation, "model")
    assert registry.list_models() == []


def test_a_failed_training_says_it_failed_and_why(registry: ModelRegistry, service: OperationsService) -> None:
    operation = create_training(service, strategy(), device="cpu")
    service.start(operation.operation_id)
    service.fail(operation.operation_id, "DataError: EURUSD 1h has no bars")

    with pytest.raises(ConflictError, match="failed, so it has no model to save: DataError: EURUSD 1h has no bars"):
        save(registry, operation, "model")


@pytest.mark.parametrize("operation_type", ["training", "evaluation"])
def test_an_operation_that_is_not_a_strategy_training_has_no_model(
    registry: ModelRegistry, service: OperationsService, operation_type: str
) -> None:
    operation = service.create(operation_type)  # what outside scripts report into: no strategy, no model
    service.start(operation.operation_id)
    service.complete(operation.operation_id, result={"accuracy": 0.9})

    with pytest.raises(ConflictError, match=r"ended completed without a model .*not a strategy training"):
        save(registry, operation, "model")


def test_a_training_stopped_before_it_began_has_no_model(
    registry: ModelRegistry,
    service: OperationsService,
    settings: Settings,
    market_data: Path,
    models_dir: Path,
) -> None:
    operation = create_training(service, strategy(), device="cpu")
    service.start(operation.operation_id)
    service.cancel(operation.operation_id, "changed my mind", requested_by="test")

    ended = run_training(
        LocalTrainOps(service, settings=settings),
        service.get(operation.operation_id),
        data_dir=market_data,
        models_dir=models_dir,
    )

    assert ended.status is OperationStatus.CANCELLED
    with pytest.raises(ConflictError, match="ended cancelled without a model"):
        save(registry, ended, "model")
    assert not models_dir.exists() or files_under(models_dir) == set()


@pytest.mark.parametrize("where", ["../../etc", "/etc", "..", "", "escape"])
def test_a_result_naming_a_path_outside_the_models_dir_is_refused(
    registry: ModelRegistry, service: OperationsService, models_dir: Path, tmp_path: Path, where: str
) -> None:
    (tmp_path / "outside").mkdir()
    models_dir.mkdir()
    (models_dir / "escape").symlink_to(tmp_path / "outside", target_is_directory=True)
    operation = create_training(service, strategy(), device="cpu")
    service.start(operation.operation_id)
    service.complete(operation.operation_id, result={"model_version": where})

    with pytest.raises(ArtifactError, match="names a model outside the models directory"):
        save(registry, operation, "model")

    assert registry.list_models() == []


# -- damaged versions -----------------------------------------------------------------------------------------


def test_a_tampered_version_fails_to_load_and_leaves_the_others_usable(
    registry: ModelRegistry, train: Callable[..., Operation], models_dir: Path
) -> None:
    damaged, intact = train(), train()
    save(registry, damaged, "damaged")
    save(registry, intact, "intact")
    weights = version_of(models_dir, damaged) / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:100])

    with pytest.raises(ArtifactError, match="is not a readable safetensors file") as loading:
        registry.load("damaged")
    with pytest.raises(ArtifactError, match="is not a readable safetensors file") as predicting:
        predict(registry, "damaged", test_date=date(2018, 1, 10))
    with pytest.raises(ArtifactError, match="is not a readable safetensors file"):
        save(registry, damaged, "damaged-again")

    assert str(weights) in loading.value.message
    assert str(weights) in predicting.value.message
    assert loading.value.message.startswith("model 'damaged': ")  # which model, and what to do about it
    assert loading.value.message.endswith(
        "delete the model (`trainops models delete damaged`) and save a retrained run"
    )
    assert registry.loaded == []
    assert registry.load("intact").model_info.source_operation == intact.operation_id
    assert predict(registry, "intact", test_date=date(2018, 1, 10)).model_name == "intact"
    assert [model.model_name for model in registry.list_models()] == ["intact", "damaged"]

    registry.delete("damaged")

    assert not weights.parent.exists()
    assert [model.model_name for model in registry.list_models()] == ["intact"]


def test_metrics_of_the_wrong_shape_are_refused_on_save(
    registry: ModelRegistry, train: Callable[..., Operation], models_dir: Path
) -> None:
    operation = train()
    metrics = version_of(models_dir, operation) / "metrics.json"
    metrics.write_text(json.dumps({"training_metrics": [0.5], "test_metrics": "good"}), encoding="utf-8")

    with pytest.raises(ArtifactError, match=r"metrics\.json"):
        save(registry, operation, "model")


def test_a_non_finite_metric_is_never_stored(
    registry: ModelRegistry, train: Callable[..., Operation], models_dir: Path
) -> None:
    operation = train()
    metrics = version_of(models_dir, operation) / "metrics.json"
    document = json.loads(metrics.read_text(encoding="utf-8"))
    document["test_metrics"]["test_accuracy"] = float("nan")
    metrics.write_text(json.dumps(document), encoding="utf-8")  # json writes NaN, which json reads back

    refused: ArtifactError | None = None
    try:
        save(registry, operation, "model")
    except ArtifactError as error:
        refused = error
    if refused is not None:  # refusing the damaged file is right
        assert str(metrics) in refused.message
    else:  # and so is saving the model without the number
        assert registry.get("model").test_accuracy is None


# -- the cache ------------------------------------------------------------------------------------------------


def test_the_cache_keeps_the_most_recently_used_models(
    make_registry: Callable[..., ModelRegistry], train: Callable[..., Operation]
) -> None:
    registry = make_registry(cache_size=2)
    operation = train()
    for name in ("a", "b", "c"):
        save(registry, operation, name)

    registry.load("a")
    registry.load("b")
    assert registry.loaded == ["a", "b"]

    registry.load("c")
    assert registry.loaded == ["b", "c"]

    predict(registry, "b", test_date=date(2018, 1, 10))
    assert registry.loaded == ["c", "b"]

    predict(registry, "a", test_date=date(2018, 1, 10))
    assert registry.loaded == ["b", "a"]


def test_a_cached_model_whose_files_changed_is_read_again(
    registry: ModelRegistry, train: Callable[..., Operation], models_dir: Path
) -> None:
    """A loaded model went on predicting from memory after its files were damaged or removed, until the next
    load; the docstring promised a check of its files."""
    operation = train()
    save(registry, operation, "model")
    predict_bar(registry, "model", test_date=date(2018, 1, 10))
    assert registry.loaded == ["model"]
    weights = version_of(models_dir, operation) / WEIGHTS

    weights.write_bytes(weights.read_bytes()[:100])

    with pytest.raises(ArtifactError, match=str(weights)):
        predict(registry, "model", test_date=date(2018, 1, 10))
    assert registry.loaded == []


# -- predicting: what is refused ------------------------------------------------------------------------------


def test_bad_predictions_say_what_to_ask_instead(registry: ModelRegistry, train: Callable[..., Operation]) -> None:
    save(registry, train(), "model")
    valid = "predictions are possible from 2017-04-20T06:00:00 to 2018-02-07T15:00:00"
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"timeframe": "4h", "test_date": date(2018, 1, 10)}, InvalidInputError, "predicts on 1h bars"),
        ({"timeframe": "4h", "test_date": date(2018, 1, 10)}, InvalidInputError, "ask with timeframe '1h'"),
        ({"symbol": "GBPUSD", "test_date": date(2018, 1, 10)}, DataError, "no market data for GBPUSD 1h"),
        ({"symbol": "GBPUSD", "test_date": date(2018, 1, 10)}, DataError, "Available: EURUSD_1h, EURUSD_4h"),
        ({"symbol": "../etc", "test_date": date(2018, 1, 10)}, DataError, "invalid symbol '../etc'"),
        ({"start_date": date(2018, 1, 12), "end_date": date(2018, 1, 10)}, InvalidInputError, "is after end_date"),
        (  # a weekend: no bar, though the start is before the end
            {"start_date": datetime(2017, 12, 23, 5), "end_date": datetime(2017, 12, 24, 21)},
            InvalidInputError,
            "no 1h bar from 2017-12-23 05:00:00 to 2017-12-24 21:00:00: the bar before is 2017-12-22",
        ),
        ({"test_date": date(2017, 4, 19)}, InvalidInputError, valid),
        ({"test_date": date(2018, 3, 1)}, InvalidInputError, valid),
        ({"start_date": date(2017, 4, 19), "end_date": date(2017, 5, 1)}, InvalidInputError, valid),
        ({"start_date": date(2018, 1, 8), "end_date": date(2018, 3, 1)}, InvalidInputError, valid),
    ]

    for request, error, message in cases:
        with pytest.raises(error, match=message):
            predict(registry, "model", **request)
    with pytest.raises(NotFoundError, match="no model named 'other'"):
        predict(registry, "other", test_date=date(2018, 1, 10))


@pytest.mark.parametrize(
    ("dates", "problem"),
    [
        ({"test_date": date(2018, 1, 10), "start_date": date(2018, 1, 8), "end_date": date(2018, 1, 9)}, "not both"),
        ({"test_date": date(2018, 1, 10), "end_date": date(2018, 1, 9)}, "not both"),
        ({}, "send either test_date .*: got neither"),
        ({"start_date": date(2018, 1, 8)}, "a range needs both start_date and end_date"),
    ],
)
def test_a_request_is_one_bar_or_a_range(dates: dict[str, date], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        PredictRequest(model_name="model", symbol="EURUSD", timeframe="1h", **dates)


@pytest.mark.parametrize(
    ("start", "end", "bars"),
    [
        pytest.param("2018-01-15T10:00", "2018-01-15", 14, id="a-time-to-the-end-of-its-day"),
        pytest.param("2018-01-15T10:00Z", "2018-01-15T20:00", 11, id="utc-and-naive"),
        pytest.param("2018-01-15T12:00+02:00", "2018-01-15T20:00", 11, id="an-offset-and-naive"),
        pytest.param("2018-01-15", "2018-01-16T00:00+00:00", 25, id="a-day-to-an-aware-midnight"),
    ],
)
def test_a_range_compares_its_ends_in_utc_and_a_date_end_takes_its_whole_day(
    registry: ModelRegistry, train: Callable[..., Operation], start: str, end: str, bars: int
) -> None:
    # each was refused ("start after end") or failed with a TypeError (a 500 through the API)
    save(registry, train(), "model")

    answer = predict(registry, "model", start_date=start, end_date=end)

    assert isinstance(answer, RangePredictionAnswer) and answer.count == bars


def test_a_bar_without_complete_features_is_named_alone_and_counted_in_a_range(
    make_registry: Callable[..., ModelRegistry], train: Callable[..., Operation], market_data: Path, tmp_path: Path
) -> None:
    """A flat stretch leaves the Bollinger band's position undefined (a band of zero width): one bar there failed
    with a ValueError (a 500), and a range dropped such bars without a word."""
    operation = train()
    flat_data = tmp_path / "flat-data"
    flat_data.mkdir()
    for path in market_data.glob("EURUSD_*.csv"):
        (flat_data / path.name).write_bytes(path.read_bytes())
    hourly = pd.read_csv(flat_data / "EURUSD_1h.csv", index_col="timestamp", parse_dates=True)
    flat = (hourly.index >= "2018-01-15") & (hourly.index < "2018-01-17")
    hourly.loc[flat, ["open", "high", "low", "close"]] = 1.2
    hourly.to_csv(flat_data / "EURUSD_1h.csv", index_label="timestamp")
    registry = make_registry(data_dir=flat_data)
    save(registry, operation, "model")

    with pytest.raises(InvalidInputError, match=r"the 1h bar 2018-01-16 12:00:00 has no complete features: bb_20"):
        predict(registry, "model", test_date="2018-01-16T12:00")
    answer = predict(registry, "model", start_date=date(2018, 1, 15), end_date=date(2018, 1, 17))

    assert isinstance(answer, RangePredictionAnswer)
    assert answer.skipped > 0 and answer.count + answer.skipped == int(
        ((hourly.index >= "2018-01-15") & (hourly.index < "2018-01-18")).sum()
    )
    assert datetime(2018, 1, 16, 12) in answer.skipped_bars and len(answer.skipped_bars) <= 20


def test_a_midnight_datetime_means_the_midnight_bar(registry: ModelRegistry, train: Callable[..., Operation]) -> None:
    save(registry, train(), "model")

    answer = predict_bar(registry, "model", test_date="2018-01-10T00:00:00")

    assert answer.test_date == datetime(2018, 1, 10, 0, 0)


def test_a_model_predicts_bars_after_its_training_window(
    registry: ModelRegistry, train: Callable[..., Operation]
) -> None:
    save(registry, train(strategy(end_date=date(2017, 12, 31))), "model")

    answer = predict_bar(registry, "model", test_date=date(2018, 1, 15))

    assert answer.test_date == datetime(2018, 1, 15, 23)


# -- a cancelled training -------------------------------------------------------------------------------------


class CancelAfterTheFirstEpoch(LocalTrainOps):
    """Asks the training to stop as its first epoch is stored: the answer to that write tells the trainer."""

    def add_epochs(self, operation_id: str, records: Sequence[EpochRecord]) -> WriteAck:
        if records and self.service.get(operation_id).cancel_request is None:
            self.service.cancel(operation_id, "one epoch is enough", requested_by="test")
        return super().add_epochs(operation_id, records)


@pytest.fixture
def cancelling_ops(service: OperationsService, settings: Settings) -> LocalTrainOps:
    return CancelAfterTheFirstEpoch(service, settings=settings)


def test_a_cancelled_training_writes_a_version_that_can_be_saved(
    registry: ModelRegistry,
    train: Callable[..., Operation],
    cancelling_ops: LocalTrainOps,
    models_dir: Path,
) -> None:
    operation = train(strategy(overrides=UNTIL_STOPPED), ops=cancelling_ops)

    assert operation.status is OperationStatus.CANCELLED
    assert operation.result is not None
    assert operation.result["cancelled"] == {"reason": "one epoch is enough", "requested_by": "test"}
    assert 1 <= operation.result["training_metrics"]["epochs_completed"] < 5000
    version = version_of(models_dir, operation)
    assert json.loads((version / "metadata.json").read_text(encoding="utf-8"))["cancelled"] is True

    save(registry, operation, "stopped-early")

    assert registry.get("stopped-early").source_operation == operation.operation_id
    assert predict_bar(registry, "stopped-early", test_date=date(2018, 1, 10)).test_date == datetime(2018, 1, 10, 23)
