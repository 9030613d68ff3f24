"""``trainops mcp --transport http`` answers only for the names of its bound address and TRAINOPS_ALLOWED_HOSTS:
a page that rebinds its own name to 127.0.0.1 (DNS rebinding) is refused before it reaches a tool. A real server
process, probed with raw HTTP and used by the MCP SDK's client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.mcp.test_server import Home, http_server
from tests.mcp.test_server import home as home  # the fixture, shared with the server's tests

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def url(home: Home) -> Iterator[str]:
    hosts = {"TRAINOPS_ALLOWED_HOSTS": "mcp.example,*.tunnel.example"}
    with http_server(home, env=hosts, log="mcp-http-hosts.log") as address:
        yield address


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "mcp.example.evil.example", "tunnel.example"])
def test_a_request_for_another_host_is_refused(url: str, host: str) -> None:
    answer = httpx.post(url, json=INITIALIZE, headers={**HEADERS, "Host": host}, timeout=10)
    assert answer.status_code == 421
    assert f"does not answer for the host {host!r}" in answer.text
    assert "TRAINOPS_ALLOWED_HOSTS" in answer.text


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:8765", "LOCALHOST", "mcp.example:80", "a.tunnel.example"])
def test_the_bound_names_and_the_allowed_ones_are_served(url: str, host: str) -> None:
    answer = httpx.post(url, json=INITIALIZE, headers={**HEADERS, "Host": host}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert "serverInfo" in answer.text


def test_an_agent_connects_by_the_bound_address(url: str) -> None:
    async def tools() -> set[str]:
        async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return {tool.name for tool in (await session.list_tools()).tools}

    with start_blocking_portal() as portal:
        assert {"export_metrics", "delete_operation"} <= portal.call(tools)
