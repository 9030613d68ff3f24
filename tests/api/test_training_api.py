"""``/training`` and ``/strategies`` over a real HTTP server: a strategy trained in a worker process and followed
to its end, its performance, request overrides, bad input, cancellation, and strategy validation.

Every training here is a real one (2 epochs on the sample data), run by the server's executor in a worker
process that reports into the test database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from trainops.api import create_app
from trainops.core.operation import Operation
from trainops.errors import ServiceUnavailableError
from trainops.executors.base import Executor
from trainops.schemas.operations import ExecutorJob
from trainops.schemas.training import Resources
from trainops.service.workers import worker_log_path
from trainops.settings import Settings

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
TRAINING_TIMEOUT = 90.0
"""Seconds a 2-epoch training gets, worker start-up (importing torch) included."""

STATUS_FIELDS = {
    "task_id",
    "status",
    "progress",
    "current_epoch",
    "total_epochs",
    "started_at",
    "estimated_completion",
    "current_metrics",
    "error",
}
TRAINING_METRICS = {
    "final_train_loss",
    "final_val_loss",
    "final_train_accuracy",
    "final_val_accuracy",
    "epochs_completed",
    "early_stopped",
    "training_time_minutes",
}
TEST_METRICS = {"test_loss", "test_accuracy", "precision", "recall", "f1_score"}
MODEL_INFO = {"model_size_mb", "parameters_count", "architecture"}
UNTIL_STOPPED = {"epochs": 5000, "early_stopping": {"patience": 100_000}}
"""Overrides of a training that runs until it is stopped: epochs take milliseconds here, and the strategy's own
early stopping would end even a 200-epoch training within seconds."""


@pytest.fixture
def settings(training_settings: Settings) -> Settings:
    return training_settings


def start(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/training/start", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def status_of(api: httpx.Client, task_id: str) -> dict[str, Any]:
    response = api.get(f"/training/{task_id}")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def wait_for(
    api: httpx.Client, task_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = TRAINING_TIMEOUT
) -> dict[str, Any]:
    """Poll ``GET /training/{task_id}`` until ``done`` holds; fails with the last answer after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        status = status_of(api, task_id)
        if done(status):
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"training {task_id} did not get there in {timeout:.0f}s; last status: {status}")
        time.sleep(0.1)


def wait_until_ended(api: httpx.Client, task_id: str) -> dict[str, Any]:
    return wait_for(api, task_id, lambda status: status["status"] in ("completed", "failed", "cancelled"))


