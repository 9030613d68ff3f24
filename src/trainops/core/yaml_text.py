"""YAML read as plain data, with every problem a YAML error.

PyYAML's safe loader raises its own ``YAMLError`` for text that is not YAML, but Python's ``ValueError``,
``KeyError`` and the like for a value its tag cannot be read as (``date: 2001-13-45``, ``!!int x``), and
``RecursionError`` for text nested a thousand levels deep. :func:`safe_load` turns those into YAML errors too, the
first at the value's line and column, so a caller catches one exception and can say where.
"""

from __future__ import annotations

from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as error:
            tag = node.tag.rsplit(":", 1)[-1]
            detail = f" ({error})" if isinstance(error, ValueError) and str(error) else ""
            problem = f"{str(node.value)[:100]!r} is not a valid {tag}{detail}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


def safe_load(text: str) -> Any:
    """``text`` read as YAML's plain data (mappings, lists, strings, numbers, dates), as ``yaml.safe_load`` does.

    Raises:
        yaml.YAMLError: ``text`` is not YAML, holds a value its tag cannot be read as (with the value's place in
            ``problem_mark``), or is nested too deeply to read.

    >>> safe_load("epochs: 10")
    {'epochs': 10}
    >>> try:
    ...     safe_load("start: 2001-13-45")
    ... except yaml.YAMLError as error:
    ...     print(error.problem, error.problem_mark.line, error.problem_mark.column)
    '2001-13-45' is not a valid timestamp (month must be in 1..12) 0 7
    """
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: plain data only
    except RecursionError:
        raise yaml.YAMLError("nested too deeply to read") from None
