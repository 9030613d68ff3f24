"""Free-form values (metadata, progress context, results) made safe to store and to serve as JSON.

Callers put whatever they like in metadata and results, and two kinds of value would be accepted today and
break every later read: text that is not valid Unicode (an unpaired UTF-16 surrogate such as ``"\\ud800"``,
which no UTF-8 encoder can write, and the NUL character, which PostgreSQL refuses in text and JSONB) and
non-finite floats (JSON has no NaN; PostgreSQL's JSONB refuses it). Text is refused up front with the place it
was found; non-finite numbers are kept, spelled ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` as metrics are.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterator, Mapping
from typing import Any

from trainops.core.numbers import detached, format_metric

_SPACES = r"\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK_PATTERN = f"^[^\\u0000]*[^\\u0000{_SPACES}][^\\u0000]*$"
"""Text with something besides the spaces ``str.strip()`` removes, and no NUL, for the OpenAPI document of a field
the server strips and refuses when nothing is left (a cancel's reason)."""

MAX_DEPTH = 32
"""Deeper nesting than this is refused: no honest summary needs it, and it guards the recursion."""


def check_text(text: str, where: str) -> str:
    """``text`` unchanged when it can be stored and encoded; a ``ValueError`` naming ``where`` otherwise.

    >>> check_text("café", "reason")
    'café'
    """
    if "\x00" in text:
        raise ValueError(f"{where} contains a NUL character (\\u0000); remove it, text cannot hold one")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"{where} contains an unpaired UTF-16 surrogate, which is not valid Unicode; "
                "send the text as UTF-8 (in JSON, escape characters beyond U+FFFF as a surrogate pair)"
            ) from None
    return text


def _texts(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every text of the JSON-like ``value`` (named ``where``), keys included, with where it is: ``body.notes``,
    ``tags[1]``, ``a key of body.metadata``."""
    pending: list[tuple[str, Any]] = [(where, value)]
    while pending:  # a stack, not recursion: a body may nest deeper than the interpreter allows
        place, item = pending.pop()
        if isinstance(item, str):
            yield item, place
        elif isinstance(item, Mapping):
            for key, child in item.items():
                yield str(key), f"a key of {place}"
                pending.append((f"{place}.{key}" if place else str(key), child))
        elif isinstance(item, list | tuple):
            pending.extend((f"{place}[{index}]", child) for index, child in enumerate(item))


def nul_at(value: Any, where: str) -> str | None:
    """Where the JSON-like ``value`` (named ``where``; ``""`` for a mapping of names) holds a NUL in a text or a key,
    or ``None``. It only looks: for a request whose values are checked elsewhere, to name the place first.

    >>> nul_at({"metadata": {"notes": "a\\x00b"}}, "body"), nul_at({"tags": ["a", "b\\x00"]}, "")
    ('body.metadata.notes', 'tags[1]')
    """
    return next((place for text, place in _texts(value, where) if "\x00" in text), None)


def text_problem(value: Any, where: str) -> str | None:
    """What makes the first text (or key) of the JSON-like ``value`` unstorable, as :func:`check_text` words it
    (a NUL, an unpaired surrogate), or ``None``: for arguments that go on to code that would fail on them less
    clearly (a JSON encoder, a database driver).

    >>> text_problem({"tags": ["ok", "\\ud800"]}, "")[:50]
    'tags[1] contains an unpaired UTF-16 surrogate, whi'
    """
    for text, place in _texts(value, where):
        try:
            check_text(text, place)
        except ValueError as problem:
            return str(problem)
    return None


def storable(value: Any, where: str, _depth: int = 0) -> Any:
    """A copy of a JSON-like ``value`` that every database and JSON encoder accepts.

    Mappings (with text keys), lists, tuples, text, numbers, booleans and ``None`` are kept; numpy scalars and
    other real numbers become ``int``/``float``; non-finite floats become their string spelling; numpy arrays and
    torch tensors become their values (a 0-d one a number, others lists), paths their text.

    Raises:
        ValueError: invalid text, a non-text key, nesting deeper than :data:`MAX_DEPTH`, or a value JSON cannot
            hold (the message names where it was found).

    >>> storable({"loss": float("nan"), "tags": ("a", "b")}, "result")
    {'loss': 'NaN', 'tags': ['a', 'b']}
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return check_text(value, where)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else format_metric(number)
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        return check_text(path, where) if isinstance(path, str) else str(value)
    if callable(getattr(value, "tolist", None)) and not isinstance(value, Mapping):
        # numpy scalars and arrays, torch tensors: what a training loop computed its figures with
        listed = detached(value).tolist()
        if listed is not value:
            return storable(listed, where, _depth)
    if _depth >= MAX_DEPTH:
        raise ValueError(f"{where} is nested more than {MAX_DEPTH} levels deep; flatten it")
    if isinstance(value, Mapping):
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has a key of type {type(key).__name__}; JSON keys are text")
            check_text(key, f"a key of {where}")
            cleaned[key] = storable(item, f"{where}.{key}", _depth + 1)
        return cleaned
    if isinstance(value, list | tuple):
        return [storable(item, f"{where}[{index}]", _depth + 1) for index, item in enumerate(value)]
    raise ValueError(f"{where} holds a {type(value).__name__}, which JSON cannot carry; send text or a number")
