"""Conditional GETs: whether an ``If-None-Match`` header names the current ETag, per RFC 9110.

Every route that answers an ETag (the metrics, an artifact's or a data file's download) decides its 304 here, so
all of them read the header alike: a list of entity tags (``"a", W/"b"``) or ``*``, compared weakly (RFC 9110
section 13.1.2: ``If-None-Match`` uses the weak comparison, so ``W/"x"`` matches ``"x"``). A proxy or a browser
cache that weakened a strong tag (compressing the answer, say) still revalidates for a 304.
"""

from __future__ import annotations

import re

# One entity tag of a list: an optional weakness prefix, then a quoted opaque tag (any visible character but the
# quote, as RFC 9110's etagc allows); commas between tags, with optional spaces.
_ENTITY_TAG = re.compile(r'\s*(?:W/)?("[^"]*")\s*(?:,|$)')


def if_none_match_matches(header: str | None, etag: str) -> bool:
    """Whether a request's ``If-None-Match`` asks for a 304 given the current ``etag`` (quoted, strong or weak).

    ``None`` or an empty header never matches; ``*`` matches any current representation. A tag that cannot be
    read makes the rest of the list unreadable, and only the tags before it count (the request then gets the
    full answer, which is always safe).

    >>> if_none_match_matches('W/"abc"', '"abc"'), if_none_match_matches('"x", W/"abc"', '"abc"')
    (True, True)
    >>> if_none_match_matches('"abd"', '"abc"'), if_none_match_matches("*", '"abc"')
    (False, True)
    """
    if not header:
        return False
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    position = 0
    while position < len(header):
        found = _ENTITY_TAG.match(header, position)
        if found is None:
            return False
        if found.group(1) == opaque:
            return True
        position = found.end()
    return False
