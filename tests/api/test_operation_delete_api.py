"""``DELETE /api/v1/operations/{id}?purge=true``: an ended run removed with its history and files, on SQLite and
PostgreSQL, over a real HTTP server; without ``purge`` the route still cancels."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import create_engine, func, select

from trainops.settings import Settings
from trainops.store.tables import epoch_metrics, operation_tags, operations, step_metrics


def create(api: httpx.Client) -> str:
    response = api.post("/operations", json={"operation_type": "training", "total_epochs": 10})
    assert response.status_code == 201, response.text
    operation_id: str = response.json()["data"]["operation_id"]
    return operation_id


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def recorded_run(api: httpx.Client, epochs: int = 6) -> str:
    """A run with epochs, steps, progress and two artifacts, still running."""
    operation_id = create(api)
    ok(
        api.post(
            f"/operations/{operation_id}/metrics",
            json={"epochs": [{"epoch": e, "val_loss": 1 / (e + 1)} for e in range(epochs)]},
        )
    )
    ok(
        api.post(
            f"/operations/{operation_id}/steps", json={"steps": [{"step": s, "loss": 1 / (s + 1)} for s in range(25)]}
        )
    )
    ok(api.post(f"/operations/{operation_id}/progress", json={"percentage": 50.0, "message": "half way"}))
    for path, content in (("checkpoints/best.pt", b"w" * 2048), ("notes.txt", b"lr 1e-3")):
        response = api.post(f"/operations/{operation_id}/artifacts", params={"path": path}, content=content)
        assert response.status_code in (200, 201), response.text
    return operation_id


def rows_of(database_url: str, operation_id: str, seq: int) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return {
                "operations": connection.execute(
                    select(func.count()).select_from(operations).where(operations.c.id == operation_id)
                ).scalar_one(),
                "epoch_metrics": connection.execute(
                    select(func.count()).select_from(epoch_metrics).where(epoch_metrics.c.operation_seq == seq)
                ).scalar_one(),
                "step_metrics": connection.execute(
                    select(func.count()).select_from(step_metrics).where(step_metrics.c.operation_seq == seq)
                ).scalar_one(),
            }
    finally:
        engine.dispose()


def seq_of(database_url: str, operation_id: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            seq: int = connection.execute(select(operations.c.seq).where(operations.c.id == operation_id)).scalar_one()
            return seq
    finally:
        engine.dispose()


def test_purge_removes_every_row_and_file_of_the_run_and_nothing_else(
    api: httpx.Client, settings: Settings, database_url: str
) -> None:
    operation_id = recorded_run(api)
    other = recorded_run(api, epochs=3)
    # a cancel request, then the end the trainer gives it: both recorded on the operation's row
    ok(api.request("DELETE", f"/operations/{operation_id}", json={"reason": "enough"}))
    ok(api.post(f"/operations/{operation_id}/complete", json={"status": "cancelled"}))
    log = settings.home / "logs" / f"{operation_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("epoch 0 ...\n")
    seq = seq_of(database_url, operation_id)
    assert rows_of(database_url, operation_id, seq) == {"operations": 1, "epoch_metrics": 6, "step_metrics": 25}
    files = settings.resolved_artifacts_dir / operation_id
    assert (files / "checkpoints" / "best.pt").is_file()

    deleted = ok(api.delete(f"/operations/{operation_id}", params={"purge": "true"}))

    assert deleted == {
        "operation_id": operation_id,
        "deleted": True,
        "status": "cancelled",
        "epochs": 6,
        "steps": 25,
        "artifacts": 2,
        "artifact_bytes": 2048 + 7,
        "model_versions": 0,
        "worker_log": True,
        "models_kept": [],
        "model_version_kept": None,
    }
    assert rows_of(database_url, operation_id, seq) == {"operations": 0, "epoch_metrics": 0, "step_metrics": 0}
    assert not files.exists() and not log.exists()
    assert [p.name for p in settings.resolved_artifacts_dir.iterdir()] == [other]  # nothing left behind
    for path in (f"/operations/{operation_id}", f"/operations/{operation_id}/metrics"):
        assert api.get(path).status_code == 404
    assert api.get(f"/operations/{operation_id}/artifacts").status_code == 404
    # a trainer still reporting, or a late artifact, finds no run: nothing comes back to life
    assert api.post(f"/operations/{operation_id}/metrics", json={"epoch": 9, "val_loss": 0.1}).status_code == 404
    late = api.post(f"/operations/{operation_id}/artifacts", params={"path": "late.txt"}, content=b"x")
    assert late.status_code == 404 and not files.exists()
    listed = ok(api.get("/operations"))
    assert [item["operation_id"] for item in listed["items"]] == [other]

    # the other run is whole
    other_seq = seq_of(database_url, other)
    assert rows_of(database_url, other, other_seq) == {"operations": 1, "epoch_metrics": 3, "step_metrics": 25}
    assert len(ok(api.get(f"/operations/{other}/artifacts"))) == 2

    again = api.delete(f"/operations/{operation_id}", params={"purge": "true"})
    assert again.status_code == 404 and again.json()["error"]["code"]


def test_a_pending_or_running_run_is_refused_and_keeps_everything(api: httpx.Client, database_url: str) -> None:
    running = recorded_run(api)
    pending = create(api)
    for operation_id, status in ((running, "running"), (pending, "pending")):
        refused = api.delete(f"/operations/{operation_id}", params={"purge": "true"})
        assert refused.status_code == 409, refused.text
        message = refused.json()["error"]["message"]
        assert f"is {status}" in message
        assert "cancel it first (DELETE /operations/" in message and "then delete it once it ended" in message

    seq = seq_of(database_url, running)
    assert rows_of(database_url, running, seq) == {"operations": 1, "epoch_metrics": 6, "step_metrics": 25}
    assert len(ok(api.get(f"/operations/{running}/artifacts"))) == 2
    assert ok(api.get(f"/operations/{running}"))["status"] == "running"

    # asked to stop, it is still running until its trainer ends it: still refused
    ok(api.request("DELETE", f"/operations/{running}", json={"reason": "stop"}))
    assert api.delete(f"/operations/{running}", params={"purge": "true"}).status_code == 409
    ok(api.post(f"/operations/{running}/complete", json={"status": "cancelled"}))
    assert ok(api.delete(f"/operations/{running}", params={"purge": "true"}))["epochs"] == 6

    # a pending run is cancelled at once, then deleted
    ok(api.delete(f"/operations/{pending}", params={"reason": "never mind"}))
    assert ok(api.delete(f"/operations/{pending}", params={"purge": "true"}))["status"] == "cancelled"


def test_without_purge_delete_cancels_as_before(api: httpx.Client) -> None:
    operation_id = recorded_run(api)
    answer = api.request("DELETE", f"/operations/{operation_id}", json={"reason": "overfitting"})
    body = answer.json()
    assert answer.status_code == 200 and body["cancel_requested"] is True
    assert body["data"]["status"] == "running" and body["data"]["cancel_request"]["reason"] == "overfitting"
    assert api.delete(f"/operations/{operation_id}").status_code == 422  # a cancel needs a reason


def test_purge_with_a_reason_is_refused(api: httpx.Client) -> None:
    operation_id = create(api)
    for extra in ({"params": {"purge": "true", "reason": "x"}}, {"params": {"purge": "true"}, "json": {"reason": "x"}}):
        refused = api.request("DELETE", f"/operations/{operation_id}", **extra)  # type: ignore[arg-type]
        assert refused.status_code == 422, refused.text
        assert "purge=true deletes the run and takes no reason" in refused.json()["error"]["message"]
    assert ok(api.get(f"/operations/{operation_id}"))["status"] == "pending"  # nothing happened


def test_unknown_operation_is_404(api: httpx.Client) -> None:
    response = api.delete("/operations/op_training_20250101_000000_deadbeef", params={"purge": "true"})
    assert response.status_code == 404
    assert "no operation" in response.json()["error"]["message"]


def test_the_openapi_document_says_both_meanings(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    route = document["paths"]["/api/v1/operations/{operation_id}"]["delete"]
    purge = next(p for p in route["parameters"] if p["name"] == "purge")
    assert purge["in"] == "query" and purge["schema"]["type"] == "boolean" and purge["schema"]["default"] is False
    assert "cancel" in route["description"].lower() and "purge=true" in route["description"]
    answers = route["responses"]["200"]["content"]["application/json"]["schema"]
    named = {ref["$ref"].rsplit("/", 1)[-1] for ref in answers["anyOf"]}
    assert any("DeletedOperation" in name for name in named) and any("Operation" in name for name in named)
    assert {"404", "409"} <= set(route["responses"])
    for name in named:
        assert name in document["components"]["schemas"]


def test_purge_removes_the_runs_tags(api: httpx.Client, database_url: str) -> None:
    response = api.post("/operations", json={"operation_type": "training", "tags": ["baseline", "lr-sweep"]})
    assert response.status_code == 201, response.text
    operation_id = response.json()["data"]["operation_id"]
    ok(api.post(f"/operations/{operation_id}/complete", json={"status": "completed"}))
    seq = seq_of(database_url, operation_id)
    engine = create_engine(database_url)
    count = select(func.count()).select_from(operation_tags).where(operation_tags.c.operation_seq == seq)
    try:
        with engine.connect() as connection:
            assert connection.execute(count).scalar_one() == 2
        ok(api.delete(f"/operations/{operation_id}", params={"purge": "true"}))
        with engine.connect() as connection:
            assert connection.execute(count).scalar_one() == 0
    finally:
        engine.dispose()
    assert ok(api.get("/operations", params={"tag": "baseline"}))["items"] == []
