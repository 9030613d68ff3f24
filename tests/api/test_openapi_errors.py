"""The OpenAPI document declares the error statuses routes answer, each with the error envelope (api/openapi.py)."""

from __future__ import annotations

import httpx

METHODS = {"get", "post", "put", "patch", "delete"}


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


def test_a_strategy_named_after_no_users_home_is_refused_not_a_server_error(api: httpx.Client) -> None:
    # Schemathesis found it: Path("~x").expanduser() raised RuntimeError, a 500
    answer = api.post("/training/start", json={"strategy": "~no_such_user_here"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_input"
