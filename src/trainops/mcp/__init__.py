"""The MCP server: trainops' tools for AI agents (``trainops mcp``)."""

from trainops.mcp.compare import RunComparison, RunSummary, compare_runs
from trainops.mcp.server import READ_TOOLS, WRITING_TOOLS, create_server, serve

__all__ = ["READ_TOOLS", "WRITING_TOOLS", "RunComparison", "RunSummary", "compare_runs", "create_server", "serve"]
