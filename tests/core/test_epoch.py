"""EpochRecord: what a training loop may report for one epoch, and how it survives JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from trainops.core import STANDARD_METRICS, EpochRecord
from trainops.core.steps import StepRecord


def test_json_round_trip_keeps_non_finite_values_as_strings() -> None:
    record = EpochRecord(
        epoch=3,
        train_loss=math.nan,
        val_loss=math.inf,
        val_accuracy=0.5,
        learning_rate=-math.inf,
        metrics={"grad_norm": "NaN", "f1": 0.75},
    )

    text = record.model_dump_json()
    wire = json.loads(text)
    back = EpochRecord.model_validate_json(text)

    assert wire["train_loss"] == "NaN"
    assert wire["val_loss"] == "Infinity"
    assert wire["learning_rate"] == "-Infinity"
    assert wire["val_accuracy"] == 0.5
    assert wire["metrics"] == {"grad_norm": "NaN", "f1": 0.75}
    assert math.isnan(back.train_loss)
    assert back.val_loss == math.inf
    assert back.learning_rate == -math.inf
    assert math.isnan(back.metrics["grad_norm"])
    assert back.metrics["f1"] == 0.75
    assert record.model_dump(mode="json") == wire


@pytest.mark.parametrize(
    ("text", "field", "check"),
    [
        pytest.param('{"epoch": 1, "val_loss": "NaN"}', "val_loss", math.isnan, id="nan-string"),
        pytest.param('{"epoch": 1, "val_loss": NaN}', "val_loss", math.isnan, id="nan-literal"),
        pytest.param('{"epoch": 1, "val_loss": Infinity}', "val_loss", lambda v: v == math.inf, id="inf-literal"),
        pytest.param('{"epoch": 1, "train_loss": "-Infinity"}', "train_loss", lambda v: v == -math.inf, id="minus-inf"),
        pytest.param('{"epoch": 1, "train_loss": "0.5"}', "train_loss", lambda v: v == 0.5, id="numeric-string"),
    ],
)
def test_json_input_accepts_non_finite_spellings(text: str, field: str, check: Any) -> None:
    assert check(getattr(EpochRecord.model_validate_json(text), field))


@pytest.mark.parametrize(
    ("data", "metrics"),
    [
        pytest.param({"epoch": 3, "f1": 0.8}, {"f1": 0.8}, id="one-unknown-field"),
        pytest.param({"epoch": 3, "f1": 0.8, "metrics": {"iou": 0.5}}, {"iou": 0.5, "f1": 0.8}, id="merged"),
        pytest.param({"epoch": 3, "grad_norm": "Infinity"}, {"grad_norm": math.inf}, id="non-finite-string"),
        pytest.param({"epoch": 3, "top5.acc": 1}, {"top5.acc": 1.0}, id="dotted-name"),
        pytest.param({"epoch": 3, "metrics": {"a/b-c": 2.0}}, {"a/b-c": 2.0}, id="inside-metrics"),
    ],
)
def test_unknown_top_level_numbers_move_into_metrics(data: dict[str, Any], metrics: dict[str, float]) -> None:
    record = EpochRecord.model_validate(data)

    assert record.metrics == metrics
    assert record.val_loss is None


@pytest.mark.parametrize("record", [EpochRecord, StepRecord])
@pytest.mark.parametrize("metrics", [None, [1.0], "f1"], ids=["null", "list", "string"])
def test_metrics_that_is_not_an_object_is_refused_with_top_level_metrics_too(record: type, metrics: Any) -> None:
    # the document says metrics is an object; a top-level metric beside it must not turn null into {}
    for data in ({"metrics": metrics}, {"metrics": metrics, "f1": 0.8}):
        with pytest.raises(ValidationError, match="metrics"):
            record.model_validate({"epoch": 1, "step": 5, **data} if record is StepRecord else {"epoch": 1, **data})


def test_metric_sent_both_at_top_level_and_in_metrics_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"metric\(s\) \['f1'\] sent both at the top level and inside 'metrics'"):
        EpochRecord.model_validate({"epoch": 1, "f1": 0.1, "metrics": {"f1": 0.2}})


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("1abc", id="leading-digit"),
        pytest.param("has space", id="space"),
        pytest.param("-dash", id="leading-dash"),
        pytest.param("", id="empty"),
        pytest.param("a" * 129, id="129-chars"),
        pytest.param("précision", id="non-ascii"),
    ],
)
def test_bad_metric_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="is not allowed: use letters, digits"):
        EpochRecord.model_validate({"epoch": 1, "metrics": {name: 1.0}})


def test_bad_metric_name_at_top_level_is_refused_too() -> None:
    with pytest.raises(ValidationError, match="'bad name' is not allowed"):
        EpochRecord.model_validate({"epoch": 1, "bad name": 1.0})


def test_longest_allowed_metric_name() -> None:
    name = "_" + "a" * 127

    assert EpochRecord.model_validate({"epoch": 1, "metrics": {name: 1.0}}).metrics == {name: 1.0}


@pytest.mark.parametrize("name", STANDARD_METRICS)
def test_standard_fields_inside_metrics_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match=f"'{name}' is a standard field: send it at the top level"):
        EpochRecord.model_validate({"epoch": 1, "metrics": {name: 0.1}})


def test_non_numeric_unknown_field_is_refused_with_the_metric_message() -> None:
    with pytest.raises(ValidationError, match=r"a metric must be a number or one of .*got 'hello'"):
        EpochRecord.model_validate({"epoch": 1, "note": "hello"})


def test_too_many_custom_metrics_are_refused() -> None:
    metrics = {f"m{i}": 1.0 for i in range(EpochRecord.MAX_CUSTOM_METRICS + 1)}

    with pytest.raises(ValidationError, match="at most 256 items"):
        EpochRecord(epoch=1, metrics=metrics)


@pytest.mark.parametrize(
    ("epoch", "message"),
    [
        pytest.param(1.5, "valid integer", id="fraction"),
        pytest.param("3", "'3' is text; send a JSON number", id="string"),
        pytest.param(True, "True is a boolean; send a JSON number", id="bool"),
        pytest.param(None, "valid integer", id="none"),
        pytest.param(-1, "greater than or equal to 0", id="negative"),
        pytest.param(10_000_001, "less than or equal to 10000000", id="too-large"),
    ],
)
def test_epoch_must_be_a_non_negative_int(epoch: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EpochRecord.model_validate({"epoch": epoch})


def test_epoch_string_is_refused_in_json_too() -> None:
    with pytest.raises(ValidationError, match="is text"):
        EpochRecord.model_validate_json('{"epoch": "3"}')


def test_an_integral_float_is_an_epoch_as_json_schema_counts_it() -> None:
    assert EpochRecord.model_validate_json('{"epoch": 3.0, "step": 120.0}').model_dump(include={"epoch", "step"}) == {
        "epoch": 3,
        "step": 120,
    }


@pytest.mark.parametrize("epoch", [0, 1, 10_000_000])
def test_epoch_bounds_accepted(epoch: int) -> None:
    assert EpochRecord(epoch=epoch).epoch == epoch


def test_epoch_is_required() -> None:
    with pytest.raises(ValidationError, match="epoch\n  Field required"):
        EpochRecord.model_validate({"val_loss": 0.1})


@pytest.mark.parametrize(
    ("duration", "message"),
    [
        pytest.param(-1.0, "greater than or equal to 0", id="negative"),
        pytest.param(math.inf, "finite number", id="inf"),
        pytest.param(math.nan, "finite number", id="nan"),
    ],
)
def test_duration_must_be_finite_and_non_negative(duration: float, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EpochRecord(epoch=1, duration=duration)


def test_value_and_metric_names() -> None:
    record = EpochRecord(epoch=2, val_loss=0.5, learning_rate=0.01, duration=3.0, metrics={"f1": 0.9})

    assert record.value("val_loss") == 0.5
    assert record.value("learning_rate") == 0.01
    assert record.value("duration") == 3.0
    assert record.value("f1") == 0.9
    assert record.value("train_loss") is None
    assert record.value("unknown") is None
    assert record.metric_names() == ["val_loss", "learning_rate", "f1"]


def test_non_dict_metrics_is_refused_even_next_to_an_unknown_field() -> None:
    with pytest.raises(ValidationError, match="metrics"):
        EpochRecord.model_validate({"epoch": 1, "f1": 0.5, "metrics": [1, 2]})


def test_non_dict_metrics_alone_is_refused() -> None:
    with pytest.raises(ValidationError, match="valid dictionary"):
        EpochRecord.model_validate({"epoch": 1, "metrics": [1, 2]})


def test_huge_integer_metric_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        EpochRecord.model_validate_json('{"epoch": 0, "val_loss": 1' + "0" * 400 + "}")


def test_custom_metric_named_like_a_top_level_field_is_not_silently_shadowed() -> None:
    try:
        record = EpochRecord.model_validate({"epoch": 1, "metrics": {"duration": 5.0}})
    except ValidationError:
        return  # refusing the name, as standard names are refused, is a fix too
    assert record.value("duration") == 5.0
