"""Policies the diagnosis tests replay, whichever stop rule is the default."""

from __future__ import annotations

from typing import Any

PATIENCE_RULE: dict[str, Any] = {"stop_rule": "patience"}
"""Keras/Lightning early stopping: ``patience`` epochs without improvement stop the run. The default rule
(projection) stops on what continuing is projected to gain, which cannot be counted by hand; tests that count
epochs of patience ask for this rule by name."""

CLI_PATIENCE_RULE: list[str] = [f"--set={name}={value}" for name, value in PATIENCE_RULE.items()]
"""The same for ``trainops ops diagnose``."""


def patience(epochs: int, **fields: Any) -> dict[str, Any]:
    """The fields of a patience-rule policy that stops after ``epochs`` epochs without improvement."""
    return {**PATIENCE_RULE, "patience": epochs, **fields}
