"""Policies the diagnosis tests ask for by name."""

from __future__ import annotations

from typing import Any

PATIENCE_RULE: dict[str, Any] = {"stop_rule": "patience"}
"""Keras/Lightning early stopping: ``patience`` epochs without improvement stop the run. The default rule is the
projection, so tests that count epochs of patience ask for this one by name."""

CLI_PATIENCE_RULE: list[str] = ["--stop-rule", "patience"]
"""The same for ``trainops ops diagnose``."""


def patience(epochs: int, **fields: Any) -> dict[str, Any]:
    """The fields of a patience-rule policy that stops after ``epochs`` epochs without improvement."""
    return {**PATIENCE_RULE, "patience": epochs, **fields}
