"""The MCP server: trainops' tools for AI agents (``trainops mcp``).

``trainops.mcp.server`` holds the server (it imports the MCP SDK); ``trainops.mcp.compare`` the run comparison.
Nothing is imported here, so the CLI can name the transports (``trainops.mcp.transport``) without the SDK.
"""
