"""Runs people can find again, over a real HTTP server: name, tags and notes in ``POST /operations``,
``POST /training/start`` and ``PATCH /operations/{id}``; ``GET /operations`` refusing a query parameter it does not
know (instead of ignoring it), its filters and sorts in the query string, and cursor pages of ``GET /models``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.test_operations_api import create
from trainops.settings import Settings
from trainops.store import create_database_engine
from trainops.store.models import ModelRecord, ModelStore


def listed(api: httpx.Client, **params: Any) -> list[str]:
    response = api.get("/operations", params=params)
    assert response.status_code == 200, response.text
    return [item["operation_id"] for item in response.json()["data"]["items"]]


def refused(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    message: str = error["message"]
    return message


def test_unknown_query_parameters_are_refused_naming_them(api: httpx.Client) -> None:
    create(api, metadata={"strategy": "momentum"})
    response = api.get("/operations", params={"strategy": "momentum", "stratgy": "x", "colour": "red"})
    message = refused(response)
    assert "'colour', 'stratgy'" in message and "strategy" in message and "cursor" in message
    assert response.json()["error"]["details"]["unknown"] == ["colour", "stratgy"]
    assert "tag" in response.json()["error"]["details"]["accepted"]
    # the filter that used to be ignored now filters
    assert len(listed(api, strategy="momentum")) == 1
    assert listed(api, strategy="other") == []


def test_create_and_patch_name_tags_and_notes(api: httpx.Client) -> None:
    operation_id = create(api, name="lr sweep", tags=["a", "b", "a"], notes="why", metadata={"mlflow_run_id": "6f"})
    operation = api.get(f"/operations/{operation_id}").json()["data"]
    assert (operation["name"], operation["tags"], operation["notes"]) == ("lr sweep", ["a", "b"], "why")

    patched = api.patch(f"/operations/{operation_id}", json={"name": None, "add_tags": ["c"], "remove_tags": ["a"]})
    assert patched.status_code == 200, patched.text
    data = patched.json()["data"]
    assert (data["name"], data["tags"], data["notes"]) == (None, ["b", "c"], "why")
    assert data["metadata"]["mlflow_run_id"] == "6f"  # untouched: metadata changes only through "metadata"

    patched = api.patch(f"/operations/{operation_id}", json={"notes": None, "metadata": {"mlflow_run_id": None}})
    data = patched.json()["data"]
    assert data["notes"] is None and "mlflow_run_id" not in data["metadata"] and data["tags"] == ["b", "c"]

    assert "name" in refused(api.patch(f"/operations/{operation_id}", json={"name": "a\u0000b"}))
    # a control character at an end is refused too, not stripped away (the schema's pattern refuses it there)
    for name in ("\U0003b305\u001f", "\u001csweep", "sweep\n"):
        assert "control character" in refused(api.patch(f"/operations/{operation_id}", json={"name": name}))
    assert api.get(f"/operations/{operation_id}").json()["data"]["name"] is None  # nothing stored
    assert "tag" in refused(api.post("/operations", json={"tags": ["ok", "not ok"]}))
    assert "128" in refused(api.post("/operations", json={"name": "n" * 129}))
    assert "nothing to change" in refused(api.patch(f"/operations/{operation_id}", json={}))
    assert "metadata" in refused(api.patch(f"/operations/{operation_id}", json={"metadata": None}))


def test_filters_and_sorts_in_the_query_string(api: httpx.Client) -> None:
    tagged = create(api, name="Alpha", tags=["x", "y"], metadata={"symbol": "EURUSD", "timeframe": "1h"})
    other = create(api, name="beta", tags=["y"], notes="needle here")
    for operation_id, losses in ((tagged, [0.5, 0.2]), (other, [0.4])):
        epochs = [{"epoch": epoch, "val_loss": loss} for epoch, loss in enumerate(losses)]
        assert api.post(f"/operations/{operation_id}/metrics", json={"epochs": epochs}).status_code == 200

    assert listed(api, tag=["y", "x"]) == [tagged]
    assert listed(api, tag="y") == [other, tagged]
    assert listed(api, name="alpha") == [tagged]
    assert listed(api, q="NEEDLE") == [other]
    assert listed(api, symbol="EURUSD", timeframe="1h") == [tagged]
    assert listed(api, sort="best:val_loss") == [tagged, other]
    assert listed(api, sort="best:val_loss", order="desc") == [other, tagged]
    assert listed(api, status="running", operation_type="training", active_only="true") == [other, tagged]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert listed(api, created_before=future, created_after="2020-01-01T00:00:00Z") == [other, tagged]

    first = api.get("/operations", params={"limit": 1, "include": "best", "sort": "best:val_loss"}).json()["data"]
    assert first["items"][0]["best"]["value"] == pytest.approx(0.2) and first["next_cursor"]
    second = api.get(
        "/operations", params={"limit": 1, "include": "best", "sort": "best:val_loss", "cursor": first["next_cursor"]}
    ).json()["data"]
    assert [item["operation_id"] for item in second["items"]] == [other] and second["next_cursor"] is None

    assert "best:<metric>" in refused(api.get("/operations", params={"sort": "newest"}))
    assert "handed out" in refused(api.get("/operations", params={"cursor": "x"}))
    refused(api.get("/operations", params={"order": "sideways"}))
    refused(api.get("/operations", params={"created_after": "yesterday"}))
    assert "time zone" in refused(api.get("/operations", params={"created_after": "2026-01-01T00:00:00"}))


def test_the_openapi_document_describes_the_new_fields(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    create_body = schemas["CreateOperationRequest"]["properties"]
    assert {"name", "tags", "notes"} <= set(create_body)
    update_body = schemas["UpdateOperationRequest"]["properties"]
    assert {"name", "tags", "add_tags", "remove_tags", "notes", "metadata"} <= set(update_body)
    parameters = {p["name"] for p in document["paths"]["/api/v1/operations"]["get"]["parameters"]}
    assert {"tag", "q", "sort", "order", "cursor", "created_after", "strategy"} <= parameters


def test_models_list_pages_with_a_cursor_stable_while_models_are_saved(api: httpx.Client, settings: Settings) -> None:
    engine = create_database_engine(settings.database_url)
    store = ModelStore(engine)
    start = datetime(2026, 12, 1, tzinfo=UTC)

    def save(index: int, saved_at: datetime) -> None:
        store.insert(
            ModelRecord(
                model_id=0,
                name=f"model-{index}",
                version_path=f"mr/v{index}",
                strategy="mean_reversion",
                symbol="EURUSD",
                timeframe="1h",
                source_operation=None,
                description=None,
                metrics={},
                size_bytes=0,
                created_at=saved_at,
                saved_at=saved_at,
            )
        )

    try:
        for index in range(5):  # two saved at the same moment: the tie is broken by id
            save(index, start + timedelta(minutes=min(index, 3)))
        everything = api.get("/models").json()
        assert everything["count"] == 5 and everything["next_cursor"] is None
        seen: list[str] = []
        page = api.get("/models", params={"limit": 2}).json()
        added = 5
        while True:
            assert page["count"] == len(page["models"]) <= 2
            seen += [model["model_name"] for model in page["models"]]
            save(added, start + timedelta(hours=1))  # newer than every listed one
            added += 1
            if page["next_cursor"] is None:
                break
            page = api.get("/models", params={"limit": 2, "cursor": page["next_cursor"]}).json()
        assert seen == ["model-4", "model-3", "model-2", "model-1", "model-0"]
        assert "handed out" in refused(api.get("/models", params={"limit": 2, "cursor": "zzz"}))
        other_list = api.get("/models", params={"limit": 1}).json()["next_cursor"]
        message = refused(api.get("/models", params={"limit": 1, "strategy": "x", "cursor": other_list}))
        assert "other filters" in message
    finally:
        engine.dispose()


def test_training_start_takes_a_name_tags_and_notes(api: httpx.Client) -> None:
    """The body is checked like POST /operations: a bad tag is a 422 before anything starts (the accepted case
    trains: tests/cli/test_find_runs_cli.py starts one with --name and --tag)."""
    assert "tag" in refused(api.post("/training/start", json={"tags": ["no spaces please"]}))
    assert "128" in refused(api.post("/training/start", json={"name": "n" * 200}))
