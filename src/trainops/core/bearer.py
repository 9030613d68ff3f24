"""The bearer-token rule the REST API (``api/guards.py``) and the MCP HTTP endpoint (``mcp/http_security.py``)
share: one rule, so a token that opens one opens the other."""

from __future__ import annotations

import secrets


def bearer_token_matches(authorization: str, token: str) -> bool:
    """Whether an ``Authorization`` header's value is ``Bearer <token>`` (the scheme in any case, spaces around the
    token aside).

    >>> bearer_token_matches("bearer s3cret", "s3cret"), bearer_token_matches("s3cret", "s3cret")
    (True, False)
    """
    scheme, _, sent = authorization.partition(" ")
    # compare_digest: the time taken must not reveal how much of a guessed token was right
    return scheme.lower() == "bearer" and secrets.compare_digest(sent.strip().encode(), token.encode())
