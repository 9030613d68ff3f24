"""The ``Host`` check (DNS rebinding) and ``--insecure``'s warning: the names a server answers for, tested on a real
``trainops serve`` process, and in-process apps that keep working without it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.server_process import ServerProcess
from trainops.api import create_app
from trainops.api import server as api_server
from trainops.api.hosts import allowed_hosts, host_allowed, host_name
from trainops.errors import ConfigurationError
from trainops.settings import Settings, get_settings


@pytest.mark.parametrize(
    ("bound", "configured", "public_url", "host", "allowed"),
    [
        pytest.param("127.0.0.1", [], None, "127.0.0.1:8000", True, id="loopback-by-address"),
        pytest.param("127.0.0.1", [], None, "localhost", True, id="loopback-by-name-without-port"),
        pytest.param("127.0.0.1", [], None, "[::1]:8000", True, id="loopback-ipv6"),
        pytest.param("localhost", [], None, "LOCALHOST:8000", True, id="names-are-case-blind"),
        pytest.param("::1", [], None, "127.0.0.1", True, id="ipv6-loopback-bind"),
        pytest.param("127.0.0.1", [], None, "evil.example:8000", False, id="rebinding-name"),
        pytest.param("127.0.0.1", [], None, "localhost.evil.example", False, id="name-that-starts-alike"),
        pytest.param("127.0.0.1", [], None, "", False, id="no-host-header"),
        pytest.param("10.0.0.5", [], None, "10.0.0.5:8000", True, id="address-bind"),
        pytest.param("10.0.0.5", [], None, "localhost:8000", False, id="address-bind-is-not-loopback"),
        pytest.param("0.0.0.0", [], None, "anything.example", True, id="wildcard-bind-answers-any"),
        pytest.param("::", [], None, "anything.example", True, id="ipv6-wildcard-bind-answers-any"),
        pytest.param("0.0.0.0", ["ops.example.com"], None, "other.example", False, id="wildcard-narrowed"),
        pytest.param("0.0.0.0", ["ops.example.com"], None, "127.0.0.1:80", True, id="wildcard-narrowed-keeps-loopback"),
        pytest.param("127.0.0.1", ["ops.example.com"], None, "ops.example.com", True, id="proxy-name"),
        pytest.param("127.0.0.1", ["ops.example.com:443"], None, "ops.example.com", True, id="setting-with-port"),
        pytest.param("127.0.0.1", ["*.example.com"], None, "a.b.example.com", True, id="domain-wildcard"),
        pytest.param("127.0.0.1", ["*.example.com"], None, "example.com.evil", False, id="domain-wildcard-suffix"),
        pytest.param("127.0.0.1", ["*"], None, "evil.example", True, id="star-allows-any"),
        pytest.param("0.0.0.0", ["x.example"], "http://10.0.0.5:8000", "10.0.0.5:8000", True, id="public-url"),
        pytest.param(None, [], None, "testserver", True, id="in-process-app"),
        pytest.param(None, ["ops.example.com"], None, "testserver", False, id="in-process-app-with-setting"),
    ],
)
def test_the_names_a_server_answers_for(
    bound: str | None, configured: list[str], public_url: str | None, host: str, allowed: bool
) -> None:
    names = allowed_hosts(bound, configured, public_url)

    assert (names is None or host_allowed(host_name(host), names)) is allowed


def test_the_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRAINOPS_HOME", str(tmp_path))
    monkeypatch.setenv("TRAINOPS_ALLOWED_HOSTS", " ops.example.com, *.internal ,")
    get_settings.cache_clear()
    try:
        assert get_settings().allowed_hosts == ["ops.example.com", "*.internal"]
        monkeypatch.setenv("TRAINOPS_ALLOWED_HOSTS", "https://ops.example.com/")
        get_settings.cache_clear()
        with pytest.raises(
            ConfigurationError, match=re.escape("TRAINOPS_ALLOWED_HOSTS: 'https://ops.example.com/' is not a host")
        ):
            get_settings()
    finally:
        get_settings.cache_clear()


# -- a real `trainops serve` ------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hosts.db'}"


def health(server: ServerProcess, host: str) -> httpx.Response:
    return httpx.get(f"{server.url}/api/v1/health", headers={"Host": host}, timeout=10)


def test_serve_answers_only_for_the_loopback_names(sqlite_url: str, tmp_path: Path) -> None:
    with ServerProcess(sqlite_url, tmp_path / "server") as server:
        refused = health(server, "evil.example")
        refused_with_port = httpx.get(
            f"{server.url}/api/v1/operations", headers={"Host": f"evil.example:{server.port}"}, timeout=10
        )
        answered = {name: health(server, name).status_code for name in (f"127.0.0.1:{server.port}", "localhost")}
        dashboard = httpx.get(f"{server.url}/", headers={"Host": "evil.example"}, timeout=10)

    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "host_not_allowed"
    assert "'evil.example'" in error["message"] and "TRAINOPS_ALLOWED_HOSTS" in error["message"]
    assert refused_with_port.status_code == 400
    assert dashboard.status_code == 400  # the pages too: a rebinding page must not read them either
    assert answered == {f"127.0.0.1:{server.port}": 200, "localhost": 200}


def test_serve_answers_for_the_names_the_setting_adds(sqlite_url: str, tmp_path: Path) -> None:
    env = {"TRAINOPS_ALLOWED_HOSTS": "trainops.example.com", "TRAINOPS_PUBLIC_URL": "http://worker-facing.internal:9"}
    with ServerProcess(sqlite_url, tmp_path / "server", **env) as server:
        statuses = {
            name: health(server, name).status_code
            for name in ("trainops.example.com", "worker-facing.internal:9", f"127.0.0.1:{server.port}", "evil.example")
        }

    assert statuses == {
        "trainops.example.com": 200,
        "worker-facing.internal:9": 200,  # remote workers dial TRAINOPS_PUBLIC_URL
        f"127.0.0.1:{server.port}": 200,
        "evil.example": 400,
    }


# -- in-process apps, and what serve() builds ---------------------------------------------------------------------


def test_an_in_process_app_answers_any_name_unless_the_setting_is_set(tmp_path: Path) -> None:
    open_app = create_app(Settings(home=tmp_path / "a", reaper_interval=0))
    narrowed = create_app(Settings(home=tmp_path / "b", reaper_interval=0, allowed_hosts=["ops.example.com"]))

    with TestClient(open_app) as client:  # FastAPI's test client sends Host: testserver
        assert client.get("/api/v1/health").status_code == 200
    with TestClient(narrowed) as client:
        assert client.get("/api/v1/health").status_code == 400
        assert client.get("/api/v1/health", headers={"Host": "ops.example.com"}).status_code == 200


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``serve()`` hands uvicorn, without listening: the app's start-up and shutdown run, one request is made."""
    calls: list[dict[str, Any]] = []

    def run(app: Any, **options: Any) -> None:
        with TestClient(app) as client:
            options["health"] = client.get("/api/v1/health").status_code
        calls.append(options)

    monkeypatch.setattr(api_server.uvicorn, "run", run)
    monkeypatch.setattr(api_server, "check_port", lambda host, port: None)  # nothing binds: port 8000 may be taken
    return calls


