"""The REST API over a real HTTP server on loopback: paths, JSON fields, statuses and bad input."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.live_server import LiveServer
from tests.policies import patience
from trainops.core.policy import MonitorPolicy
from trainops.settings import Settings

METRICS_FIELDS = {
    "epochs",
    "best_epoch",
    "best_val_loss",
    "epochs_since_improvement",
    "is_overfitting",
    "is_plateaued",
    "is_diverging",
    "trend",
    "signals",
    "recommendation",
    "total_epochs_planned",
    "total_epochs_completed",
    "thinned",
    "epochs_stored",
}


def create(api: httpx.Client, **body: object) -> str:
    response = api.post("/operations", json={"operation_type": "training", **body})
    assert response.status_code == 201, response.text
    operation_id: str = response.json()["data"]["operation_id"]
    return operation_id


def post_raw(api: httpx.Client, path: str, raw: str | bytes) -> httpx.Response:
    return api.post(path, content=raw, headers={"Content-Type": "application/json"})


def refuse_constant(name: str) -> None:
    """Strict JSON: what the API sends back never holds bare NaN/Infinity, which many parsers reject."""
    raise AssertionError(f"non-standard JSON constant {name} in a response")


def epochs_of(api: httpx.Client, operation_id: str) -> list[dict[str, object]]:
    data = api.get(f"/operations/{operation_id}/metrics").json()["data"]
    epochs: list[dict[str, object]] = data["metrics"]["epochs"]
    return epochs


def test_create_answers_201_with_the_operation(api: httpx.Client) -> None:
    response = api.post(
        "/operations", json={"operation_type": "training", "metadata": {"symbol": "AAPL"}, "total_epochs": 50}
    )

    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert data["status"] == "pending"
    assert data["total_epochs"] == 50
    assert data["metadata"]["symbol"] == "AAPL"
    assert data["operation_id"].startswith("op_training_")


def test_create_takes_an_id_of_the_callers_once(api: httpx.Client) -> None:
    """A client that chose the id can send the request again after a lost answer: the second is a 409, and the
    first operation is unchanged."""
    chosen = "op_training_20261207_013000_0123abcd"
    created = api.post("/operations", json={"operation_id": chosen, "name": "first", "total_epochs": 5})
    assert created.status_code == 201, created.text
    assert created.json()["data"]["operation_id"] == chosen

    again = api.post("/operations", json={"operation_id": chosen, "name": "second"})
    assert again.status_code == 409
    assert again.json()["error"]["message"] == f"operation {chosen} already exists"
    assert api.get(f"/operations/{chosen}").json()["data"]["name"] == "first"

    for bad in (
        "op_training_x",
        "op_evaluation_20261207_013000_0123abcd",
        "op_training_20261207_013000_0123ABCD",
        "op_training_20261207_013000_0123abcd\n",  # a final newline passed (re.match's "$"): its CSV export crashed
    ):
        refused = api.post("/operations", json={"operation_id": bad})
        assert refused.status_code == 422, bad
        message = refused.json()["error"]["message"]
        assert f"operation id {bad!r} is invalid: use the form op_training_20250610_123456_ab12cd34" in message
    too_long = api.post("/operations", json={"operation_id": "op_training_" + "9" * 60})
    assert too_long.status_code == 422 and "operation_id" in too_long.json()["error"]["message"]
    assert api.post("/operations", json={"operation_type": "training\n"}).status_code == 422
    assert api.get("/operations").json()["data"]["total"] == 1


def test_a_run_registered_after_it_began_is_running_since_then(api: httpx.Client) -> None:
    began = "2026-12-07T01:30:00+00:00"
    created = api.post("/operations", json={"started_at": began, "total_epochs": 5})
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert data["status"] == "running"
    assert data["started_at"] == data["created_at"] == "2026-12-07T01:30:00Z"

    future = api.post("/operations", json={"started_at": "2999-01-01T00:00:00Z"}).json()["data"]
    assert future["started_at"] <= future["updated_at"]  # a time in the future counts as now
    refused = api.post("/operations", json={"started_at": "1800-01-01T00:00:00Z"})
    assert refused.status_code == 422 and "between the years 1900 and 9999" in refused.json()["error"]["message"]


def test_metrics_block_has_the_contract_fields(api: httpx.Client) -> None:
    operation_id = create(api, total_epochs=10)
    for epoch in range(6):
        api.post(f"/operations/{operation_id}/metrics", json={"epoch": epoch, "train_loss": 1 / (epoch + 1)})

    response = api.get(f"/operations/{operation_id}/metrics")

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["operation_id"] == operation_id
    assert data["operation_type"] == "training"
    assert set(data["metrics"]) >= METRICS_FIELDS
    assert data["metrics"]["total_epochs_planned"] == 10
    assert data["metrics"]["total_epochs_completed"] == 6
    assert set(data["metrics"]["recommendation"]) >= {"action", "reason"}
    assert set(data["metrics"]["trend"]) >= {"direction", "percent_change"}


def test_get_operation_can_include_metrics(api: httpx.Client) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, "val_loss": 0.5})

    plain = api.get(f"/operations/{operation_id}").json()["data"]
    full = api.get(f"/operations/{operation_id}", params={"include_metrics": "true"}).json()["data"]

    assert "metrics" not in plain
    assert full["metrics"]["best_epoch"] == 0
    assert full["status"] == "running"


def test_every_write_answers_with_the_cancel_state(api: httpx.Client) -> None:
    operation_id = create(api)
    first = api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, "val_loss": 1.0}).json()
    assert first["cancel_requested"] is False and first["cancel_reason"] is None

    cancel = api.request("DELETE", f"/operations/{operation_id}", json={"reason": "overfitting since epoch 3"})
    assert cancel.status_code == 200
    assert cancel.json()["data"]["cancel_request"]["reason"] == "overfitting since epoch 3"

    for response in (
        api.post(f"/operations/{operation_id}/metrics", json={"epoch": 1, "val_loss": 0.9}),
        api.post(f"/operations/{operation_id}/progress", json={"percentage": 40.0, "phase": "training"}),
        api.post(f"/operations/{operation_id}/heartbeat"),
    ):
        body = response.json()
        assert response.status_code == 200, body
        assert body["cancel_requested"] is True
        assert body["cancel_reason"] == "overfitting since epoch 3"
        assert body["data"]["cancel_requested"] is True

    done = api.post(f"/operations/{operation_id}/complete", json={"status": "cancelled"})
    assert done.json()["data"]["status"] == "cancelled"
    assert done.json()["cancel_requested"] is True


def test_cancel_needs_a_reason_and_a_live_operation(api: httpx.Client) -> None:
    operation_id = create(api)
    missing = api.request("DELETE", f"/operations/{operation_id}")
    assert missing.status_code == 422
    assert "reason" in missing.json()["error"]["message"]
    both = api.request("DELETE", f"/operations/{operation_id}", params={"reason": "q"}, json={"reason": "body"})
    assert both.status_code == 422
    assert both.json()["error"]["message"].startswith("send the reason once: in the body")
    assert api.get(f"/operations/{operation_id}").json()["data"]["status"] == "pending"

    assert api.request("DELETE", f"/operations/{operation_id}", params={"reason": "by query"}).status_code == 200
    again = api.request("DELETE", f"/operations/{operation_id}", json={"reason": "twice"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


def test_complete_with_failure_and_results(api: httpx.Client) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, "val_loss": 0.5})
    assert api.get(f"/operations/{operation_id}/results").status_code == 409

    failed = api.post(f"/operations/{operation_id}/complete", json={"status": "failed", "error": "loader crashed"})
    assert failed.status_code == 200
    results = api.get(f"/operations/{operation_id}/results").json()["data"]
    assert results["status"] == "failed"
    assert results["error"] == "loader crashed"
    assert results["final_epoch"]["val_loss"] == 0.5


@pytest.mark.parametrize(
    ("raw", "field", "expected"),
    [
        ('{"epoch": 0, "val_loss": NaN}', "val_loss", "NaN"),
        ('{"epoch": 0, "val_loss": Infinity}', "val_loss", "Infinity"),
        ('{"epoch": 0, "val_loss": -Infinity}', "val_loss", "-Infinity"),
        ('{"epoch": 0, "val_loss": "NaN"}', "val_loss", "NaN"),
        ('{"epoch": 0, "train_loss": "Infinity"}', "train_loss", "Infinity"),
    ],
)
def test_non_finite_values_round_trip(api: httpx.Client, raw: str, field: str, expected: str) -> None:
    operation_id = create(api)
    assert post_raw(api, f"/operations/{operation_id}/metrics", raw).status_code == 200

    response = api.get(f"/operations/{operation_id}/metrics")
    data = json.loads(response.text, parse_constant=refuse_constant)["data"]["metrics"]
    assert data["epochs"][0][field] == expected
    assert data["is_diverging"] is True


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"epoch": -1}, "epoch"),
        ({"epoch": 1.5}, "epoch"),
        ({"epoch": "3"}, "epoch"),
        ({"val_loss": 0.5}, "epoch"),
        ({"epoch": 0, "val_loss": "low"}, "val_loss"),
        ({"epoch": 0, "val_loss": True}, "val_loss"),
        ({"epoch": 0, "duration": -2}, "duration"),
        ({"epoch": 0, "bad name!": 1.0}, "bad name!"),
        ({"epoch": 0, "metrics": {"f1": "x"}}, "f1"),
        ({"epochs": [{"epoch": 0}, {"epoch": "x"}]}, "epochs.1.epoch"),
        ({"epochs": "no"}, "epochs"),
        ([1, 2], "epoch record"),
    ],
)
def test_bad_metrics_are_refused_and_nothing_is_stored(api: httpx.Client, payload: object, message: str) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, "val_loss": 1.0})

    response = api.post(f"/operations/{operation_id}/metrics", json=payload)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert message in error["message"]
    stored = epochs_of(api, operation_id)
    assert [(e["epoch"], e["val_loss"]) for e in stored] == [(0, 1.0)]


def test_malformed_json_is_a_clear_422(api: httpx.Client) -> None:
    operation_id = create(api)
    response = post_raw(api, f"/operations/{operation_id}/metrics", "{epoch: 0")
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["error"]["message"]


def test_duplicate_epochs_in_one_batch_keep_the_last(api: httpx.Client) -> None:
    operation_id = create(api)
    body = {"epochs": [{"epoch": 0, "val_loss": 1.0}, {"epoch": 0, "val_loss": 0.5}, {"epoch": 1, "val_loss": 0.4}]}
    response = api.post(f"/operations/{operation_id}/metrics", json=body)

    assert response.json()["data"]["accepted"] == 2
    assert [(e["epoch"], e["val_loss"]) for e in epochs_of(api, operation_id)] == [(0, 0.5), (1, 0.4)]


def test_unknown_operation_is_404_everywhere(api: httpx.Client) -> None:
    missing = "op_training_20250101_000000_00000000"
    for response in (
        api.get(f"/operations/{missing}"),
        api.get(f"/operations/{missing}/metrics"),
        api.get(f"/operations/{missing}/results"),
        api.post(f"/operations/{missing}/metrics", json={"epoch": 0}),
        api.post(f"/operations/{missing}/progress", json={"percentage": 1}),
        api.post(f"/operations/{missing}/complete", json={"status": "completed"}),
        api.request("DELETE", f"/operations/{missing}", json={"reason": "x"}),
    ):
        assert response.status_code == 404, response.text
        body = response.json()
        assert body["success"] is False
        assert body["error"]["code"] == "not_found"
        assert missing in body["error"]["message"]


def test_writes_to_a_finished_operation_are_409(api: httpx.Client) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, "val_loss": 1.0})
    api.post(f"/operations/{operation_id}/complete", json={"status": "completed", "result": {"ok": True}})

    for response in (
        api.post(f"/operations/{operation_id}/metrics", json={"epoch": 1, "val_loss": 0.5}),
        api.post(f"/operations/{operation_id}/progress", json={"percentage": 99}),
        api.post(f"/operations/{operation_id}/complete", json={"status": "failed", "error": "x"}),
    ):
        assert response.status_code == 409
        assert "already completed" in response.json()["error"]["message"]
    assert len(epochs_of(api, operation_id)) == 1
    assert api.get(f"/operations/{operation_id}").json()["data"]["result"] == {"ok": True}


def test_oversized_bodies_are_413(api: httpx.Client, settings: Settings) -> None:
    operation_id = create(api)
    too_big = b'{"epochs": [' + b" " * settings.max_request_bytes + b"]}"
    announced = post_raw(api, f"/operations/{operation_id}/metrics", too_big)
    assert announced.status_code == 413
    assert announced.json()["error"]["message"].endswith(
        "bytes (TRAINOPS_MAX_REQUEST_BYTES); send the epochs in smaller batches"
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        yield b'{"epochs": ['
        for _ in range(settings.max_request_bytes // 65536 + 2):
            yield b" " * 65536
        yield b"]}"

    streamed = api.post(
        f"/operations/{operation_id}/metrics", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert epochs_of(api, operation_id) == []
    # routes whose body FastAPI parses into a model must not turn the refusal into a generic 400
    for path in ("/operations", f"/operations/{operation_id}/progress", f"/operations/{operation_id}/complete"):
        refused = api.post(path, content=chunks(), headers={"content-type": "application/json"})
        assert refused.status_code == 413, path
        assert refused.json()["error"]["code"] == "payload_too_large"
        assert refused.json()["error"]["message"].endswith("(TRAINOPS_MAX_REQUEST_BYTES); send less"), path
    assert api.get(f"/operations/{operation_id}").json()["data"]["status"] == "pending"


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        pytest.param(b'{"name": "caf\xe9"}', 422, "the body is not valid JSON: 'utf-8' codec", id="not-utf-8"),
        pytest.param(b'{"notes": ' + b"[" * 5000 + b"]" * 5000 + b"}", 422, "nested too deeply", id="deep"),
        pytest.param(
            b'{"total_epochs": 1' + b"0" * 5000 + b"}", 422, "an integer of more than 4,300 digits", id="long"
        ),
    ],
)
@pytest.mark.parametrize("route", ["create", "update", "metrics"])
def test_a_body_json_cannot_read_is_refused_saying_why(
    api: httpx.Client, raw: bytes, status: int, message: str, route: str
) -> None:
    operation_id = create(api)
    path = {
        "create": "/operations",
        "update": f"/operations/{operation_id}",
        "metrics": f"/operations/{operation_id}/metrics",
    }[route]

    refused = api.request(
        "PATCH" if route == "update" else "POST", path, content=raw, headers={"Content-Type": "application/json"}
    )

    assert refused.status_code in (400, 422), refused.text
    assert message in refused.json()["error"]["message"], refused.text
    assert api.get("/operations").json()["data"]["total"] == 1


def test_etag_makes_unchanged_polls_304(api: httpx.Client) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, "val_loss": 1.0})
    first = api.get(f"/operations/{operation_id}/metrics", params={"since_epoch": 0})
    tag = first.headers["etag"]
    assert tag.startswith('"') and not tag.startswith("W/")

    unchanged = api.get(
        f"/operations/{operation_id}/metrics", params={"since_epoch": 0}, headers={"If-None-Match": tag}
    )
    assert unchanged.status_code == 304
    assert unchanged.content == b""

    other_query = api.get(
        f"/operations/{operation_id}/metrics", params={"since_epoch": 0, "patience": 3}, headers={"If-None-Match": tag}
    )
    assert other_query.status_code == 200

    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 1, "val_loss": 0.5})
    changed = api.get(f"/operations/{operation_id}/metrics", params={"since_epoch": 0}, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    assert [e["epoch"] for e in changed.json()["data"]["metrics"]["epochs"]] == [1]


def test_points_thins_a_long_history_for_display_only(api: httpx.Client) -> None:
    operation_id = create(api, total_epochs=300)
    epochs = [{"epoch": e, "train_loss": 1 / (e + 1), "val_loss": 1 / (e + 1) + 0.2} for e in range(300)]
    epochs[137]["val_loss"] = 9.0  # a spike a chart must show
    epochs[200]["val_loss"] = "NaN"
    api.post(f"/operations/{operation_id}/metrics", json={"epochs": epochs}).raise_for_status()
    url = f"/operations/{operation_id}/metrics"

    whole = api.get(url)
    thin = api.get(url, params={"points": 50})

    full, thinned = whole.json()["data"]["metrics"], thin.json()["data"]["metrics"]
    kept = [record["epoch"] for record in thinned["epochs"]]
    assert (full["thinned"], full["epochs_stored"], len(full["epochs"])) == (False, 300, 300)
    assert thinned["thinned"] is True and thinned["epochs_stored"] == 300
    assert len(kept) <= 50 and kept == sorted(kept)
    assert {0, 137, 200, 299, full["best_epoch"]} <= set(kept)
    assert thinned["epochs"][kept.index(200)] == full["epochs"][200]  # records whole, NaN as sent
    # the diagnosis is over the whole stored history either way
    diagnosis = {name: value for name, value in full.items() if name not in {"epochs", "thinned"}}
    assert {name: thinned[name] for name in diagnosis} == diagnosis
    assert len(epochs_of(api, operation_id)) == 300  # nothing stored changed

    # an ETag per points: the answers differ
    assert thin.headers["etag"] != whole.headers["etag"]
    other = api.get(url, params={"points": 60}, headers={"If-None-Match": thin.headers["etag"]})
    assert other.status_code == 200
    assert api.get(url, params={"points": 50}, headers={"If-None-Match": thin.headers["etag"]}).status_code == 304

    # with since_epoch, the epochs after it are thinned; a short enough answer is whole
    newer = api.get(url, params={"since_epoch": 239, "points": 20}).json()["data"]["metrics"]
    assert newer["thinned"] is True and len(newer["epochs"]) <= 20
    assert {240, 299} <= {record["epoch"] for record in newer["epochs"]}
    assert min(record["epoch"] for record in newer["epochs"]) > 239
    short = api.get(url, params={"since_epoch": 289, "points": 10}).json()["data"]["metrics"]
    assert (short["thinned"], len(short["epochs"])) == (False, 10)

    refused = api.get(url, params={"series": "steps", "points": 50})
    assert refused.status_code == 422 and "points apply to series=epochs" in refused.json()["error"]["message"]


def test_policy_query_parameters_are_validated(api: httpx.Client) -> None:
    operation_id = create(api)
    for epoch, loss in enumerate([1.0, 0.5, 0.5, 0.5, 0.5]):
        api.post(f"/operations/{operation_id}/metrics", json={"epoch": epoch, "val_loss": loss, "val_accuracy": 0.7})

    strict = api.get(f"/operations/{operation_id}/metrics", params={"patience": 2, "stop_rule": "patience"})
    assert strict.json()["data"]["metrics"]["recommendation"]["action"] == "stop_and_restore_best"
    assert strict.json()["data"]["metrics"]["projection"] is None
    lenient = api.get(f"/operations/{operation_id}/metrics", params={"patience": 20, "stop_rule": "patience"})
    assert lenient.json()["data"]["metrics"]["recommendation"]["action"] == "continue"
    projected = api.get(
        f"/operations/{operation_id}/metrics", params={"min_improvement_pct": 5, "noise_allowance": 0}
    ).json()["data"]["metrics"]["projection"]
    assert projected["parameters"]["min_improvement_pct"] == 5
    assert projected["parameters"]["noise_allowance"] == 0
    accuracy = api.get(f"/operations/{operation_id}/metrics", params={"monitor": "val_accuracy"})
    assert accuracy.json()["data"]["metrics"]["monitor"] == "val_accuracy"

    # a flat run: the projection says stop at the last epoch; confirmed by the epoch before it, or alone
    waiting = api.get(f"/operations/{operation_id}/metrics", params={"confirm_epochs": 10}).json()["data"]["metrics"]
    assert waiting["recommendation"]["action"] == "continue"
    assert waiting["projection"]["evidence"]["confirmed"] is False
    assert "not yet confirmed" in waiting["recommendation"]["reason"]
    at_once = api.get(f"/operations/{operation_id}/metrics", params={"confirm_epochs": 1}).json()["data"]["metrics"]
    assert at_once["recommendation"]["action"] == "stop_and_restore_best"
    assert at_once["projection"]["evidence"]["confirmed"] is True

    # query parameters that are not the policy's are left alone
    assert api.get(f"/operations/{operation_id}/metrics", params={"patience": 2, "_": "123"}).status_code == 200


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"patience": 0}, "query.patience: Input should be greater than or equal to 1"),
        ({"patience": 200000}, "query.patience: Input should be less than or equal to 100000"),
        ({"patience": "many"}, "query.patience: Input should be a valid integer"),
        ({"mode": "sideways"}, "query.mode: Input should be 'min', 'max' or 'auto'"),
        ({"window": 2}, "query.window: Input should be greater than or equal to 3"),
        ({"since_epoch": "x"}, "query.since_epoch: Input should be a valid integer"),
        ({"stop_rule": "hopeful"}, "query.stop_rule: Input should be 'projection' or 'patience'"),
        ({"noise_allowance": -1}, "query.noise_allowance: Input should be greater than or equal to 0"),
        ({"confirm_epochs": 0}, "query.confirm_epochs: Input should be greater than or equal to 1"),
        ({"divergence_factor": 1}, "query.divergence_factor: Input should be greater than 1"),
        ({"min_delta": "nan"}, "query.min_delta: Input should be a finite number"),
        ({"check_finite": "perhaps"}, "query.check_finite: Input should be a valid boolean"),
        ({"monitor": ""}, "query.monitor: String should have at least 1 character"),
        ({"points": 9}, "query.points: Input should be greater than or equal to 10"),
        ({"points": 100001}, "query.points: Input should be less than or equal to 100000"),
        ({"points": "all"}, "query.points: Input should be a valid integer"),
    ],
)
def test_bad_policy_query_parameters_are_a_422_naming_the_field(
    api: httpx.Client, params: dict[str, object], message: str
) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, "val_loss": 1.0})
    response = api.get(f"/operations/{operation_id}/metrics", params=params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"].startswith(message)


def test_metrics_refuse_a_monitor_the_run_never_reported(api: httpx.Client) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, "train_loss": 0.9, "val_loss": 1.0, "f1": 0.4})

    response = api.get(f"/operations/{operation_id}/metrics", params={"monitor": "val_los"})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"] == (
        "monitor 'val_los' is not a metric this run has reported; it has reported: f1, train_loss, val_loss. "
        "Pass one of them as monitor (metrics a run reports later become available then)"
    )
    assert error["details"] == {"monitor": "val_los", "reported": ["f1", "train_loss", "val_loss"]}
    replayed = api.post(f"/operations/{operation_id}/diagnose", json={"policy": {"monitor": "val_los"}})
    assert replayed.status_code == 422 and replayed.json()["error"]["message"] == error["message"]
    # a monitor the run reports, and the default one on a run without validation, are judged as before
    assert api.get(f"/operations/{operation_id}/metrics", params={"monitor": "f1"}).status_code == 200
    unvalidated = create(api)
    api.post(f"/operations/{unvalidated}/metrics", json={"epoch": 0, "train_loss": 0.9})
    assert api.get(f"/operations/{unvalidated}/metrics").status_code == 200


def test_list_validates_and_filters(api: httpx.Client) -> None:
    create(api)
    response = api.get("/operations", params={"limit": 1001})
    assert response.status_code == 422
    assert "limit" in response.json()["error"]["message"]
    assert api.get("/operations", params={"status": "exploded"}).status_code == 422
    page = api.get("/operations", params={"status": ["pending", "running"], "limit": 10}).json()["data"]
    assert page["total"] == 1 and page["active"] == 1


def test_create_validates_its_body(api: httpx.Client) -> None:
    for body in (
        {"operation_type": "Training!"},
        {"total_epochs": 0},
        {"total_epochs": "many"},
        {"metadata": "x"},
        {"unexpected": 1},
    ):
        response = api.post("/operations", json=body)
        assert response.status_code == 422, body
    assert api.get("/operations").json()["data"]["total"] == 0


def test_unknown_paths_and_methods_use_the_error_envelope(api: httpx.Client) -> None:
    missing = api.get("/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = api.put("/operations")
    assert wrong.status_code == 405
    assert wrong.json()["success"] is False


def test_health_and_docs(api: httpx.Client, live_server: LiveServer) -> None:
    health = api.get("/health").json()
    assert health["success"] is True and health["data"]["status"] == "ok"
    assert httpx.get(f"{live_server.url}/api/v1/docs").status_code == 200
    schema = httpx.get(f"{live_server.url}/api/v1/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/operations",
        "/api/v1/operations/{operation_id}",
        "/api/v1/operations/{operation_id}/metrics",
        "/api/v1/operations/{operation_id}/progress",
        "/api/v1/operations/{operation_id}/complete",
        "/api/v1/operations/{operation_id}/results",
        "/api/v1/health",
    ):
        assert path in paths
    assert "delete" in paths["/api/v1/operations/{operation_id}"]


def test_bearer_token_protects_the_api(settings: Settings) -> None:
    token = "s3cret-token-0123456789"
    secured = settings.model_copy(update={"api_token": token})
    with LiveServer(secured) as server, httpx.Client(base_url=f"{server.url}/api/v1") as client:
        refused = client.get("/operations")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "TRAINOPS_API_TOKEN" in refused.json()["error"]["message"]
        wrong = client.get("/operations", headers={"Authorization": "Bearer wrong-token-wrong-token"})
        assert wrong.status_code == 401
        assert client.get("/health").status_code == 200
        allowed = client.get("/operations", headers={"Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200


@pytest.mark.parametrize(
    ("path_of", "raw"),
    [
        (lambda op: "/operations", '{"metadata": {"note": "\\ud800"}}'),
        (lambda op: "/operations", '{"metadata": {"symbol": "EUR\\u0000USD"}}'),
        (lambda op: f"/operations/{op}/progress", '{"percentage": 3, "message": "bad \\udfff text"}'),
        (lambda op: f"/operations/{op}/progress", '{"percentage": 3, "context": {"k": ["\\u0000"]}}'),
        (lambda op: f"/operations/{op}/complete", '{"status": "completed", "result": {"\\ud800": 1}}'),
        (lambda op: f"/operations/{op}/complete", '{"status": "failed", "error": "nul \\u0000 here"}'),
        (lambda op: f"/operations/{op}/cancel", '{"reason": "\\ud83d alone"}'),
        (lambda op: f"/operations/{op}/metrics", '{"epoch": 0, "val_loss": 1' + "0" * 5000 + "}"),
    ],
)
def test_text_and_numbers_that_cannot_be_stored_are_refused(api: httpx.Client, path_of: object, raw: str) -> None:
    operation_id = create(api, metadata={"symbol": "EURUSD"})
    response = post_raw(api, path_of(operation_id), raw)  # type: ignore[operator]
    assert response.status_code == 422, response.text
    assert response.json()["success"] is False
    # nothing stored: every read still works and the operation is unchanged
    listed = api.get("/operations")
    assert listed.status_code == 200
    operation = api.get(f"/operations/{operation_id}").json()["data"]
    assert operation["status"] == "pending"
    assert operation["metadata"]["symbol"] == "EURUSD"


def test_non_finite_numbers_in_results_are_kept_as_their_spelling(api: httpx.Client) -> None:
    operation_id = create(api)
    body = '{"status": "completed", "result": {"final_loss": NaN, "ratios": [Infinity, -Infinity, 0.5]}}'
    assert post_raw(api, f"/operations/{operation_id}/complete", body).status_code == 200
    stored = api.get(f"/operations/{operation_id}").json()["data"]["result"]
    assert stored == {"final_loss": "NaN", "ratios": ["Infinity", "-Infinity", 0.5]}
    # valid text beyond the basic plane survives unchanged
    other = create(api, metadata={"note": "rocket \U0001f680 café"})
    assert api.get(f"/operations/{other}").json()["data"]["metadata"]["note"] == "rocket \U0001f680 café"


def test_the_server_answers_while_a_write_waits_for_another_process_lock(api: httpx.Client, settings: Settings) -> None:
    url = settings.resolved_database_url
    if not url.startswith("sqlite"):
        pytest.skip("SQLite's single write lock")
    operation_id = create(api)
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write, holding the lock
    try:
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(api.post, f"/operations/{operation_id}/metrics", json={"epoch": 0, "val_loss": 1.0})
            time.sleep(0.3)
            assert not waiting.done()
            # the write waits in the thread pool, not on the event loop: reads and health still answer
            assert api.get("/health", timeout=5).status_code == 200
            assert api.get(f"/operations/{operation_id}", timeout=5).json()["data"]["epochs_completed"] == 0
            holder.execute("ROLLBACK")
            assert waiting.result(timeout=30).status_code == 200
    finally:
        holder.close()
    assert epochs_of(api, operation_id)[0]["val_loss"] == 1.0


def test_operations_registered_over_the_api_are_external(api: httpx.Client) -> None:
    operation_id = create(api, metadata={"executor": "local", "worker": "host:1"})
    metadata = api.get(f"/operations/{operation_id}").json()["data"]["metadata"]
    assert metadata["executor"] == "external"  # so a server restart's orphan recovery never touches it
    assert metadata["worker"] == "host:1"


# -- POST /operations/{id}/diagnose: a dry run of a policy -------------------------------------------------------

PLATEAU = [1.0] + [0.5] * 14
"""Best at epoch 1, then flat: patience 3 stops at epoch 4, patience 20 never does."""


def plateau_run(api: httpx.Client, total_epochs: int = 30) -> str:
    operation_id = create(api, total_epochs=total_epochs)
    epochs = [{"epoch": epoch, "val_loss": value} for epoch, value in enumerate(PLATEAU)]
    assert api.post(f"/operations/{operation_id}/metrics", json={"epochs": epochs}).status_code == 200
    return operation_id


def test_diagnose_replays_a_policy_over_the_stored_history(api: httpx.Client) -> None:
    operation_id = plateau_run(api)

    response = api.post(f"/operations/{operation_id}/diagnose", json={"policy": patience(3)})

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert set(body) == {"success", "data"}  # a read: no cancel fields
    replay = body["data"]
    assert (replay["stop_epoch"], replay["restore_epoch"], replay["epochs_saved"]) == (4, 1, 25)
    assert replay["stop_reason"]
    assert replay["policy"]["patience"] == 3 and replay["policy"]["monitor"] == "val_loss"
    assert replay["total_epochs_planned"] == 30
    assert replay["epochs_replayed"] == 15
    steps = replay["steps"]
    assert [step["epoch"] for step in steps] == list(range(15))
    assert set(steps[4]) == {"epoch", "action", "reason", "restore_epoch", "rules"}
    assert [step["action"] for step in steps[3:5]] == ["continue", "stop_and_restore_best"]
    assert "plateau" in steps[4]["rules"]

    patient = api.post(f"/operations/{operation_id}/diagnose", json={"policy": patience(20)}).json()["data"]
    assert (patient["stop_epoch"], patient["restore_epoch"], patient["epochs_saved"]) == (None, None, None)
    assert {step["action"] for step in patient["steps"]} == {"continue"}


def test_diagnose_defaults_and_plan_override(api: httpx.Client) -> None:
    operation_id = plateau_run(api)

    for request in ({}, {"content": b""}, {"json": {}}, {"json": {"policy": {}}}):
        response = api.post(f"/operations/{operation_id}/diagnose", **request)  # type: ignore[arg-type]
        assert response.status_code == 200, request
        data = response.json()["data"]
        assert data["policy"] == MonitorPolicy().model_dump(mode="json")  # the default policy
        assert data["total_epochs_planned"] == 30  # the operation's own plan
    longer = api.post(
        f"/operations/{operation_id}/diagnose", json={"policy": patience(3), "total_epochs_planned": 100}
    ).json()["data"]
    assert (longer["total_epochs_planned"], longer["epochs_saved"]) == (100, 95)

    unplanned = plateau_run(api, total_epochs=1)
    # the operation's own plan (1 epoch, exceeded) leaves nothing to save
    assert (
        api.post(f"/operations/{unplanned}/diagnose", json={"policy": patience(3)}).json()["data"]["epochs_saved"] == 0
    )


def test_diagnose_writes_nothing(api: httpx.Client) -> None:
    operation_id = plateau_run(api)
    before = api.get(f"/operations/{operation_id}")
    metrics = api.get(f"/operations/{operation_id}/metrics")

    for policy in (patience(3), patience(20), {"check_finite": False}):
        assert api.post(f"/operations/{operation_id}/diagnose", json={"policy": policy}).status_code == 200

    assert api.get(f"/operations/{operation_id}").json() == before.json()  # status, updated_at, heartbeat, ...
    # the ETag follows the operation's version: unchanged history, unchanged version
    unchanged = api.get(f"/operations/{operation_id}/metrics", headers={"If-None-Match": metrics.headers["etag"]})
    assert unchanged.status_code == 304
    pending = create(api)
    assert api.post(f"/operations/{pending}/diagnose").json()["data"]["epochs_replayed"] == 0
    assert api.get(f"/operations/{pending}").json()["data"]["status"] == "pending"  # not started by a dry run


def test_diagnose_an_unknown_operation_is_404(api: httpx.Client) -> None:
    missing = "op_training_20250101_000000_00000000"
    response = api.post(f"/operations/{missing}/diagnose", json={"policy": {"patience": 3}})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert missing in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"policy": {"patience": 0}}, "policy.patience: Input should be greater than or equal", id="0"),
        pytest.param({"policy": {"bogus": 1}}, "policy.bogus: Extra inputs are not permitted", id="field"),
        pytest.param({"policy": {"mode": "up"}}, "policy.mode: Input should be 'min', 'max' or 'auto'", id="mode"),
        pytest.param({"policy": {"window": 2}}, "policy.window: Input should be greater than or equal", id="window"),
        pytest.param({"policy": "patience=3"}, "policy: Input should be a valid dictionary", id="not-an-object"),
        pytest.param({"total_epochs_planned": 0}, "total_epochs_planned: Input should be greater than", id="plan"),
        pytest.param({"patience": 3}, "patience: Extra inputs are not permitted", id="policy-outside-policy"),
    ],
)
def test_diagnose_refuses_a_bad_policy_with_a_clear_422(api: httpx.Client, body: object, message: str) -> None:
    operation_id = plateau_run(api)
    response = api.post(f"/operations/{operation_id}/diagnose", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert message in error["message"]


def test_diagnose_refuses_malformed_json(api: httpx.Client) -> None:
    operation_id = plateau_run(api)
    response = post_raw(api, f"/operations/{operation_id}/diagnose", "{policy: 3")
    assert response.status_code == 422
    assert response.json()["success"] is False
