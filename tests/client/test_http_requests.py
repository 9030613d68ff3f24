"""What HttpTrainOps sends: the request models' JSON, as a server of this or another version reads it, and bad
arguments refused before anything is sent, as trainops errors naming the field (a fake transport plays the
server)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from trainops.client.http import HttpTrainOps
from trainops.core.epoch import EpochRecord
from trainops.errors import InvalidInputError, NotFoundError, TrainOpsError

OPERATION_ID = "op_training_20260101_000000_ab12cd34"
MODEL = {
    "model_id": 1,
    "model_name": "eurusd-mr",
    "strategy": "mean_reversion",
    "symbol": "EURUSD",
    "timeframe": "1h",
    "created_at": "2026-01-01T00:00:00Z",
    "saved_at": "2026-01-01T00:00:00Z",
    "training_accuracy": 0.5,
    "test_accuracy": 0.4,
    "description": None,
    "source_operation": OPERATION_ID,
    "model_path": "/models/x",
    "model_size_mb": 0.1,
}


class Recorder(httpx.BaseTransport):
    """Keeps every request; answers ``GET /models`` with one model and anything else with "not found", so each
    call ends right after its request was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "GET" and request.url.path == "/api/v1/models":
            return httpx.Response(200, json={"success": True, "data": {"models": [MODEL], "count": 1}})
        error = {"code": "not_found", "message": "not here", "details": {}}
        return httpx.Response(404, json={"success": False, "error": error})


@pytest.fixture
def transport() -> Recorder:
    return Recorder()


@pytest.fixture
def http(transport: Recorder) -> HttpTrainOps:
    return HttpTrainOps("http://trainops.test", transport=transport, retries=0)


def sent(transport: Recorder, call: Callable[[], object]) -> Any:
    """The JSON body ``call`` sent (the fake server then answered "not found")."""
    with pytest.raises(NotFoundError):
        call()
    assert transport.requests[-1].headers["content-type"] == "application/json"
    return json.loads(transport.requests[-1].content)


def test_operation_writes_send_their_request_models(http: HttpTrainOps, transport: Recorder) -> None:
    metadata = {"symbol": "EURUSD", "note": "kept", "loss": math.nan}
    body = sent(transport, lambda: http.create_operation("training", metadata=metadata, total_epochs=5))
    assert (body["operation_type"], body["total_epochs"]) == ("training", 5)
    assert {key: body["metadata"][key] for key in metadata} == {"symbol": "EURUSD", "note": "kept", "loss": "NaN"}

    assert sent(transport, lambda: http.start_operation(OPERATION_ID, worker="host:1")) == {"worker": "host:1"}
    assert sent(transport, lambda: http.cancel_operation(OPERATION_ID, "diverging", requested_by="agent")) == {
        "reason": "diverging",
        "requested_by": "agent",
    }
    assert sent(transport, lambda: http.finish_operation(OPERATION_ID, "failed", error="boom")) == {
        "status": "failed",
        "result": None,
        "error": "boom",
    }


def test_epochs_go_bare_one_at_a_time_and_in_a_batch_without_empty_fields(
    http: HttpTrainOps, transport: Recorder
) -> None:
    one = sent(transport, lambda: http.add_epochs(OPERATION_ID, [EpochRecord(epoch=0, val_loss=math.inf)]))
    assert one["epoch"] == 0 and one["val_loss"] == "Infinity"

    records = [EpochRecord(epoch=0, val_loss=math.nan), EpochRecord(epoch=1, train_loss=0.5, metrics={"f1": 0.7})]
    assert sent(transport, lambda: http.add_epochs(OPERATION_ID, records)) == {
        "epochs": [
            {"epoch": 0, "val_loss": "NaN", "metrics": {}},
            {"epoch": 1, "train_loss": 0.5, "metrics": {"f1": 0.7}},
        ]
    }


def test_diagnose_sends_only_what_differs_from_the_defaults(http: HttpTrainOps, transport: Recorder) -> None:
    # a server of another version fills in its own defaults for the rest
    assert sent(transport, lambda: http.diagnose(OPERATION_ID)) == {}
    assert sent(transport, lambda: http.diagnose(OPERATION_ID, {"stop_rule": "patience", "patience": 3})) == {
        "policy": {"stop_rule": "patience", "patience": 3}
    }
    assert sent(transport, lambda: http.diagnose(OPERATION_ID, total_epochs_planned=40)) == {"total_epochs_planned": 40}


def test_validate_strategy_sends_one_source(http: HttpTrainOps, transport: Recorder) -> None:
    assert sent(transport, lambda: http.validate_strategy("name: x\n")) == {"yaml": "name: x\n"}
    config = {"name": "x", "model": {"epochs": 3, "rate": math.nan}}
    assert sent(transport, lambda: http.validate_strategy(config)) == {
        "config": {"name": "x", "model": {"epochs": 3, "rate": "NaN"}}
    }


def test_the_model_list_is_read_as_its_answer_model(http: HttpTrainOps) -> None:
    [model] = http.list_models()
    assert (model.model_name, model.source_operation) == ("eurusd-mr", OPERATION_ID)


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda ops: ops.create_operation(total_epochs=0), "total_epochs: Input should be greater than or equal to 1"),
        (lambda ops: ops.create_operation("Not A Type"), "operation_type: String should match pattern"),
        (lambda ops: ops.start_operation(OPERATION_ID, worker="w" * 300), "worker: String should have at most 256"),
        (lambda ops: ops.cancel_operation(OPERATION_ID, ""), "reason: String should have at least 1 character"),
        (lambda ops: ops.cancel_operation(OPERATION_ID, "x", requested_by=""), "requested_by: String should have at"),
        (lambda ops: ops.finish_operation(OPERATION_ID, "running"), "status: Input should be 'completed', 'failed'"),
        (lambda ops: ops.finish_operation(OPERATION_ID, result={"m": object()}), "result.m holds a object"),
        (lambda ops: ops.diagnose(OPERATION_ID, {"patience": 0}), "policy.patience: Input should be greater than"),
        (lambda ops: ops.diagnose(OPERATION_ID, total_epochs_planned=0), "total_epochs_planned: Input should be"),
        (lambda ops: ops.validate_strategy({"when": object()}), "config.when holds a object"),
    ],
)
def test_bad_arguments_are_refused_before_sending_as_trainops_errors(
    http: HttpTrainOps, transport: Recorder, call: Callable[[HttpTrainOps], object], says: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        call(http)
    assert raised.value.message.startswith(says), raised.value.message
    assert "pydantic" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert transport.requests == []


@pytest.mark.parametrize(
    "answer",
    [
        {"success": True, "data": None},
        {"success": True},
        "<html>hello</html>",
    ],
)
@pytest.mark.parametrize(
    "call",
    [
        lambda ops: ops.list_data(),
        lambda ops: ops.list_operations(),
        lambda ops: ops.get_operation(OPERATION_ID),
        lambda ops: ops.delete_model("eurusd-mr"),
    ],
)
def test_an_answer_that_is_not_trainops_says_so(answer: object, call: Callable[[HttpTrainOps], object]) -> None:
    """A server answering success without data (or not JSON) is named, not a TypeError from deep in the client."""

    def handle(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, str):
            return httpx.Response(200, text=answer)
        return httpx.Response(200, json=answer)

    ops = HttpTrainOps("http://trainops.test", transport=httpx.MockTransport(handle), retries=0)
    with pytest.raises(
        TrainOpsError, match=r"the server at http://trainops\.test.* answered HTTP 200 .*trainops server"
    ):
        call(ops)
