"""``/models`` over a real HTTP server: save a finished training's model under a name, list (and filter), load,
predict one bar or a range, delete; and every refusal: hostile names (in the body and URL-encoded in the path),
taken names, trainings that are unfinished or failed, dates outside the data or inside the indicators' warm-up,
unknown models. A refused request stores nothing.

The models are real: ``strategies/mean_reversion.yaml`` trained for 2 epochs on the sample data in this process
(at most two trainings per test), written to a temporary models directory the server reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from trainops.client.local import LocalTrainOps
from trainops.core.operation import Operation, OperationStatus
from trainops.errors import DataError
from trainops.executors.jobs import run_training
from trainops.pipeline.artifacts import WEIGHTS
from trainops.pipeline.data_files import available_data
from trainops.pipeline.strategy import StrategyConfig, load_strategy, parse_strategy
from trainops.schemas.models import MODEL_NAME_PATTERN
from trainops.service.bootstrap import open_service
from trainops.service.training import apply_overrides, create_training
from trainops.settings import Settings

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
SAVED_FIELDS = {"success", "model_id", "model_name", "model_path", "task_id", "saved_at", "model_size_mb"}
LISTED_FIELDS = {
    "model_id",
    "model_name",
    "symbol",
    "timeframe",
    "created_at",
    "training_accuracy",
    "test_accuracy",
    "description",
}
MODEL_INFO_FIELDS = {"created_at", "symbol", "timeframe", "architecture", "training_accuracy", "test_accuracy"}
PREDICTION_FIELDS = {"signal", "confidence", "signal_strength", "probabilities", "fuzzy_outputs"}
HOSTILE_NAMES = [
    "../../etc",
    "..",
    "../models",
    "a/b",
    "a\\b",
    ".hidden",
    "-flag",
    "",
    "x" * 65,
    "x" * 300,
    "bad name",
    "a..b",
]
ENCODED_NAMES = ["%2E%2E", "..%5Cetc", "bad%20name", ".hidden", "a..b", "x" * 300]
"""Names that stay one path segment once decoded: each reaches the name check (one with a NUL, %00, is refused
before it, as in every path: ``test_document_truth_api.py``)."""
ENCODED_SLASHES = ["..%2F..%2Fetc", "%2E%2E%2Fetc", "a%2Fb"]
"""Names whose decoded form holds a ``/``: what ``HttpTrainOps`` sends for ``../../etc``."""
VALID_RANGE = re.compile(r"predictions are possible from (\S+) to (\S+)$")


@pytest.fixture
def settings(training_settings: Settings) -> Settings:
    return training_settings


@pytest.fixture
def local(settings: Settings) -> Iterator[LocalTrainOps]:
    """This process's own way into the test database (trainings run here, not in the server)."""
    ops = LocalTrainOps(open_service(settings), settings=settings)
    yield ops
    ops.close()


def mean_reversion(**overrides: Any) -> StrategyConfig:
    return apply_overrides(load_strategy(STRATEGIES / "mean_reversion.yaml"), epochs=2, **overrides)


@pytest.fixture
def train(local: LocalTrainOps, settings: Settings) -> Callable[..., Operation]:
    """``train(config)``: a finished training of ``config`` (2-epoch mean reversion by default) with its model
    version written to the server's models directory."""

    def run(config: StrategyConfig | None = None) -> Operation:
        operation = create_training(local.service, config or mean_reversion(), device="cpu")
        ended = run_training(
            local,
            operation,
            data_dir=settings.resolved_data_dir,
            models_dir=settings.resolved_models_dir,
        )
        assert ended.status is OperationStatus.COMPLETED, ended.error
        return ended

    return run


def ok(response: httpx.Response) -> dict[str, Any]:
    """A successful answer: top-level fields, and the same object under ``data`` (``flat_envelope``)."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is True
    assert body["data"] == {key: value for key, value in body.items() if key not in ("success", "data")}
    return body


def error_message(response: httpx.Response, status_code: int) -> str:
    assert response.status_code == status_code, response.text
    body = response.json()
    assert body["success"] is False
    message: str = body["error"]["message"]
    return message


def listed(api: httpx.Client, **filters: str) -> list[dict[str, Any]]:
    body = ok(api.get("/models", params=filters))
    models: list[dict[str, Any]] = body["models"]
    assert body["count"] == len(models)
    return models


def save(api: httpx.Client, task_id: str, name: str, **extra: Any) -> httpx.Response:
    return api.post("/models/save", json={"task_id": task_id, "model_name": name, **extra})


def predict(api: httpx.Client, name: str = "eurusd-mr", **body: Any) -> httpx.Response:
    return api.post("/models/predict", json={"model_name": name, "symbol": "EURUSD", "timeframe": "1h", **body})


def moment(text: str) -> datetime:
    """An answer's timestamp as an aware UTC datetime (naive ones are UTC)."""
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- the whole flow ----------------------------------------------------------------------------------------------


