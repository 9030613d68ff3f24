"""``trainops.connect()``, ``--url`` and ``TRAINOPS_URL`` take the server's origin or the API URL that
``trainops serve`` prints (``.../api/v1``, a trailing slash or not); a server mounted under another path keeps it."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from typer.testing import CliRunner

import trainops
from tests.live_server import LiveServer
from trainops.api.server import serve
from trainops.cli.main import app
from trainops.client.http import HttpTrainOps
from trainops.errors import ConfigurationError
from trainops.settings import Settings, get_settings


def printed_url(settings: Settings, port: int, monkeypatch: pytest.MonkeyPatch) -> str:
    """The API URL in the banner ``trainops serve --port PORT`` prints (the server itself is not started)."""
    banner: list[str] = []
    monkeypatch.setattr("trainops.api.server.uvicorn.run", lambda *args, **kwargs: None)
    monkeypatch.setattr("trainops.api.server.check_port", lambda host, port: None)  # the live server holds it
    serve(settings, port=port, announce=banner.append)
    [line] = banner
    found = re.search(r"API at (\S+)", line)
    assert found, line
    return found[1]


def spellings(origin: str, api_url: str) -> list[str]:
    return [origin, f"{origin}/", api_url, f"{api_url}/"]


def test_connect_takes_the_url_serve_prints_and_the_origin(
    settings: Settings, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    api_url = printed_url(settings, int(live_server.url.rsplit(":", 1)[1]), monkeypatch)
    assert api_url == f"{live_server.url}/api/v1"
    created = []
    for url in spellings(live_server.url, api_url):
        with trainops.connect(url) as ops:
            assert isinstance(ops, HttpTrainOps) and ops.url == live_server.url, url
            assert ops.health().status == "ok", url
            created.append(ops.create_operation(metadata={"strategy": url}).operation_id)
    with trainops.connect(api_url) as ops:
        listed = {operation.operation_id for operation in ops.list_operations().items}
    assert listed == set(created)


def test_trainops_url_takes_either_form(
    settings: Settings, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for url in spellings(live_server.url, f"{live_server.url}/api/v1"):
        monkeypatch.setenv("TRAINOPS_URL", url)
        get_settings.cache_clear()
        with trainops.connect() as ops:
            assert ops.health().status == "ok", url
    get_settings.cache_clear()


def test_the_cli_takes_either_form_in_url_and_the_environment(settings: Settings, live_server: LiveServer) -> None:
    with trainops.connect(live_server.url) as ops:
        operation_id = ops.create_operation().operation_id
    runner = CliRunner()
    for url in spellings(live_server.url, f"{live_server.url}/api/v1"):
        for args, env in ((["--url", url], {}), ([], {"TRAINOPS_URL": url})):
            result = runner.invoke(app, ["ops", "show", operation_id, "--json", *args], env=env, catch_exceptions=False)
            assert result.exit_code == 0, (url, env, result.stderr)
            assert json.loads(result.stdout)["operation_id"] == operation_id


class Recorder(httpx.BaseTransport):
    """Answers every request like a healthy server and keeps the URLs asked for."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        health = {
            "status": "ok",
            "version": "0",
            "database": "x",
            "schema_revision": None,
            "time": "2026-01-01T00:00:00Z",
        }
        return httpx.Response(200, json={"success": True, "data": health})


@pytest.mark.parametrize(
    ("given", "asked"),
    [
        ("http://host:8000", "http://host:8000/api/v1/health"),
        ("http://host:8000/api/v1", "http://host:8000/api/v1/health"),
        ("http://host:8000/api/v1/", "http://host:8000/api/v1/health"),
        ("http://host/trainops", "http://host/trainops/api/v1/health"),
        ("http://host/trainops/", "http://host/trainops/api/v1/health"),
        ("http://host/trainops/api/v1", "http://host/trainops/api/v1/health"),
        ("https://host/trainops/api/v1/", "https://host/trainops/api/v1/health"),
        # only a trailing /api/v1 is the API's own: other paths are the mount point
        ("http://host/api/v1/trainops", "http://host/api/v1/trainops/api/v1/health"),
        ("http://host/v1", "http://host/v1/api/v1/health"),
    ],
)
def test_only_a_trailing_api_prefix_is_dropped(given: str, asked: str) -> None:
    transport = Recorder()
    HttpTrainOps(given, transport=transport).health()
    assert transport.urls == [asked]


@pytest.mark.parametrize("url", ["127.0.0.1:8000/api/v1", "ftp://host/api/v1", "http:///api/v1"])
def test_an_unusable_url_still_says_how_to_write_one(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"give one like http://127\.0\.0\.1:8000"):
        HttpTrainOps(url)
