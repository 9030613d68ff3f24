"""The examples in the core's docstrings run, so they stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "trainops.core.analysis",
    "trainops.core.epoch",
    "trainops.core.forecast",
    "trainops.core.metric_names",
    "trainops.core.numbers",
    "trainops.core.payload",
    "trainops.core.policy",
    "trainops.core.projection",
    "trainops.core.recommendation_changes",
    "trainops.core.replay",
    "trainops.core.rules",
    "trainops.core.stats",
    "trainops.core.yaml_text",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples to run"
    assert result.failed == 0
