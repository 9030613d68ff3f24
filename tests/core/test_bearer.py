"""``core/bearer.py``: the token rule the REST API and the MCP endpoint share."""

from __future__ import annotations

import pytest

from trainops.core.bearer import bearer_token_matches

TOKEN = "bearer-test-token-0123456789"


@pytest.mark.parametrize(
    ("authorization", "matches"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"BEARER {TOKEN}", True),
        (f"Bearer  {TOKEN} ", True),
        (TOKEN, False),
        ("Bearer", False),
        ("", False),
        (f"Basic {TOKEN}", False),
        (f"Token {TOKEN}", False),
        (f"Bearer {TOKEN[:-1]}", False),
        (f"Bearer {TOKEN}x", False),
    ],
)
def test_only_the_token_as_a_bearer_token_matches(authorization: str, matches: bool) -> None:
    assert bearer_token_matches(authorization, TOKEN) is matches
