"""YAML read as plain data, with every problem a YAML error.

PyYAML's safe loader raises its own ``YAMLError`` for text that is not YAML, but Python's ``ValueError``,
``KeyError`` and the like for a value its tag cannot be read as (``date: 2001-13-45``, ``!!int x``), and
``RecursionError`` for text nested a thousand levels deep. :func:`safe_load` turns those into YAML errors too, the
first at the value's line and column, so a caller catches one exception and can say where.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A mapping, refusing a key written twice (YAML forbids it; PyYAML would keep the last silently). Keys
        merged in with ``<<`` may still be overridden, as YAML means them to be."""
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:
                    continue  # an unhashable key: the base class says so
                if first is not key_node.start_mark:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"the key {str(key)[:100]!r} is written twice (first on line {first.line + 1}); keep one",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as error:
            tag = node.tag.rsplit(":", 1)[-1]
            detail = f" ({error})" if isinstance(error, ValueError) and str(error) else ""
            problem = f"{str(node.value)[:100]!r} is not a valid {tag}{detail}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


# YAML 1.2 reads 1e-3 as a number; PyYAML (YAML 1.1) wants a dot in it ("1.0e-3") and reads "1e-3" as text, which a
# learning rate written the way everyone writes it then fails on.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def safe_load(text: str) -> Any:
    """``text`` read as YAML's plain data (mappings, lists, strings, numbers, dates), as ``yaml.safe_load`` does.

    Raises:
        yaml.YAMLError: ``text`` is not YAML, holds a value its tag cannot be read as (with the value's place in
            ``problem_mark``), or is nested too deeply to read.

    >>> safe_load("epochs: 10")
    {'epochs': 10}
    >>> safe_load("learning_rate: 1e-3")
    {'learning_rate': 0.001}
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
