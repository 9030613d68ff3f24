"""The diagnosis types: the rule names signals carry are a public contract."""

from __future__ import annotations

import json

from trainops.core import Action, Signal, SignalRule
from trainops.core.replay import ReplayStep

CONTRACT = [
    "non_finite",
    "non_finite_recovered",
    "divergence_threshold",
    "loss_blowup",
    "train_loss_rising",
    "overfitting",
    "plateau",
    "no_improvement",
    "projected_improvement",
]
"""The rule names clients match on: renaming one breaks them."""


def test_rule_values_are_the_contract() -> None:
    assert [rule.value for rule in SignalRule] == CONTRACT


def test_rules_travel_as_their_names_and_come_back_as_members() -> None:
    signal = Signal(rule=SignalRule.LOSS_BLOWUP, severity="critical", message="m")
    step = ReplayStep(epoch=3, action=Action.STOP, reason="r", rules=[SignalRule.PLATEAU])

    assert json.loads(signal.model_dump_json())["rule"] == "loss_blowup"
    assert json.loads(step.model_dump_json())["rules"] == ["plateau"]
    assert Signal.model_validate_json(signal.model_dump_json()).rule is SignalRule.LOSS_BLOWUP
    assert ReplayStep.model_validate_json(step.model_dump_json()).rules == [SignalRule.PLATEAU]
    assert signal.rule == "loss_blowup" and f"[{signal.rule}]" == "[loss_blowup]"  # still compares as its string
