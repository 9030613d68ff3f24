"""Policies the diagnosis tests replay, whichever stop rule is the default."""

from __future__ import annotations

from typing import Any

from trainops.core.policy import MonitorPolicy

PATIENCE_RULE: dict[str, Any] = {"stop_rule": "patience"} if "stop_rule" in MonitorPolicy.model_fields else {}
"""Keras/Lightning early stopping: ``patience`` epochs without improvement stop the run.

A policy without ``stop_rule`` knows no other rule; one with it may default to another (the projection rule), so
tests that count epochs of patience ask for this one by name. Once ``stop_rule`` exists everywhere this is simply
``{"stop_rule": "patience"}``."""

CLI_PATIENCE_RULE: list[str] = [f"--set={name}={value}" for name, value in PATIENCE_RULE.items()]
"""The same for ``trainops ops diagnose``."""


def patience(epochs: int, **fields: Any) -> dict[str, Any]:
    """The fields of a patience-rule policy that stops after ``epochs`` epochs without improvement."""
    return {**PATIENCE_RULE, "patience": epochs, **fields}
