"""What the OpenAPI document states, the server does: each case is a gap Schemathesis found between the two, checked
through a real server and against the document itself, so that neither side drifts back."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.api.test_protocol_api import create, error_of, stored_epochs


def schema_of(api: httpx.Client, name: str) -> dict[str, Any]:
    schema: dict[str, Any] = api.get("/openapi.json").json()["components"]["schemas"][name]
    return schema


def parameter_of(api: httpx.Client, path: str, method: str, name: str) -> dict[str, Any]:
    parameters = api.get("/openapi.json").json()["paths"][path][method]["parameters"]
    (parameter,) = [parameter for parameter in parameters if parameter["name"] == name]
    schema: dict[str, Any] = parameter["schema"]
    return schema


# -- no NUL in any text of a body ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param({"operation_type": "training", "notes": "a\u0000b"}, "body.notes", id="field"),
        pytest.param({"metadata": {"parameters": {"lr\u0000": 1}}}, "a key of body.metadata.parameters", id="key"),
        pytest.param(
            {"metadata": {"parameters": {"grid": [["x", "\u0000"]]}}}, "body.metadata.parameters.grid[0][1]", id="deep"
        ),
    ],
)
def test_a_nul_anywhere_in_a_body_is_refused_naming_where(api: httpx.Client, body: dict[str, Any], where: str) -> None:
    error = error_of(api.post("/operations", json=body), 422)

    assert error["message"].startswith(f"{where} contains a NUL character")
    assert api.get("/operations").json()["data"]["total"] == 0


@pytest.mark.parametrize(
    ("method", "path", "params", "where"),
    [
        pytest.param("GET", "/operations/{id}%00", {}, "path.operation_id", id="id"),
        pytest.param("GET", "/operations/op_x%00/metrics", {}, "path.operation_id", id="unknown-id"),
        pytest.param("DELETE", "/operations/{id}", {"reason": "a\u0000b"}, "query.reason", id="reason"),
        pytest.param("GET", "/operations", {"q": "a\u0000"}, "query.q", id="search"),
        pytest.param("GET", "/operations", {"name": "a\u0000b"}, "query.name", id="name"),
        pytest.param("GET", "/operations", {"tag": ["x", "a\u0000"]}, "query.tag", id="second-tag"),
        pytest.param("GET", "/models/x%00y", {}, "path.model_name", id="model-name"),
        pytest.param("GET", "/data/EURUSD%00/1h", {}, "path.symbol", id="data-symbol"),
        pytest.param("GET", "/operations/{id}/artifacts/a%00b", {}, "path.artifact_path", id="artifact-path"),
    ],
)
def test_a_nul_in_a_path_or_query_parameter_is_refused_naming_it(
    api: httpx.Client, method: str, path: str, params: dict[str, Any], where: str
) -> None:
    operation_id = create(api)

    error = error_of(api.request(method, path.format(id=operation_id), params=params), 422)

    assert error["message"].startswith(f"{where} contains a NUL character (%00)")
    assert api.get(f"/operations/{operation_id}").json()["data"]["status"] == "pending"


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(api: httpx.Client) -> None:
    created = api.post("/operations", json={"operation_type": "training", "notes": "C:\\u0000"})

    assert created.status_code == 201, created.text
    assert created.json()["data"]["notes"] == "C:\\u0000"


def test_the_document_says_text_holds_no_nul(api: httpx.Client) -> None:
    notes = schema_of(api, "CreateOperationRequest")["properties"]["notes"]["anyOf"][0]
    parameters = schema_of(api, "OperationMetadata")["properties"]["parameters"]
    json_value = schema_of(api, "JsonValue")

    assert notes["pattern"] == "^[^\\u0000]*$" and re.search(notes["pattern"], "a\x00b") is None
    assert parameters["additionalProperties"] == {"$ref": "#/components/schemas/JsonValue"}
    assert parameters["propertyNames"] == {"pattern": "^[^\\u0000]*$"}
    assert {"type": "string", "pattern": "^[^\\u0000]*$"} in json_value["anyOf"]


# -- records: custom metrics at the top level, metric text, integral floats ----------------------------------------


def test_the_document_says_a_record_s_unknown_fields_are_metrics(api: httpx.Client) -> None:
    record = schema_of(api, "EpochRecord")
    metric_text = record["additionalProperties"]["anyOf"][1]["pattern"]

    assert record["additionalProperties"]["anyOf"][0] == {"type": "number"}
    assert record["properties"]["metrics"]["propertyNames"]["not"]["enum"][:2] == ["duration", "epoch"]
    for text in ["NaN", "-Infinity", " 1e-3\n", "0.5"]:
        assert re.search(metric_text, text), text
    for text in ["1_000", "1e999", "nan1", "\u00a00.5"]:
        assert re.search(metric_text, text) is None, text


def test_a_metric_sent_as_documented_text_is_stored(api: httpx.Client) -> None:
    operation_id = create(api)

    written = api.post(f"/operations/{operation_id}/metrics", json={"epoch": 1.0, "f1": " 0.75\n", "val_loss": "nan"})

    assert written.status_code == 200, written.text
    assert stored_epochs(api, operation_id)[0]["metrics"] == {"f1": 0.75}
    assert stored_epochs(api, operation_id)[0]["val_loss"] == "NaN"


# -- names, paths and symbols as documented ------------------------------------------------------------------------


def test_a_model_name_is_refused_as_the_document_says(api: httpx.Client) -> None:
    schema = schema_of(api, "SaveModelRequest")["properties"]["model_name"]

    for name in ["a\n", "a..b", ""]:
        error = error_of(api.post("/models/save", json={"task_id": "op_x", "model_name": name}), 422)
        assert "is invalid" in error["message"], name
        # fullmatch: as JSON Schema's regular expressions read "$" (Python's search lets it pass a trailing "\n")
        documented = re.fullmatch(schema["pattern"], name) and not re.search(schema["not"]["pattern"], name)
        assert not documented, name


def test_get_or_delete_on_the_load_path_is_a_405_allowing_post(api: httpx.Client) -> None:
    for method in ("GET", "DELETE"):
        response = api.request(method, "/models/eurusd/load")
        assert error_of(response, 405)["code"] == "method_not_allowed"
        assert response.headers["Allow"] == "POST"


def test_artifact_paths_and_data_symbols_have_their_rule_in_the_document(api: httpx.Client) -> None:
    artifact = parameter_of(api, "/api/v1/operations/{operation_id}/artifacts/{artifact_path}", "get", "artifact_path")
    timeframe = parameter_of(api, "/api/v1/data/{symbol}/{timeframe}", "get", "timeframe")

    def documented(path: str) -> bool:
        return bool(re.search(artifact["pattern"], path)) and not re.search(artifact["not"]["pattern"], path)

    assert [documented(path) for path in ["best.pt", "ckpt/epoch-3.pt", "a.", "..", "con.txt", "x/NUL", "a//b"]] == [
        True, True, False, False, False, False, False
    ]  # fmt: skip
    assert [bool(re.search(timeframe["pattern"], text)) for text in ["1h", "H1", "Daily", "1m", "1M", "2d"]] == [
        True, True, True, True, False, False
    ]  # fmt: skip


def test_an_empty_upload_stores_an_empty_file(api: httpx.Client) -> None:
    operation_id = create(api)

    stored = api.post(f"/operations/{operation_id}/artifacts", params={"path": "empty.txt"})

    assert stored.status_code == 201, stored.text
    assert stored.json()["data"]["size"] == 0


def test_a_blank_cancel_reason_is_refused_as_the_document_says(api: httpx.Client) -> None:
    operation_id = create(api)
    pattern = schema_of(api, "CancelRequestBody")["properties"]["reason"]["pattern"]

    error_of(api.post(f"/operations/{operation_id}/cancel", json={"reason": "\u000b \u3000"}), 422)

    assert re.search(pattern, "\u000b \u3000") is None and re.search(pattern, " loss rising ")


# -- queries --------------------------------------------------------------------------------------------------------


def test_a_time_query_parameter_takes_iso_text_not_a_number(api: httpx.Client) -> None:
    error = error_of(api.get("/operations", params={"created_before": "0.5"}), 422)

    assert "query.created_before: '0.5' is a number; send an ISO 8601 time" in error["message"]
    assert api.get("/operations", params={"created_before": "2030-01-01T00:00:00Z"}).status_code == 200


@pytest.mark.parametrize(
    ("name", "value", "year"),
    [
        pytest.param("created_after", "0001-01-01T00:00:00+01:00", 0, id="before-year-1-in-utc"),
        pytest.param("created_before", "9999-12-31T23:59:59-01:00", 10000, id="past-year-9999-in-utc"),
        pytest.param("created_after", "1800-01-01T00:00:00Z", 1800, id="before-1900"),
    ],
)
def test_a_time_query_parameter_outside_the_stored_years_is_a_422(
    api: httpx.Client, name: str, value: str, year: int
) -> None:
    error = error_of(api.get("/operations", params={name: value}), 422)

    assert error["message"] == (
        f"{name} {value.replace('Z', '+00:00')} is year {year} in UTC; send a time between the years 1900 and 9999 "
        "(UTC), the years trainops stores"
    )


@pytest.mark.parametrize("name", ["status", "tag", "include"])
def test_a_repeated_query_parameter_is_declared_an_array_not_an_array_or_null(api: httpx.Client, name: str) -> None:
    # A query string has no null. Declared "array or null", a tag was negated by Schemathesis as a whole (not
    # array, not null: `true`), which reaches the server as the text "true": a tag like any other, rightly found.
    schema = parameter_of(api, "/api/v1/operations", "get", name)

    assert schema["type"] == "array" and "anyOf" not in schema


def test_a_tag_spelled_like_a_boolean_is_a_tag(api: httpx.Client) -> None:
    tagged = create(api)
    assert api.patch(f"/operations/{tagged}", json={"tags": ["true"]}).status_code == 200
    create(api)

    listed = api.get("/operations", params={"tag": "true"}).json()["data"]
    unfiltered = api.get("/operations").json()["data"]

    assert [item["operation_id"] for item in listed["items"]] == [tagged]
    assert unfiltered["total"] == 2


def test_a_step_or_epoch_past_any_stored_one_is_a_422_not_a_500(api: httpx.Client) -> None:
    operation_id = create(api)

    error_of(api.get(f"/operations/{operation_id}/steps", params={"since_step": str(10**25)}), 422)
    error_of(api.get(f"/operations/{operation_id}/metrics", params={"since_epoch": str(10**25)}), 422)


def test_the_metrics_read_documents_the_steps_series_it_can_answer(api: httpx.Client) -> None:
    ok = api.get("/openapi.json").json()["paths"]["/api/v1/operations/{operation_id}/metrics"]["get"]["responses"]
    schema = ok["200"]["content"]["application/json"]["schema"]

    assert {"$ref": "#/components/schemas/Envelope_StepSeries_"} in schema["anyOf"]


# -- updates --------------------------------------------------------------------------------------------------------


def test_an_update_with_metadata_null_is_a_422_whatever_else_it_sends(api: httpx.Client) -> None:
    operation_id = create(api)

    error = error_of(api.patch(f"/operations/{operation_id}", json={"name": "x", "metadata": None, "tags": []}), 422)

    assert "metadata is an object of the fields to set" in error["message"]
    assert api.get(f"/operations/{operation_id}").json()["data"]["name"] is None
    assert schema_of(api, "UpdateOperationRequest")["minProperties"] == 1