def test_serve_installs_the_host_check_for_its_bind_address(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    messages: list[str] = []

    api_server.serve(Settings(home=tmp_path, reaper_interval=0), host="127.0.0.1", announce=messages.append)

    assert served[0]["host"] == "127.0.0.1"
    assert served[0]["health"] == 400  # "testserver" is no name of 127.0.0.1
    assert not any("WARNING" in message for message in messages)


def test_insecure_warns_what_it_exposes(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    messages: list[str] = []

    api_server.serve(
        Settings(home=tmp_path, reaper_interval=0), host="0.0.0.0", insecure=True, announce=messages.append
    )

    (warning,) = [message for message in messages if "--insecure" in message]
    assert "0.0.0.0 without authentication" in warning
    assert "read every run" in warning and "start trainings" in warning and "cancel" in warning
    assert "TRAINOPS_API_TOKEN" in warning
    assert served[0]["health"] == 200  # a wildcard bind answers any name


@pytest.mark.parametrize(
    ("host", "token", "insecure"),
    [("127.0.0.1", None, True), ("0.0.0.0", "t" * 32, True), ("0.0.0.0", "t" * 32, False)],
)
def test_no_warning_when_nothing_is_exposed(host: str, token: str | None, insecure: bool, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, api_token=token)

    assert api_server.insecure_warning(host, settings, insecure=insecure) is None
