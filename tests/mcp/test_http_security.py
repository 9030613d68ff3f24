"""Who may drive ``trainops mcp --transport http``: with a token configured (TRAINOPS_API_TOKEN or ``--token``), only
a client that sends it; never a web page from another site (its ``Origin``), token or not. Real server processes,
probed with raw HTTP and used by the MCP SDK's client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import httpx2
import pytest
from anyio.from_thread import start_blocking_portal
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.mcp.test_http_hosts import HEADERS, INITIALIZE
from tests.mcp.test_server import Home, http_server
from tests.mcp.test_server import home as home  # the fixture, shared with the server's tests
from trainops.mcp.http_security import loopback_host, origin_allowed

TOKEN = "mcp-endpoint-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def guarded(home: Home) -> Iterator[str]:
    """A server given its token as the docs advise: TRAINOPS_API_TOKEN in its environment."""
    env = {"TRAINOPS_API_TOKEN": TOKEN, "TRAINOPS_ALLOWED_HOSTS": "mcp.example"}
    with http_server(home, env=env, log="mcp-http-guarded.log") as url:
        yield url


@pytest.fixture(scope="module")
def unguarded(home: Home) -> Iterator[str]:
    """A plain loopback server: no token anywhere."""
    with http_server(home, log="mcp-http-unguarded.log") as url:
        yield url


def use_tools(url: str, headers: dict[str, str] | None = None, statuses: list[int] | None = None) -> dict[str, Any]:
    """What an agent sees through the SDK's client sending ``headers``: the tools' names and ``health``'s answer.
    The HTTP status of every answer is appended to ``statuses``."""

    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    async def session() -> dict[str, Any]:
        http = httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(30, read=300), event_hooks={"response": [record]}
        )
        async with (
            http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as client,
        ):
            await client.initialize()
            tools = {tool.name for tool in (await client.list_tools()).tools}
            health = await client.call_tool("health", {})
            assert not health.is_error, health.content
            return {"tools": tools, "health": health.structured_content}

    with start_blocking_portal() as portal:
        return portal.call(session)


# -- the token -------------------------------------------------------------------------------------------------------


def test_an_agent_without_the_token_is_refused_with_how_to_send_it(guarded: str) -> None:
    statuses: list[int] = []
    with pytest.raises(ExceptionGroup) as refused:  # the SDK's task groups wrap the error
        use_tools(guarded, statuses=statuses)
    assert refused.group_contains(MCPError, match=r"^missing or wrong bearer token: .*'Authorization: Bearer <")
    assert statuses == [401]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789abcdef", f"Bearer {TOKEN}x", f"Token {TOKEN}", f"Basic {TOKEN}", "Bearer"],
)
def test_a_missing_or_wrong_token_is_a_401_that_says_how_to_send_it(guarded: str, authorization: str | None) -> None:
    headers = HEADERS if authorization is None else {**HEADERS, "Authorization": authorization}
    answer = httpx.post(guarded, json=INITIALIZE, headers=headers, timeout=10)
    assert answer.status_code == 401, answer.text
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert "missing or wrong bearer token" in answer.text
    assert "Authorization: Bearer" in answer.text and "TRAINOPS_API_TOKEN" in answer.text
    assert TOKEN not in answer.text


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_every_method_needs_the_token(guarded: str, method: str) -> None:
    """The SDK's client also opens a GET stream and ends its session with a DELETE."""
    answer = httpx.request(method, guarded, headers={"Accept": "text/event-stream"}, timeout=10)
    assert answer.status_code == 401


def test_an_agent_with_the_token_lists_and_calls_the_tools(guarded: str) -> None:
    statuses: list[int] = []
    seen = use_tools(guarded, headers=BEARER, statuses=statuses)
    assert {"start_training", "cancel_operation", "delete_operation"} <= seen["tools"]
    assert seen["health"]["status"] == "ok"
    assert 401 not in statuses


def test_the_start_message_says_how_clients_send_the_token_and_never_shows_it(guarded: str, home: Home) -> None:
    log = (home.logs / "mcp-http-guarded.log").read_text()
    assert "Authorization: Bearer" in log
    assert TOKEN not in log


def test_a_token_given_with_the_option_guards_too_and_is_warned_about(home: Home) -> None:
    with http_server(home, "--token", TOKEN, log="mcp-http-option.log") as url:
        assert httpx.post(url, json=INITIALIZE, headers=HEADERS, timeout=10).status_code == 401
        assert httpx.post(url, json=INITIALIZE, headers={**HEADERS, **BEARER}, timeout=10).status_code == 200
    log = (home.logs / "mcp-http-option.log").read_text()
    assert "--token" in log and "ps" in log and "TRAINOPS_API_TOKEN" in log
    assert TOKEN not in log


# -- the Origin ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://evil.example:8765",
        "http://127.0.0.1.evil.example",
        "http://localhost.evil.example",
        "http://mcp.example.evil.example",
        "null",
    ],
)
def test_a_page_from_another_site_is_refused_even_with_the_token(guarded: str, origin: str) -> None:
    answer = httpx.post(guarded, json=INITIALIZE, headers={**HEADERS, **BEARER, "Origin": origin}, timeout=10)
    assert answer.status_code == 403, answer.text
    assert f"the web page at {origin!r}" in answer.text
    assert "TRAINOPS_ALLOWED_HOSTS" in answer.text


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:{port}",
        "http://localhost:{port}",
        "http://[::1]:{port}",
        "https://localhost",
        "https://mcp.example",
    ],
)
def test_a_page_on_this_machine_or_an_allowed_host_passes(guarded: str, origin: str) -> None:
    sent = origin.format(port=urlsplit(guarded).port)
    answer = httpx.post(guarded, json=INITIALIZE, headers={**HEADERS, **BEARER, "Origin": sent}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert "serverInfo" in answer.text


# -- no token --------------------------------------------------------------------------------------------------------


def test_without_a_token_a_plain_agent_still_connects(unguarded: str) -> None:
    seen = use_tools(unguarded)
    assert {"start_training", "delete_operation"} <= seen["tools"]
    assert seen["health"]["status"] == "ok"


def test_without_a_token_the_start_message_says_who_can_reach_it_and_how_to_close_it(
    unguarded: str, home: Home
) -> None:
    log = (home.logs / "mcp-http-unguarded.log").read_text()
    assert "any user or process on this machine" in log
    assert "TRAINOPS_API_TOKEN" in log


def test_without_a_token_a_page_from_another_site_is_still_refused(unguarded: str) -> None:
    answer = httpx.post(unguarded, json=INITIALIZE, headers={**HEADERS, "Origin": "https://evil.example"}, timeout=10)
    assert answer.status_code == 403


# -- the rules, as pure functions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://127.0.0.1:8765", True),
        ("https://127.0.0.1", True),
        ("http://localhost:3000", True),
        ("http://[::1]:8765", True),
        ("HTTP://LOCALHOST", True),
        ("https://mcp.example", True),  # a name TRAINOPS_ALLOWED_HOSTS adds
        ("https://evil.example", False),
        ("http://127.0.0.1.evil.example", False),
        ("http://user@127.0.0.1", False),
        ("http://127.0.0.1:port", False),
        ("http://[::1", False),
        ("ftp://127.0.0.1", False),
        ("file://", False),
        ("null", False),
        ("", False),
    ],
)
def test_origin_allowed(origin: str, allowed: bool) -> None:
    def hosts(sent: str) -> bool:
        return loopback_host(sent) or sent == "mcp.example"

    assert origin_allowed(origin, hosts) is allowed