def test_save_list_load_predict_delete(api: httpx.Client, train: Callable[..., Operation], settings: Settings) -> None:
    operation = train()
    result = operation.result or {}
    assert listed(api) == []

    saved = ok(save(api, operation.operation_id, "eurusd-mr", description="EURUSD hourly mean reversion"))
    assert set(saved) == SAVED_FIELDS | {"data"}
    assert saved["model_name"] == "eurusd-mr"
    assert saved["task_id"] == operation.operation_id
    assert isinstance(saved["model_id"], int)
    path = Path(saved["model_path"])
    assert path.is_dir() and settings.resolved_models_dir.resolve() in path.parents
    assert path == settings.resolved_models_dir / result["model_version"]
    size = sum(file.stat().st_size for file in path.iterdir() if file.is_file())
    assert saved["model_size_mb"] == pytest.approx(size / 2**20, abs=1e-6)
    assert abs(moment(saved["saved_at"]) - datetime.now(UTC)) < timedelta(minutes=1)

    [model] = listed(api)
    assert set(model) >= LISTED_FIELDS
    assert model["model_id"] == saved["model_id"]
    assert model["model_name"] == "eurusd-mr"
    assert (model["symbol"], model["timeframe"], model["strategy"]) == ("EURUSD", "1h", "mean_reversion")
    assert model["description"] == "EURUSD hourly mean reversion"
    assert model["training_accuracy"] == pytest.approx(result["training_metrics"]["kept_train_accuracy"])
    assert model["test_accuracy"] == pytest.approx(result["test_metrics"]["test_accuracy"])
    assert moment(model["created_at"]) <= moment(saved["saved_at"])
    shown = ok(api.get("/models/eurusd-mr"))
    assert shown["data"] == model

    loaded = ok(api.post("/models/eurusd-mr/load"))
    assert (loaded["model_name"], loaded["model_loaded"]) == ("eurusd-mr", True)
    info = loaded["model_info"]
    assert set(info) >= MODEL_INFO_FIELDS
    assert (info["symbol"], info["timeframe"]) == ("EURUSD", "1h")
    assert info["architecture"] == result["model_info"]["architecture"]
    assert info["training_accuracy"] == model["training_accuracy"]
    assert info["test_accuracy"] == model["test_accuracy"]
    assert moment(info["created_at"]) == moment(model["created_at"])

    answer = ok(predict(api, test_date="2018-01-15"))
    assert moment(answer["test_date"]) == datetime(2018, 1, 15, 23, tzinfo=UTC)  # the day's last bar
    check_prediction(answer["prediction"])
    indicators = tuple(indicator.feature_id for indicator in mean_reversion().indicators)
    assert answer["input_features"]
    for feature, value in answer["input_features"].items():
        assert feature.startswith(indicators) and isinstance(value, float), feature

    series = ok(predict(api, start_date="2018-01-10", end_date="2018-01-12"))
    stamps = [moment(item["timestamp"]) for item in series["predictions"]]
    assert series["count"] == len(stamps) > 0
    assert stamps == sorted(set(stamps))
    assert datetime(2018, 1, 10, tzinfo=UTC) <= stamps[0] and stamps[-1] < datetime(2018, 1, 13, tzinfo=UTC)
    assert sum(series["signal_counts"].values()) == series["count"]
    for item in series["predictions"]:
        check_prediction(item)
    # a bar of the range, asked about alone, gets the same call
    middle = series["predictions"][len(stamps) // 2]
    single = ok(predict(api, test_date=middle["timestamp"]))
    assert moment(single["test_date"]) == moment(middle["timestamp"])
    assert single["prediction"]["probabilities"] == pytest.approx(middle["probabilities"], abs=1e-6)

    deleted = ok(api.delete("/models/eurusd-mr"))
    assert deleted["model_name"] == "eurusd-mr"
    assert not path.exists()
    assert "no model named 'eurusd-mr'" in error_message(api.post("/models/eurusd-mr/load"), 404)
    assert "no model named" in error_message(api.get("/models/eurusd-mr"), 404)
    assert "no model named" in error_message(predict(api, test_date="2018-01-15"), 404)
    assert "no model named" in error_message(api.delete("/models/eurusd-mr"), 404)
    assert listed(api) == []


def check_prediction(prediction: dict[str, Any]) -> None:
    assert set(prediction) >= PREDICTION_FIELDS
    assert prediction["signal"] in ("buy", "hold", "sell")
    probabilities = prediction["probabilities"]
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction["confidence"] == pytest.approx(probabilities[prediction["signal"].upper()])
    assert prediction["confidence"] == pytest.approx(max(probabilities.values()))
    assert prediction["signal_strength"] == pytest.approx(probabilities["BUY"] - probabilities["SELL"])
    assert prediction["fuzzy_outputs"]
    assert all(0.0 <= value <= 1.0 for value in prediction["fuzzy_outputs"].values())


# -- saving: names and tasks ---------------------------------------------------------------------------------------


def test_a_taken_name_is_a_conflict_unless_overwrite(api: httpx.Client, train: Callable[..., Operation]) -> None:
    first, second = train(), train()
    original = ok(save(api, first.operation_id, "eurusd-mr", description="first"))
    before = listed(api)

    message = error_message(save(api, second.operation_id, "eurusd-mr", description="second"), 409)
    assert "a model named 'eurusd-mr' already exists" in message and '"overwrite": true' in message
    assert listed(api) == before

    replaced = ok(save(api, second.operation_id, "eurusd-mr", description="second", overwrite=True))
    assert replaced["task_id"] == second.operation_id
    assert replaced["model_path"] != original["model_path"]
    [model] = listed(api)
    assert (model["model_name"], model["description"], model["source_operation"]) == (
        "eurusd-mr",
        "second",
        second.operation_id,
    )
    loaded = ok(api.post("/models/eurusd-mr/load"))
    assert loaded["model_info"]["source_operation"] == second.operation_id

    # one version under two names: deleting one name keeps the files the other needs
    ok(save(api, second.operation_id, "eurusd-mr-copy"))
    ok(api.delete("/models/eurusd-mr"))
    assert Path(replaced["model_path"]).is_dir()
    ok(api.post("/models/eurusd-mr-copy/load"))


def test_hostile_names_are_refused_with_the_rule(api: httpx.Client, train: Callable[..., Operation]) -> None:
    operation = train()
    ok(save(api, operation.operation_id, "eurusd-mr"))
    before = listed(api)
    for name in HOSTILE_NAMES:
        message = error_message(save(api, operation.operation_id, name), 422)
        shown = name if len(name) <= 100 else f"{name[:100]}..."  # a long name is cut short in the message
        assert f"model name {shown!r} is invalid: it must match {MODEL_NAME_PATTERN}" in message, name
        assert listed(api) == before, name
    message = error_message(predict(api, "../../etc", test_date="2018-01-15"), 422)
    assert MODEL_NAME_PATTERN in message
    for name in ENCODED_NAMES:
        for method, path in name_routes(name):
            message = error_message(api.request(method, path), 422)
            assert f"is invalid: it must match {MODEL_NAME_PATTERN}" in message, (method, path)
    assert listed(api) == before


def name_routes(name: str) -> tuple[tuple[str, str], ...]:
    """The routes that take a model's name in their path, with ``name`` there as sent."""
    return (("GET", f"/models/{name}"), ("POST", f"/models/{name}/load"), ("DELETE", f"/models/{name}"))


def test_encoded_slashes_in_path_names_are_refused_with_the_rule(api: httpx.Client) -> None:
    for name in ENCODED_SLASHES:
        for method, path in name_routes(name):
            message = error_message(api.request(method, path), 422)
            assert f"is invalid: it must match {MODEL_NAME_PATTERN}" in message, (method, path)


def test_a_newline_in_a_path_name_is_refused_not_dropped(api: httpx.Client, train: Callable[..., Operation]) -> None:
    """``DELETE /models/eurusd-mr%0A`` names no model: it must not delete ``eurusd-mr``, whatever the router's
    pattern makes of a final newline."""
    ok(save(api, train().operation_id, "eurusd-mr"))
    before = listed(api)
    for sent, name in (("eurusd-mr%0A", "eurusd-mr\n"), ("eurusd-mr%0a", "eurusd-mr\n"), ("eurusd%0Amr", "eurusd\nmr")):
        for method, path in name_routes(sent):
            message = error_message(api.request(method, path), 422)
            assert f"model name {name!r} is invalid: it must match {MODEL_NAME_PATTERN}" in message, (method, path)
    assert listed(api) == before
    # nor is a newline after the load route's path that route: POST is not allowed on a model's path
    assert api.post("/models/eurusd-mr/load%0A").status_code == 405
    ok(api.post("/models/eurusd-mr/load"))


def test_a_training_stopped_before_its_first_epoch_ended_keeps_no_model(
    api: httpx.Client, local: LocalTrainOps, settings: Settings
) -> None:
    """Its weights were barely trained (a fraction of an epoch, or none): saved, they were a model in name only."""
    service = local.service
    started = service.start(create_training(service, mean_reversion(), device="cpu").operation_id)
    operation = service.cancel(started.operation_id, "wrong symbol", requested_by="agent")  # as a worker reads it

    ended = run_training(local, operation, data_dir=settings.resolved_data_dir, models_dir=settings.resolved_models_dir)

    assert ended.status is OperationStatus.CANCELLED
    assert (ended.result or {}).get("model_version") is None
    message = error_message(save(api, operation.operation_id, "untrained"), 409)
    assert "without a model (it was stopped before its first epoch ended" in message
    assert not any(settings.resolved_models_dir.rglob("*.safetensors"))


def test_unfinished_failed_and_unknown_tasks_are_refused(
    api: httpx.Client, local: LocalTrainOps, settings: Settings
) -> None:
    service = local.service
    pending = create_training(service, mean_reversion(), device="cpu")
    message = error_message(save(api, pending.operation_id, "too-early"), 409)
    assert f"training {pending.operation_id} is still pending" in message
    assert "once it has finished" in message

    running = service.start(create_training(service, mean_reversion(), device="cpu").operation_id)
    assert "is still running" in error_message(save(api, running.operation_id, "too-early"), 409)

    # a real failure: the strategy asks for a symbol the data directory does not have
    failing = create_training(service, mean_reversion(symbol="GBPUSD"), device="cpu")
    with pytest.raises(DataError, match="no market data for GBPUSD"):
        run_training(local, failing, data_dir=settings.resolved_data_dir, models_dir=settings.resolved_models_dir)
    assert service.get(failing.operation_id).status is OperationStatus.FAILED
    message = error_message(save(api, failing.operation_id, "broken"), 409)
    assert f"training {failing.operation_id} failed, so it has no model to save" in message
    assert "no market data for GBPUSD" in message

    assert "no operation 'op_training_nope'" in error_message(save(api, "op_training_nope", "ghost"), 404)
    assert "no model named 'ghost'" in error_message(api.post("/models/ghost/load"), 404)
    assert "no model named 'ghost'" in error_message(api.delete("/models/ghost"), 404)
    assert listed(api) == []
    assert not any(settings.resolved_models_dir.rglob("*.safetensors"))


def test_a_damaged_version_is_a_conflict_naming_the_file(api: httpx.Client, train: Callable[..., Operation]) -> None:
    operation = train()
    weights = Path(ok(save(api, operation.operation_id, "eurusd-mr"))["model_path"]) / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:100])

    for answer in (
        api.post("/models/eurusd-mr/load"),
        predict(api, test_date="2018-01-15"),
        save(api, operation.operation_id, "eurusd-mr-again"),
    ):
        assert "is not a readable safetensors file" in error_message(answer, 409)
        assert answer.json()["error"]["code"] == "invalid_artifact"
    assert [model["model_name"] for model in listed(api)] == ["eurusd-mr"]


