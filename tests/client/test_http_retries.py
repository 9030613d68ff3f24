"""HttpTrainOps retries what is safe to repeat, and only that (a fake transport plays the network)."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from trainops.client.http import HttpTrainOps
from trainops.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    TrainOpsError,
)

OPERATION = {
    "operation_id": "op_training_20260101_000000_ab12cd34",
    "operation_type": "training",
    "status": "pending",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}


class FlakyTransport(httpx.BaseTransport):
    """Fails the first ``failures`` requests with ``error``, then answers like a server would."""

    def __init__(self, error: Exception, failures: int = 1) -> None:
        self.error = error
        self.failures = failures
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if len(self.requests) <= self.failures:
            raise self.error
        return httpx.Response(200, json={"success": True, "data": OPERATION})


def client(transport: httpx.BaseTransport) -> HttpTrainOps:
    return HttpTrainOps("http://trainops.test", transport=transport, backoff=0.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda ops: ops.create_operation(),
        lambda ops: ops.finish_operation(OPERATION["operation_id"]),
    ],
    ids=["create", "finish"],
)
def test_a_write_that_may_have_arrived_is_not_repeated(call: object) -> None:
    transport = FlakyTransport(httpx.ReadTimeout("no answer in time"))
    with pytest.raises(ServiceUnavailableError):
        call(client(transport))  # type: ignore[operator]
    assert len(transport.requests) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda ops: ops.create_operation(),
        lambda ops: ops.get_operation(OPERATION["operation_id"]),
    ],
    ids=["create", "get"],
)
def test_a_request_that_never_connected_is_retried(call: object) -> None:
    transport = FlakyTransport(httpx.ConnectError("connection refused"), failures=2)
    call(client(transport))  # type: ignore[operator]
    assert len(transport.requests) == 3


@pytest.mark.parametrize("error", [httpx.ReadTimeout("no answer in time"), httpx.WriteTimeout("body not taken")])
def test_a_server_that_took_the_connection_and_hung_is_not_asked_again(error: Exception) -> None:
    """Each attempt at a hung server costs a whole timeout (four held a training's end for two minutes): a read
    fails at once, saying so, and a run's sender keeps its records for later."""
    transport = FlakyTransport(error)
    with pytest.raises(ServiceUnavailableError, match=r"took the connection but did not answer within 30 s"):
        client(transport).get_operation(OPERATION["operation_id"])
    assert len(transport.requests) == 1


def test_reads_are_retried_after_a_connect_timeout() -> None:
    transport = FlakyTransport(httpx.ConnectTimeout("no connection in time"))
    operation = client(transport).get_operation(OPERATION["operation_id"])
    assert operation.operation_id == OPERATION["operation_id"]
    assert len(transport.requests) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (413, PayloadTooLargeError),  # a proxy's body limit: a batch to split, not an outage
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (429, ServiceUnavailableError),
        (500, TrainOpsError),
    ],
)
def test_a_proxys_page_without_json_reads_by_its_status(status: int, error: type[TrainOpsError]) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=f"<html><h1>{status}</h1>nginx</html>")

    ops = HttpTrainOps("http://trainops.test", transport=httpx.MockTransport(handle), retries=0)
    with pytest.raises(error, match=rf"answered HTTP {status} without JSON.*proxy in front of one") as raised:
        ops.get_operation(OPERATION["operation_id"])
    assert type(raised.value) is error
    assert raised.value.details["status"] == status


def test_non_finite_numbers_in_a_result_are_sent_as_their_spelling() -> None:
    transport = FlakyTransport(httpx.ConnectError("unused"), failures=0)
    client(transport).finish_operation(OPERATION["operation_id"], result={"loss": math.nan, "best": math.inf})
    assert json.loads(transport.requests[0].content) == {
        "status": "completed",
        "result": {"loss": "NaN", "best": "Infinity"},
        "error": None,
    }


def test_a_result_json_cannot_carry_is_refused_before_sending() -> None:
    transport = FlakyTransport(httpx.ConnectError("unused"), failures=0)
    with pytest.raises(InvalidInputError, match="object"):
        client(transport).finish_operation(OPERATION["operation_id"], result={"model": object()})
    assert transport.requests == []
