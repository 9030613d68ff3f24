"""Every request and answer model that crosses a boundary: the REST API, both client transports, the MCP server.

One module per resource (``operations``, ``training``, ``models``, ``data``, ``strategies``, ``health``). They
depend on :mod:`trainops.core` and pydantic only, so a client can import them without the strategy pipeline, and
the OpenAPI document is generated from them.
"""