# -- listing -------------------------------------------------------------------------------------------------------


def test_list_filters_by_symbol_timeframe_and_strategy(api: httpx.Client, train: Callable[..., Operation]) -> None:
    eurusd = train()
    goog_config = mean_reversion(symbol="GOOG", timeframe="1d").to_dict()
    goog_config["name"] = "goog_reversion"
    goog = train(parse_strategy(goog_config, "goog_reversion"))
    ok(save(api, eurusd.operation_id, "eurusd-mr"))
    ok(save(api, goog.operation_id, "goog-daily", description="GOOG daily"))

    everything = listed(api)
    assert [model["model_name"] for model in everything] == ["goog-daily", "eurusd-mr"]  # newest first
    for model in everything:
        assert set(model) >= LISTED_FIELDS
    for filters, names in (
        ({"symbol": "EURUSD"}, ["eurusd-mr"]),
        ({"symbol": "GOOG"}, ["goog-daily"]),
        ({"timeframe": "1d"}, ["goog-daily"]),
        ({"timeframe": "1h"}, ["eurusd-mr"]),
        ({"strategy": "mean_reversion"}, ["eurusd-mr"]),
        ({"strategy": "goog_reversion", "symbol": "GOOG", "timeframe": "1d"}, ["goog-daily"]),
        ({"symbol": "GOOG", "timeframe": "1h"}, []),
        ({"strategy": "trend_following"}, []),
    ):
        assert [model["model_name"] for model in listed(api, **filters)] == names, filters
    [goog_model] = listed(api, symbol="GOOG")
    assert (goog_model["symbol"], goog_model["timeframe"], goog_model["description"]) == ("GOOG", "1d", "GOOG daily")

    # the daily model predicts on daily bars only
    answer = ok(predict(api, "goog-daily", symbol="GOOG", timeframe="1d", test_date="2012-06-15"))
    assert moment(answer["test_date"]) == datetime(2012, 6, 15, tzinfo=UTC)
    message = error_message(predict(api, "goog-daily", symbol="GOOG", timeframe="1h", test_date="2012-06-15"), 422)
    assert "predicts on 1d bars" in message