def epochs_of(api: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    epochs: list[dict[str, Any]] = api.get(f"/operations/{task_id}/metrics").json()["data"]["metrics"]["epochs"]
    return epochs


def stored_operations(api: httpx.Client) -> int:
    total: int = api.get("/operations").json()["data"]["total"]
    return total


def error_message(response: httpx.Response, status_code: int) -> str:
    assert response.status_code == status_code, response.text
    body = response.json()
    assert body["success"] is False
    message: str = body["error"]["message"]
    return message


# -- a training from start to performance ------------------------------------------------------------------------


def test_a_started_training_runs_to_completion_with_its_performance(api: httpx.Client, settings: Settings) -> None:
    started = start(api, strategy="mean_reversion", config={"epochs": 2})

    assert started["success"] is True
    assert started["status"] == "training_started"
    task_id = started["task_id"]
    assert task_id.startswith("op_training_")
    assert task_id in started["message"] and "mean_reversion" in started["message"]
    assert (started["symbol"], started["timeframe"]) == ("EURUSD", "1h")
    assert started["config"]["name"] == "mean_reversion"
    assert started["config"]["model"]["training"]["epochs"] == 2
    assert started["estimated_duration_minutes"] > 0
    assert started["data"]["task_id"] == task_id  # the same object under data, for envelope-reading clients

    final = wait_until_ended(api, task_id)

    assert final.keys() >= STATUS_FIELDS
    assert final["status"] == "completed", final
    assert final["progress"] == 100.0
    assert (final["current_epoch"], final["total_epochs"]) == (2, 2)
    assert final["started_at"] is not None
    assert final["estimated_completion"] is not None  # once ended: when it ended
    assert final["current_metrics"]["epoch"] == 1
    assert final["current_metrics"]["val_loss"] > 0
    assert final["error"] is None
    assert (final["strategy"], final["symbol"], final["timeframe"]) == ("mean_reversion", "EURUSD", "1h")
    assert final["data"]["status"] == "completed"

    response = api.get(f"/training/{task_id}/performance")
    assert response.status_code == 200, response.text
    performance = response.json()
    assert performance["training_metrics"].keys() >= TRAINING_METRICS
    assert performance["test_metrics"].keys() >= TEST_METRICS
    assert performance["model_info"].keys() >= MODEL_INFO
    training = performance["training_metrics"]
    assert training["epochs_completed"] == 2 and training["early_stopped"] is False
    assert training["training_time_minutes"] > 0
    assert 0.0 <= performance["test_metrics"]["test_accuracy"] <= 1.0
    assert 0.0 <= performance["test_metrics"]["f1_score"] <= 1.0
    assert performance["model_info"]["architecture"] == "mlp_32_16"
    assert performance["model_info"]["parameters_count"] > 0
    assert performance["model_info"]["model_size_mb"] > 0

    assert [record["epoch"] for record in epochs_of(api, task_id)] == [0, 1]
    operation = api.get(f"/operations/{task_id}").json()["data"]
    assert operation["metadata"]["executor"] == "local"
    assert operation["metadata"]["worker"]  # the worker process took it over
    assert worker_log_path(settings, task_id).is_file()


def test_overrides_are_applied_and_answered_in_the_config(api: httpx.Client) -> None:
    overrides = {
        "epochs": 2,
        "hidden_layers": [8],
        "learning_rate": 0.01,
        "batch_size": 32,
        "validation_split": 0.2,
        "early_stopping": {"patience": 3, "monitor": "val_loss"},
        "optimizer": "sgd",
        "dropout_rate": 0.1,
    }

    started = start(api, strategy="mean_reversion", symbol="EURUSD", timeframe="4h", config=overrides)

    config = started["config"]
    assert (started["symbol"], started["timeframe"]) == ("EURUSD", "4h")
    assert config["training_data"]["symbols"] == {"mode": "single", "symbol": "EURUSD"}
    assert config["training_data"]["timeframes"]["timeframe"] == "4h"
    assert config["model"]["architecture"]["hidden_layers"] == [8]
    assert config["model"]["architecture"]["dropout"] == 0.1
    training = config["model"]["training"]
    assert (training["epochs"], training["learning_rate"], training["batch_size"]) == (2, 0.01, 32)
    assert training["optimizer"] == "sgd"
    assert training["early_stopping"]["patience"] == 3
    assert training["early_stopping"]["monitor"] == "val_loss"
    assert training["early_stopping"]["min_delta"] == 0.0001  # untouched keys keep the strategy's value
    split = config["training"]["data_split"]
    assert (split["validation"], split["test"]) == (0.2, 0.15)
    assert split["train"] == pytest.approx(0.65)

    # what trained is what was answered
    task_id = started["task_id"]
    assert wait_until_ended(api, task_id)["status"] == "completed"
    performance = api.get(f"/training/{task_id}/performance").json()
    assert performance["model_info"]["architecture"] == "mlp_8"
    recorded = api.get(f"/operations/{task_id}").json()["data"]["metadata"]["parameters"]["config"]
    assert recorded == config


# -- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status_code", "message"),
    [
        pytest.param(
            {"strategy": "no_such_strategy"},
            404,
            "no strategy named 'no_such_strategy'",
            id="unknown-strategy",
        ),
        pytest.param({"strategy": "bad name!"}, 422, "strategy name 'bad name!' is invalid", id="bad-name"),
        pytest.param({"strategy": "/tmp/elsewhere.yaml"}, 422, "give a strategy name", id="path-outside"),
        pytest.param(
            {"strategy": "../strategies/mean_reversion.yaml"}, 422, "give a strategy name", id="relative-path"
        ),
        pytest.param({"symbol": "GBPUSD"}, 422, "no market data for GBPUSD_1h", id="unknown-symbol"),
        pytest.param({"config": {"epochs": 0}}, 422, "config.epochs: Input should be greater than", id="epochs-0"),
        pytest.param(
            {"config": {"learning_rate": "fast"}},
            422,
            "config.learning_rate: 'fast' is text; send a JSON number",
            id="lr-text",
        ),
        pytest.param({"config": {"epoch": 2}}, 422, "config.epoch: Extra inputs are not permitted", id="unknown-key"),
        pytest.param({"strategyy": "x"}, 422, "strategyy: Extra inputs are not permitted", id="unknown-top-key"),
        pytest.param(
            {"config": {"validation_split": 0.9}}, 422, "leaves nothing to train on", id="validation-split-sum"
        ),
        pytest.param(
            {"config": {"validation_split": 1.0}}, 422, "config.validation_split: Input should be less", id="split-1"
        ),
        pytest.param(
            {"start_date": "2018-01-01", "end_date": "2017-06-01"},
            422,
            "start_date 2018-01-01 is after end_date 2017-06-01",
            id="start-after-end",
        ),
        pytest.param({"task_id": "my-run"}, 422, "operation id 'my-run' is invalid", id="task-id-malformed"),
        pytest.param(
            {"task_id": "op_eval_20250101_000000_deadbeef"}, 422, "use the form op_training_", id="task-id-other-type"
        ),
    ],
)
def test_bad_requests_are_refused_with_a_message_and_store_nothing(
    api: httpx.Client, body: dict[str, Any], status_code: int, message: str
) -> None:
    response = api.post("/training/start", json={"strategy": "mean_reversion", "config": {"epochs": 2}} | body)

    assert message in error_message(response, status_code)
    assert stored_operations(api) == 0


