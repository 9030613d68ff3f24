"""The OpenAPI document declares the error statuses routes answer, each with the error envelope (api/openapi.py)."""

from __future__ import annotations

import httpx
import pytest

from trainops.api.routes.unavailable import TRAIN_RESOURCES

METHODS = {"get", "post", "put", "patch", "delete"}
WITHOUT_DATABASE = {
    "/api/v1/metrics/definitions",
    "/api/v1/strategies",
    "/api/v1/strategies/validate",
    "/api/v1/data",
    "/api/v1/data/{symbol}/{timeframe}",
}
"""The routes that never read the database (files and constants only): every other one can answer 503."""


def responses_of(api: httpx.Client, method: str, path: str) -> dict[str, dict[str, object]]:
    responses: dict[str, dict[str, object]] = api.get("/openapi.json").json()["paths"][path][method]["responses"]
    return responses


def test_every_error_status_is_declared_with_the_envelope(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]  # never sent: 422 is the envelope
    for path, item in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            if method not in METHODS:
                continue
            where = f"{method.upper()} {path}"
            responses = operation["responses"]
            for status, response in responses.items():
                if status[0] in "45":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (where, status)
                if status in ("204", "304"):
                    assert "content" not in response, (where, status)  # answered without a body
            assert "400" in responses, where  # the Host check
            if operation.get("security"):
                assert "401" in responses, where
            if "{" in path:
                assert "404" in responses, where
            if "requestBody" in operation:
                assert {"413", "422"} <= set(responses), where
    operations = document["paths"]["/api/v1/operations/{operation_id}/metrics"]
    assert "409" in operations["post"]["responses"]  # the run already ended
    assert "415" in operations["post"]["responses"]  # the body must be JSON
    assert "415" not in document["paths"]["/api/v1/operations/{operation_id}/artifacts"]["post"]["responses"]


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        # each answered in a test of its own: test_training_api.py (409 for a taken task_id, 500 for a models
        # directory that is a file, 503 when the cluster does not take the job), test_unavailable_api.py (501)
        pytest.param("post", "/api/v1/training/start", {"409", "500", "501", "503"}, id="training-start"),
        # test_training_api.py: 409 while the training is pending, then while it runs
        pytest.param("get", "/api/v1/training/{task_id}/performance", {"409", "501"}, id="training-performance"),
        # test_artifacts_api.py: 304 to If-None-Match with the file's ETag
        pytest.param("get", "/api/v1/operations/{operation_id}/artifacts/{artifact_path}", {"304"}, id="artifact"),
        # test_models_api.py: a taken name, an unfinished training; a damaged version
        pytest.param("post", "/api/v1/models/save", {"409"}, id="models-save"),
        pytest.param("post", "/api/v1/models/{model_name}/load", {"409"}, id="models-load"),
        pytest.param("post", "/api/v1/models/predict", {"409"}, id="models-predict"),
        # test_database_busy_api.py: a database locked past the busy timeout
        pytest.param("post", "/api/v1/operations", {"503"}, id="database"),
    ],
)
def test_routes_declare_the_statuses_their_services_answer(
    api: httpx.Client, method: str, path: str, statuses: set[str]
) -> None:
    assert statuses <= set(responses_of(api, method, path))


def test_every_train_route_declares_the_501_of_a_server_without_the_extra(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    train_paths = [path for path in paths if path.split("/")[3] in TRAIN_RESOURCES]
    assert len(train_paths) >= 10  # training, strategies, models, data
    for path in train_paths:
        for method in paths[path].keys() & METHODS:
            assert "501" in paths[path][method]["responses"], f"{method.upper()} {path}"
    assert "501" not in responses_of(api, "get", "/api/v1/operations")


def test_every_route_that_reads_the_database_declares_its_503(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert paths.keys() >= WITHOUT_DATABASE  # no stale name here
    for path, item in paths.items():
        if not path.startswith("/api/v1/"):
            continue
        for method in item.keys() & METHODS:
            declared = "503" in item[method]["responses"]
            assert declared is (path not in WITHOUT_DATABASE), f"{method.upper()} {path}"


def test_a_strategy_named_after_no_users_home_is_refused_not_a_server_error(api: httpx.Client) -> None:
    # Schemathesis found it: Path("~x").expanduser() raised RuntimeError, a 500
    answer = api.post("/training/start", json={"strategy": "~no_such_user_here"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_input"