# -- predicting ----------------------------------------------------------------------------------------------------


def test_dates_outside_the_data_or_in_the_warm_up_name_the_valid_range(
    api: httpx.Client, train: Callable[..., Operation], market_data: Path
) -> None:
    ok(save(api, train().operation_id, "eurusd-mr"))
    before = listed(api)
    [eurusd] = [item for item in available_data(market_data) if (item.symbol, item.timeframe) == ("EURUSD", "1h")]
    assert eurusd.start and eurusd.end
    data_start, data_end = eurusd.start.replace(tzinfo=None), eurusd.end.replace(tzinfo=None)

    message = error_message(predict(api, test_date="2017-04-19"), 422)  # the data's first day: warm-up
    assert "is before the first bar with complete features (the indicators' warm-up)" in message
    match = VALID_RANGE.search(message)
    assert match, message
    first, last = datetime.fromisoformat(match[1]), datetime.fromisoformat(match[2])
    assert last == data_end
    assert data_start < first < data_start + timedelta(days=3)
    valid = f"predictions are possible from {match[1]} to {match[2]}"

    for body, says in (
        ({"test_date": "2010-01-01"}, "is before the first bar with complete features"),
        ({"test_date": (first - timedelta(hours=1)).isoformat()}, "is before the first bar with complete features"),
        ({"test_date": "2018-03-01"}, "is after the last bar of the data"),
        ({"test_date": "2030-01-01T00:00:00"}, "is after the last bar of the data"),
        ({"start_date": "2017-04-19", "end_date": "2017-05-01"}, "is before the first bar with complete features"),
        ({"start_date": "2018-01-01", "end_date": "2018-03-01"}, "is after the last bar of the data"),
        ({"start_date": "2018-03-01", "end_date": "2018-03-02"}, "is after the last bar of the data"),
    ):
        message = error_message(predict(api, **body), 422)
        assert says in message and valid in message, (body, message)

    # the edges of the valid range are themselves valid
    assert moment(ok(predict(api, test_date=first.isoformat()))["test_date"]) == first.replace(tzinfo=UTC)
    assert moment(ok(predict(api, test_date=last.date().isoformat()))["test_date"]) == last.replace(tzinfo=UTC)
    whole = ok(predict(api, start_date=first.date().isoformat(), end_date=(first + timedelta(days=1)).isoformat()))
    assert moment(whole["start_date"]) == first.replace(tzinfo=UTC)
    assert whole["count"] == len(whole["predictions"]) > 0
    assert listed(api) == before


def test_bad_prediction_requests_are_refused(api: httpx.Client, train: Callable[..., Operation]) -> None:
    ok(save(api, train().operation_id, "eurusd-mr"))
    before = listed(api)
    for body, status, says in (
        ({"test_date": "2018-01-15", "timeframe": "4h"}, 422, "predicts on 1h bars"),
        ({"test_date": "2018-01-15", "symbol": "GBPUSD"}, 422, "no market data for GBPUSD"),
        ({"test_date": "2018-01-15", "start_date": "2018-01-10"}, 422, "send either test_date"),
        ({}, 422, "send either test_date"),
        ({"start_date": "2018-01-10"}, 422, "a range needs both start_date and end_date"),
        ({"start_date": "2018-01-12", "end_date": "2018-01-10"}, 422, "is after end_date"),
        ({"test_date": "yesterday"}, 422, "test_date"),
        ({"test_date": "2018-01-15", "horizon": 3}, 422, "horizon"),
    ):
        message = error_message(predict(api, **body), status)
        assert says in message, (body, message)
    assert "no model named 'ghost'" in error_message(predict(api, "ghost", test_date="2018-01-15"), 404)
    assert listed(api) == before