def test_unknown_strategy_and_symbol_errors_list_what_is_available(api: httpx.Client) -> None:
    response = api.post("/training/start", json={"strategy": "no_such_strategy"})
    message = error_message(response, 404)
    assert "available: mean_reversion" in message
    assert "mean_reversion" in response.json()["error"]["details"]["available"]

    message = error_message(api.post("/training/start", json={"symbol": "GBPUSD"}), 422)
    assert "available: EURUSD_1h, EURUSD_4h, EURUSD_1d, GOOG_1d, GOOG_1w" in message


def test_an_existing_task_id_is_a_conflict(api: httpx.Client) -> None:
    existing = api.post("/operations", json={"operation_type": "training"}).json()["data"]["operation_id"]

    response = api.post("/training/start", json={"task_id": existing, "config": {"epochs": 2}})

    assert existing in error_message(response, 409)
    assert stored_operations(api) == 1
    assert api.get(f"/operations/{existing}").json()["data"]["status"] == "pending"  # nobody runs it


def test_an_unknown_training_is_404(api: httpx.Client) -> None:
    unknown = "op_training_20250101_000000_deadbeef"

    assert unknown in error_message(api.get(f"/training/{unknown}"), 404)
    assert unknown in error_message(api.get(f"/training/{unknown}/performance"), 404)


def test_a_plain_operation_is_not_a_strategy_training(api: httpx.Client) -> None:
    plain = api.post("/operations", json={"operation_type": "training"}).json()["data"]["operation_id"]

    message = error_message(api.get(f"/training/{plain}"), 422)

    assert f"operation {plain} is not a strategy training" in message


# -- what the server cannot do ----------------------------------------------------------------------------------


