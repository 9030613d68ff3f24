"""HTTP as the protocol says, over a real server: ``Allow`` on 405, weak ``If-None-Match``, JSON-only writes, strict
numbers, an OpenAPI document whose every ``$ref`` resolves, and error answers that keep the server's paths to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live_server import LiveServer
from trainops.settings import Settings

JSON_WRITE_METHODS = ("post", "put", "patch", "delete")


def create(api: httpx.Client) -> str:
    response = api.post("/operations", json={"operation_type": "training"})
    assert response.status_code == 201, response.text
    operation_id: str = response.json()["data"]["operation_id"]
    return operation_id


def error_of(response: httpx.Response, status_code: int) -> dict[str, Any]:
    assert response.status_code == status_code, response.text
    body = response.json()
    assert body["success"] is False
    error: dict[str, Any] = body["error"]
    return error


def stored_epochs(api: httpx.Client, operation_id: str) -> list[dict[str, Any]]:
    epochs: list[dict[str, Any]] = api.get(f"/operations/{operation_id}/metrics").json()["data"]["metrics"]["epochs"]
    return epochs


# -- 405 carries Allow --------------------------------------------------------------------------------------------


def test_a_405_names_every_method_the_path_accepts(api: httpx.Client) -> None:
    operation_id = create(api)

    response = api.post(f"/operations/{operation_id}", json={})

    error = error_of(response, 405)
    assert error["code"] == "method_not_allowed"
    # three routes share this path; Starlette alone would name only the first
    assert set(response.headers["Allow"].split(", ")) == {"GET", "PATCH", "DELETE"}
    assert "it accepts GET, PATCH, DELETE" in error["message"]


def test_a_405_on_a_path_of_one_route(api: httpx.Client) -> None:
    response = api.put("/health")

    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET"


# -- weak If-None-Match -------------------------------------------------------------------------------------------


def conditional_headers(etag: str) -> list[str]:
    """``If-None-Match`` values that must all answer 304 for ``etag`` (RFC 9110: weak comparison)."""
    return [etag, f"W/{etag}", f'"other", W/{etag}', f'W/"other",{etag}', "*", f'"a" ,  W/{etag}']


def test_metrics_answer_304_to_a_weak_or_listed_etag(api: httpx.Client) -> None:
    operation_id = create(api)
    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, "val_loss": 0.5})
    etag = api.get(f"/operations/{operation_id}/metrics").headers["ETag"]

    for header in conditional_headers(etag):
        response = api.get(f"/operations/{operation_id}/metrics", headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.headers["ETag"] == etag
    for header in ['"other"', f'W/{etag[:-2]}"', f'"{etag}"']:
        assert api.get(f"/operations/{operation_id}/metrics", headers={"If-None-Match": header}).status_code == 200


def test_an_artifact_download_answers_304_to_a_weak_or_listed_etag(api: httpx.Client) -> None:
    operation_id = create(api)
    upload = api.post(
        f"/operations/{operation_id}/artifacts",
        params={"path": "notes.txt"},
        content=b"hello",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 201, upload.text
    etag = api.get(f"/operations/{operation_id}/artifacts/notes.txt").headers["ETag"]

    for header in conditional_headers(etag):
        response = api.get(f"/operations/{operation_id}/artifacts/notes.txt", headers={"If-None-Match": header})
        assert response.status_code == 304, header
    assert api.get(f"/operations/{operation_id}/artifacts/notes.txt", headers={"If-None-Match": '"x"'}).content == (
        b"hello"
    )


# -- writes take JSON only ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_metrics_post_that_is_not_json_is_refused_and_stores_nothing(
    api: httpx.Client, content_type: str | None
) -> None:
    operation_id = create(api)
    headers = {"Content-Type": content_type} if content_type else {}  # httpx adds none to raw bytes

    response = api.post(
        f"/operations/{operation_id}/metrics", content=b'{"epoch": 0, "val_loss": 0.5}', headers=headers
    )

    error = error_of(response, 415)

    assert error["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]
    assert stored_epochs(api, operation_id) == []


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/x+json"]
)
def test_json_with_parameters_or_a_json_suffix_is_accepted(api: httpx.Client, content_type: str) -> None:
    operation_id = create(api)

    response = api.post(
        f"/operations/{operation_id}/metrics",
        content=b'{"epoch": 0, "val_loss": 0.5}',
        headers={"Content-Type": content_type},
    )

    assert response.status_code == 200, response.text
    assert [epoch["epoch"] for epoch in stored_epochs(api, operation_id)] == [0]


def test_a_delete_without_a_body_needs_no_content_type(api: httpx.Client) -> None:
    operation_id = create(api)

    response = api.delete(f"/operations/{operation_id}", params={"reason": "not needed"})

    assert response.status_code == 200, response.text
    assert response.json()["data"]["status"] == "cancelled"


def test_a_delete_with_a_body_must_send_it_as_json(api: httpx.Client) -> None:
    first, second = create(api), create(api)

    refused = api.request(
        "DELETE", f"/operations/{first}", content=b'{"reason": "x"}', headers={"Content-Type": "text/plain"}
    )
    accepted = api.request("DELETE", f"/operations/{second}", json={"reason": "not needed"})

    assert error_of(refused, 415)["code"] == "unsupported_media_type"
    assert api.get(f"/operations/{first}").json()["data"]["status"] == "pending"
    assert accepted.status_code == 200, accepted.text


def test_every_json_write_route_refuses_a_text_body(api: httpx.Client) -> None:
    """Every route whose documented body is JSON, as a cross-site form or text POST would reach it."""
    document = api.get("/openapi.json").json()
    checked = []
    for path, item in document["paths"].items():
        for method in JSON_WRITE_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            content = operation.get("requestBody", {}).get("content", {"application/json": {}})
            if "application/json" not in content:
                continue  # a raw upload (artifacts, model versions): it has its own type
            url = path.removeprefix("/api/v1").replace("{", "").replace("}", "")  # any value: refused before
            response = api.request(method.upper(), url, content=b"{}", headers={"Content-Type": "text/plain"})
            assert response.status_code == 415, f"{method.upper()} {path}: {response.text}"
            checked.append(f"{method.upper()} {path}")
    assert "POST /api/v1/operations/{operation_id}/metrics" in checked
    assert "PATCH /api/v1/operations/{operation_id}" in checked
    assert "POST /api/v1/operations/{operation_id}/heartbeat" in checked  # no body documented: none but JSON


# -- numbers sent as text -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1_000", "0x10", "1e999", "\u0661\u0662", "1,5"])
@pytest.mark.parametrize("field", ["val_loss", "f1"])
def test_a_number_as_text_must_be_plain_decimal(api: httpx.Client, field: str, value: str) -> None:
    operation_id = create(api)

    error = error_of(api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, field: value}), 422)

    assert field in error["message"]
    assert repr(value) in error["message"]
    assert stored_epochs(api, operation_id) == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        pytest.param("/metrics", {"epoch": 0, "val_loss": 0.5, "duration": "1_0"}, "duration", id="epoch-duration"),
        pytest.param("/progress", {"percentage": "5_0"}, "percentage", id="progress-percentage"),
        pytest.param("/progress", {"percentage": 5, "epoch": "3_0"}, "epoch", id="progress-epoch"),
        pytest.param("/diagnose", {"policy": {"min_delta": "1_000"}}, "min_delta", id="diagnose-policy"),
    ],
)
def test_number_fields_take_json_numbers_not_text(
    api: httpx.Client, path: str, body: dict[str, Any], field: str
) -> None:
    operation_id = create(api)

    error = error_of(api.post(f"/operations/{operation_id}{path}", json=body), 422)

    assert f"{field}: " in error["message"] and "is text; send a JSON number" in error["message"]
    assert api.get(f"/operations/{operation_id}").json()["data"]["status"] == "pending"  # nothing was written


def test_a_policy_in_the_query_must_be_plain_decimal(api: httpx.Client) -> None:
    operation_id = create(api)

    refused = api.get(f"/operations/{operation_id}/metrics", params={"min_delta": "1_000"})
    plain = api.get(f"/operations/{operation_id}/metrics", params={"min_delta": "1e-3", "patience": "7"})

    assert "min_delta: '1_000' is not a number in plain decimal notation" in error_of(refused, 422)["message"]
    assert plain.status_code == 200, plain.text


def test_the_documented_spellings_are_still_read(api: httpx.Client) -> None:
    operation_id = create(api)
    record = {"epoch": 0, "train_loss": "NaN", "val_loss": "-Infinity", "learning_rate": "1e-3", "f1": "0.75"}

    assert api.post(f"/operations/{operation_id}/metrics", json=record).status_code == 200

    (stored,) = stored_epochs(api, operation_id)
    assert (stored["train_loss"], stored["val_loss"], stored["learning_rate"]) == ("NaN", "-Infinity", 0.001)
    assert stored["metrics"]["f1"] == 0.75


# -- the OpenAPI document -----------------------------------------------------------------------------------------


def resolve(document: dict[str, Any], reference: str) -> Any:
    assert reference.startswith("#/"), reference
    node: Any = document
    for part in reference[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"dangling $ref {reference}"
        node = node[part]
    return node


def test_every_ref_in_the_openapi_document_resolves(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    references: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    references.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)

    assert len(references) > 50
    for reference in references:
        resolve(document, reference)
    body = document["paths"]["/api/v1/operations/{operation_id}/metrics"]["post"]["requestBody"]
    assert "#/components/schemas/EpochRecord" in str(body)


def test_bearer_auth_is_declared_on_the_routes_that_check_it(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()

    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    paths = document["paths"]
    assert paths["/api/v1/operations"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/api/v1/operations/{operation_id}/metrics"]["post"]["security"] == [{"bearerAuth": []}]
    assert "security" not in paths["/api/v1/health"]["get"]


# -- error answers keep the server's paths to it ------------------------------------------------------------------


@pytest.fixture
def trained_server(training_settings: Settings) -> Any:
    with LiveServer(training_settings) as server, httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as api:
        yield api


def folders(settings: Settings) -> list[str]:
    return [str(settings.resolved_data_dir), str(settings.resolved_strategies_dir), str(settings.home)]


def test_a_missing_data_file_is_named_in_its_folder_not_by_its_path(
    trained_server: httpx.Client, training_settings: Settings
) -> None:
    response = trained_server.post("/training/start", json={"symbol": "GBPUSD"})

    error = error_of(response, 422)
    assert "in the data folder (TRAINOPS_DATA_DIR)" in error["message"]
    for folder in folders(training_settings):
        assert folder not in response.text


def test_an_unknown_strategy_is_named_without_the_strategies_path(
    trained_server: httpx.Client, training_settings: Settings
) -> None:
    response = trained_server.post("/training/start", json={"strategy": "no_such_strategy"})

    error = error_of(response, 404)
    assert "in the strategies folder (TRAINOPS_STRATEGIES_DIR)" in error["message"]
    assert "available: mean_reversion" in error["message"]
    for folder in folders(training_settings):
        assert folder not in response.text


def test_missing_model_files_are_named_in_the_models_folder(
    trained_server: httpx.Client, training_settings: Settings
) -> None:
    operation_id = create(trained_server)
    finished = trained_server.post(
        f"/operations/{operation_id}/complete", json={"result": {"model_version": "mean_reversion/EURUSD_1h/v9"}}
    )
    assert finished.status_code == 200, finished.text

    response = trained_server.post("/models/save", json={"task_id": operation_id, "model_name": "gone"})

    error = error_of(response, 409)
    assert "mean_reversion/EURUSD_1h/v9 in the models folder (TRAINOPS_MODELS_DIR)" in error["message"]
    assert str(training_settings.resolved_models_dir) not in response.text
    assert str(Path(training_settings.resolved_models_dir).resolve()) not in response.text
