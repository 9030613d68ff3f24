"""The result of a strategy training as a typed model: it reads every result stored so far and writes back the
very JSON it read (REST clients and results in existing databases read it by name).

``stored_strategy_result.json`` is the result of a real training (``trainops train strategies/mean_reversion.yaml
--epochs 3``, with its model version written) exactly as the operations table returned it before the result was
typed; only the home directory in ``model_path`` was changed.
"""

from __future__ import annotations

import copy
import doctest
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest

import trainops.schemas.training
from trainops.client import TrainOps
from trainops.core.operation import OperationStatus
from trainops.schemas.training import (
    CancelledBy,
    ClassMetrics,
    DataSummary,
    StrategyResult,
    StrategyTrainingMetrics,
    TrainingPerformance,
    strategy_result,
)

STORED = Path(__file__).with_name("stored_strategy_result.json")
SECTIONS = ("training_metrics", "test_metrics", "model_info", "data")


@pytest.fixture
def stored() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(STORED.read_text(encoding="utf-8"))
    return document


def test_a_result_stored_before_the_kept_accuracies_reads_without_them(stored: dict[str, Any]) -> None:
    for name in ("kept_train_accuracy", "kept_val_accuracy"):
        del stored["training_metrics"][name]

    training = StrategyResult.model_validate(stored).training_metrics

    assert (training.kept_train_accuracy, training.kept_val_accuracy) == (None, None)
    assert training.final_train_accuracy == stored["training_metrics"]["final_train_accuracy"]


def test_a_stored_result_reads_and_writes_back_the_same_json(stored: dict[str, Any]) -> None:
    result = StrategyResult.model_validate(stored)

    assert json.dumps(result.model_dump(mode="json")) == json.dumps(stored)  # same keys, order and values
    assert result.training_metrics.best_epoch == 2
    assert result.training_metrics.epochs_completed == result.training_metrics.epochs_planned == 3
    assert result.test_metrics.test_accuracy == stored["test_metrics"]["test_accuracy"]
    sell = stored["test_metrics"]["per_class"]["SELL"]
    assert result.test_metrics.per_class["SELL"] == ClassMetrics.model_validate(sell)
    assert result.data.rows.test == result.test_metrics.support == 745
    assert result.data.class_balance["HOLD"].count == 1835
    assert result.model_version == "mean_reversion/EURUSD_1h_v1"
    assert result.model_info.model_path == "/home/trader/.trainops/models/mean_reversion/EURUSD_1h_v1"
    assert result.cancelled is None


def test_model_version_and_path_are_absent_when_no_version_was_written(stored: dict[str, Any]) -> None:
    del stored["model_version"]
    del stored["model_info"]["model_path"]

    result = StrategyResult.model_validate(stored)

    assert result.model_version is None and result.model_info.model_path is None
    assert json.dumps(result.model_dump(mode="json")) == json.dumps(stored)


def test_a_cancelled_training_keeps_who_stopped_it(stored: dict[str, Any]) -> None:
    stored["cancelled"] = {"reason": "val_loss rising", "requested_by": "agent"}

    result = StrategyResult.model_validate(stored)

    assert result.cancelled == CancelledBy(reason="val_loss rising", requested_by="agent")
    assert result.model_dump(mode="json") == stored


def test_non_finite_metrics_survive_the_round_trip(stored: dict[str, Any]) -> None:
    """A diverged run's NaN is stored spelled "NaN" (JSON has no NaN); it reads as a float and writes back so."""
    stored["training_metrics"]["final_train_loss"] = "NaN"
    stored["training_metrics"]["final_val_loss"] = "Infinity"
    stored["test_metrics"]["test_loss"] = "NaN"

    result = StrategyResult.model_validate(stored)

    assert math.isnan(result.training_metrics.final_train_loss or 0.0)
    assert result.training_metrics.final_val_loss == math.inf
    assert math.isnan(result.test_metrics.test_loss or 0.0)
    assert json.loads(json.dumps(result.model_dump(mode="json"), allow_nan=False)) == stored


def test_an_older_result_without_some_keys_still_reads(stored: dict[str, Any]) -> None:
    older = copy.deepcopy(stored)
    for key in ("data", "timings", "model_version"):
        del older[key]
    del older["training_metrics"]["diverged"]
    del older["training_metrics"]["samples_per_second"]
    del older["test_metrics"]["f1_weighted"]
    del older["model_info"]["device"]

    result = StrategyResult.model_validate(older)

    assert result.data == DataSummary()
    assert result.timings == {}
    assert result.training_metrics.diverged is None
    assert result.training_metrics.samples_per_second is None
    assert result.test_metrics.f1_weighted is None
    assert result.model_info.device is None
    # everything it did hold reads as before
    assert result.test_metrics.f1_score == stored["test_metrics"]["f1_score"]
    assert result.training_metrics.best_epoch == stored["training_metrics"]["best_epoch"]
    written = result.model_dump(mode="json")
    assert written["test_metrics"]["per_class"] == stored["test_metrics"]["per_class"]
    assert written["model_info"]["model_path"] == stored["model_info"]["model_path"]