class RefusingCluster:
    """An executor whose cluster takes no job: a Ray cluster that went down, as the API meets it."""

    name = "ray"

    def check(self, resources: Resources | None) -> None:
        """Nothing is refused up front, as on Ray."""

    def submit(self, operation_id: str, resources: Resources | None = None) -> None:
        raise ServiceUnavailableError(
            f"the Ray cluster at http://ray-head:8265 did not take the training {operation_id}: connection refused"
        )

    def cancel(self, operation_id: str, reason: str) -> bool:
        return False

    def view(self, operation_id: str) -> ExecutorJob | None:
        return None

    def lost(self, operations: Sequence[Operation]) -> dict[str, str]:
        return {}

    def shutdown(self) -> None:
        """Nothing runs."""


@contextmanager
def server(settings: Settings, executor: Executor | None = None) -> Iterator[TestClient]:
    """A server in this process on ``settings`` (no reaper) and, when given, ``executor``."""
    app = create_app(settings.model_copy(update={"reaper_interval": 0}), executor=executor)
    with TestClient(app, base_url="http://testserver/api/v1") as client:
        yield client


def test_a_cluster_that_does_not_take_the_training_is_a_503_and_fails_it(settings: Settings) -> None:
    with server(settings, RefusingCluster()) as client:
        response = client.post("/training/start", json={"config": {"epochs": 2}})
        (failed,) = client.get("/operations", params={"status": "failed"}).json()["data"]["items"]

    assert response.status_code == 503, response.text
    message = response.json()["error"]["message"]
    assert message.startswith("the Ray cluster at http://ray-head:8265 did not take the training op_training_")
    assert failed["operation_id"] in message
    assert message in failed["error"]  # recorded, with the reason


def test_a_models_directory_that_is_a_file_is_a_500_naming_the_setting(settings: Settings, tmp_path: Path) -> None:
    models = tmp_path / "models.txt"
    models.write_text("not a folder", encoding="utf-8")

    with server(settings.model_copy(update={"models_dir": models})) as client:
        response = client.post("/training/start", json={"config": {"epochs": 2}})
        stored = client.get("/operations").json()["data"]["total"]

    assert response.status_code == 500, response.text
    error = response.json()["error"]
    assert error["code"] == "configuration_error"
    assert "(TRAINOPS_MODELS_DIR) is a file: point TRAINOPS_MODELS_DIR at a directory" in error["message"]
    assert stored == 0  # refused before anything was recorded


# -- cancellation and the queue ----------------------------------------------------------------------------------


def test_cancelling_keeps_finished_epochs_and_evaluates_the_best_weights(api: httpx.Client, settings: Settings) -> None:
    long = start(api, config=UNTIL_STOPPED)["task_id"]
    try:
        queued = start(api, config={"epochs": 2})["task_id"]  # one job at a time: this one waits
        assert status_of(api, queued)["status"] == "pending"
        assert "still pending" in error_message(api.get(f"/training/{queued}/performance"), 409)
        cancelled = api.delete(f"/operations/{queued}", params={"reason": "not needed"}).json()["data"]
        assert cancelled["status"] == "cancelled"  # at once: it never started

        running = wait_for(api, long, lambda status: status["current_metrics"] is not None)
        assert running["status"] == "training"
        assert "still training" in error_message(api.get(f"/training/{long}/performance"), 409)

        response = api.request("DELETE", f"/operations/{long}", json={"reason": "enough for this test"})
        assert response.status_code == 200, response.text
        final = wait_until_ended(api, long)
    finally:
        api.request("DELETE", f"/operations/{long}", json={"reason": "test cleanup"})

    assert final["status"] == "cancelled"
    assert final["cancel_reason"] == "enough for this test"
    assert final["error"] is None
    epochs = epochs_of(api, long)
    assert 1 <= len(epochs) < 5000
    assert [record["epoch"] for record in epochs] == list(range(len(epochs)))

    response = api.get(f"/training/{long}/performance")
    assert response.status_code == 200, response.text
    performance = response.json()
    assert performance["status"] == "cancelled"
    assert performance["training_metrics"]["epochs_completed"] == len(epochs)
    assert performance["test_metrics"].keys() >= TEST_METRICS

    never_started = status_of(api, queued)
    assert never_started["status"] == "cancelled" and never_started["started_at"] is None
    assert not worker_log_path(settings, queued).exists()  # no worker was ever spawned for it


