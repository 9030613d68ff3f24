"""How the MCP server is reached: the transports and the default port, apart so the CLI names them without
importing the MCP SDK."""

from __future__ import annotations

from typing import Literal

Transport = Literal["stdio", "http"]
"""``stdio`` when an agent launches ``trainops mcp`` itself; ``http`` for streamable HTTP at a URL."""

DEFAULT_PORT = 8765
HTTP_PATH = "/mcp"