def test_keys_this_version_does_not_know_are_kept(stored: dict[str, Any]) -> None:
    """A later trainops (or a Run's logged artifacts) may add keys: reading and writing back must not drop them."""
    stored["artifacts"] = {"confusion": "plots/confusion.png"}
    stored["training_metrics"]["lr_schedule"] = "cosine"
    stored["test_metrics"]["per_class"]["BUY"]["specificity"] = 0.8
    stored["data"]["rows"]["holdout"] = 12

    result = StrategyResult.model_validate(stored)

    assert result.model_extra == {"artifacts": {"confusion": "plots/confusion.png"}}
    assert result.training_metrics.model_extra == {"lr_schedule": "cosine"}
    assert json.dumps(result.model_dump(mode="json")) == json.dumps(stored)


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(None, id="none"),
        pytest.param({}, id="empty"),
        pytest.param({"test_accuracy": 0.9}, id="a-script's-figures"),
        pytest.param({"test_metrics": {"accuracy": 0.9}}, id="test-metrics-only"),
        pytest.param({"training_metrics": "fine", "test_metrics": {}}, id="training-metrics-text"),
        pytest.param({"training_metrics": {}, "test_metrics": {"test_accuracy": "high"}}, id="accuracy-text"),
    ],
)
def test_other_results_are_not_strategy_results(result: dict[str, Any] | None) -> None:
    assert strategy_result(result) is None


def test_strategy_result_reads_a_stored_one(stored: dict[str, Any]) -> None:
    assert strategy_result(stored) == StrategyResult.model_validate(stored)


def test_performance_is_the_result_s_parts_with_the_same_json(stored: dict[str, Any]) -> None:
    performance = TrainingPerformance.of("op_training_20261204_181144_c6d75fb7", "completed", stored)

    written = performance.model_dump(mode="json")
    assert {key: written[key] for key in SECTIONS} == {key: stored[key] for key in SECTIONS}
    typed = StrategyResult.model_validate(stored)
    assert performance == TrainingPerformance.of(performance.task_id, "completed", typed)


def test_performance_of_a_result_that_is_not_a_strategy_s_names_the_field(stored: dict[str, Any]) -> None:
    stored["training_metrics"]["epochs_completed"] = "three"

    with pytest.raises(ValueError, match=r"^training_metrics\.epochs_completed: Input should be a valid integer"):
        TrainingPerformance.of("op_training_20261204_181144_c6d75fb7", "completed", stored)


def test_a_stored_result_round_trips_through_the_store_and_both_transports(
    ops: TrainOps, stored: dict[str, Any]
) -> None:
    operation = ops.create_operation(metadata={"strategy": "mean_reversion"}, total_epochs=3)
    ops.finish_operation(operation.operation_id, OperationStatus.COMPLETED, result=stored)

    read = ops.get_operation(operation.operation_id).result

    assert read == stored  # PostgreSQL's JSONB keeps the keys, not their order
    typed = strategy_result(read)
    assert typed is not None
    assert typed.model_dump(mode="json") == stored
    performance = ops.get_training_performance(operation.operation_id)
    assert performance.test_metrics == typed.test_metrics
    assert performance.model_dump(mode="json")["model_info"] == stored["model_info"]


@pytest.mark.parametrize("written", [True, False], ids=["model-version-written", "kept-in-memory"])
def test_rest_clients_read_the_same_json_as_before(api: httpx.Client, stored: dict[str, Any], written: bool) -> None:
    if not written:
        del stored["model_version"]
        del stored["model_info"]["model_path"]
    task_id = api.post("/operations", json={"operation_type": "training"}).json()["data"]["operation_id"]
    api.post(f"/operations/{task_id}/complete", json={"status": "completed", "result": stored}).raise_for_status()

    operation = api.get(f"/operations/{task_id}").json()["data"]
    # the answer's own "data" field is shadowed by the flat envelope's "data" (the whole answer) at the top level
    performance = api.get(f"/training/{task_id}/performance").json()["data"]

    assert operation["result"] == stored
    assert {key: performance[key] for key in SECTIONS} == {key: stored[key] for key in SECTIONS}
    assert ("model_path" in performance["model_info"]) is written  # absent, not null, when none was written


def test_training_metrics_default_to_unknown_not_to_made_up_figures() -> None:
    metrics = StrategyTrainingMetrics()

    assert metrics.best_epoch is None and metrics.final_val_loss is None and metrics.monitor is None
    assert metrics.epochs_completed == 0 and metrics.early_stopped is False


def test_docstring_examples() -> None:
    result = doctest.testmod(trainops.schemas.training, optionflags=doctest.ELLIPSIS)

    assert result.attempted > 0
    assert result.failed == 0