# -- strategies --------------------------------------------------------------------------------------------------


def test_the_shipped_strategies_are_listed_as_valid(api: httpx.Client) -> None:
    response = api.get("/strategies")

    assert response.status_code == 200
    strategies = {item["name"]: item for item in response.json()["data"]}
    assert sorted(strategies) == sorted(path.stem for path in STRATEGIES.glob("*.yaml"))
    assert all(item["valid"] and item["error"] is None for item in strategies.values()), strategies
    mean_reversion = strategies["mean_reversion"]
    assert (mean_reversion["symbols"], mean_reversion["timeframes"]) == (["EURUSD"], ["1h"])
    assert mean_reversion["indicators"] == ["rsi_14", "bb_20", "stoch_14"]
    assert (mean_reversion["architecture"], mean_reversion["epochs"]) == ([32, 16], 30)


def validate(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/strategies/validate", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["data"]
    return result


def test_validate_yaml_names_every_problem_with_its_path(api: httpx.Client) -> None:
    text = (STRATEGIES / "mean_reversion.yaml").read_text()

    valid = validate(api, yaml=text)
    assert valid["valid"] is True and valid["problems"] == []
    assert valid["strategy"]["name"] == "mean_reversion"

    broken = text.replace(
        "oversold: {type: trapezoidal, parameters: [0, 0, 30, 42]}",
        "oversold: {type: triangular, parameters: [30, 20]}",
    ).replace("epochs: 30", "epochs: 0")
    invalid = validate(api, yaml=broken)
    assert invalid["valid"] is False and invalid["strategy"] is None
    assert "fuzzy_sets.rsi_14.oversold: triangular needs 3 numbers a <= b <= c, got [30, 20]" in invalid["problems"]
    assert any(problem.startswith("model.training.epochs: ") for problem in invalid["problems"]), invalid

    not_yaml = validate(api, yaml=": : [")
    assert not_yaml["valid"] is False and "not valid YAML" in not_yaml["problems"][0]
    unreadable_date = validate(api, yaml=text.replace('version: "1.0"', "version: 2001-13-45"))
    assert unreadable_date["valid"] is False
    assert "'2001-13-45' is not a valid timestamp (month must be in 1..12)" in unreadable_date["problems"][0]


def test_validate_a_mapping_or_a_strategy_by_name(api: httpx.Client) -> None:
    mapping = yaml.safe_load((STRATEGIES / "mean_reversion.yaml").read_text())

    valid = validate(api, config=mapping)
    assert valid["valid"] is True and valid["strategy"]["architecture"] == [32, 16]

    mapping["model"]["architecture"]["hidden_layers"] = []
    mapping["training_data"].pop("symbols")
    invalid = validate(api, config=mapping)
    assert invalid["valid"] is False
    assert any(problem.startswith("model.architecture.hidden_layers: ") for problem in invalid["problems"]), invalid

    by_name = validate(api, strategy="mean_reversion")
    assert by_name["valid"] is True and by_name["strategy"]["name"] == "mean_reversion"

    response = api.post("/strategies/validate", json={"strategy": "no_such_strategy"})
    assert "no strategy named 'no_such_strategy'" in error_message(response, 404)
    documented = api.get("/openapi.json").json()["paths"]["/api/v1/strategies/validate"]["post"]["responses"]
    assert "404" in documented  # the contract says so too (a client generated from it expects it)


def test_validate_needs_exactly_one_source(api: httpx.Client) -> None:
    both = api.post("/strategies/validate", json={"yaml": "name: x", "strategy": "mean_reversion"})
    assert "send exactly one of yaml, config or strategy (got yaml, strategy)" in error_message(both, 422)
    none = api.post("/strategies/validate", json={})
    assert "got none" in error_message(none, 422)
    path = api.post("/strategies/validate", json={"strategy": "/etc/hosts.yaml"})
    assert "give a strategy name" in error_message(path, 422)
