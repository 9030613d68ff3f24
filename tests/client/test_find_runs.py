"""Runs people can find again, on both transports and both databases: a name, tags and notes set at creation and
changed later; list filters, sorts (``best:<metric>`` by the metric's own direction) and cursor pages that stay
stable while runs are created."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trainops.client import TrainOps
from trainops.core import EpochRecord, OperationStatus
from trainops.errors import InvalidInputError


def finished(ops: TrainOps, losses: list[float], **create: Any) -> str:
    """A completed run whose epochs report ``val_loss`` = ``losses`` and ``val_accuracy`` = 1 - loss."""
    operation = ops.create_operation(total_epochs=len(losses) or None, **create)
    if losses:
        records = [EpochRecord(epoch=epoch, val_loss=loss, val_accuracy=1 - loss) for epoch, loss in enumerate(losses)]
        ops.add_epochs(operation.operation_id, records)
    ops.finish_operation(operation.operation_id)
    return operation.operation_id


def ids(ops: TrainOps, **filters: Any) -> list[str]:
    return [item.operation_id for item in ops.list_operations(limit=1000, **filters).items]


def test_name_tags_and_notes_are_set_at_creation(ops: TrainOps) -> None:
    operation = ops.create_operation(
        name="  resnet18 lr=3e-4 ", tags=["baseline", "lr=3e-4", "baseline"], notes="first try\nwith warmup"
    )
    assert (operation.name, operation.tags, operation.notes) == (
        "resnet18 lr=3e-4",
        ["baseline", "lr=3e-4"],
        "first try\nwith warmup",
    )
    again = ops.get_operation(operation.operation_id)
    assert (again.name, again.tags, again.notes) == (operation.name, operation.tags, operation.notes)

    with ops.run(name="via run", tags=["sweep-7"], total_epochs=1) as run:
        run.log(0, val_loss=0.5)
    made = ops.get_operation(run.operation_id)
    assert (made.name, made.tags) == ("via run", ["sweep-7"])


def test_a_name_recorded_in_the_metadata_becomes_the_name(ops: TrainOps) -> None:
    """How runs were titled before they had a name (the dashboard read metadata.name): it is their name now."""
    operation = ops.create_operation(metadata={"name": "old style"})
    assert operation.name == "old style" and operation.metadata.model_extra == {"name": "old style"}
    assert ops.create_operation(metadata={"name": "x\ny"}).name is None  # not a valid name: left in metadata only


@pytest.mark.parametrize(
    "name", ["family \U0001f468\u200d\U0001f469\u200d\U0001f467", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"]
)
def test_joiners_that_real_text_is_written_with_are_allowed_in_a_name(ops: TrainOps, name: str) -> None:
    """An emoji sequence (joined by U+200D) and a Persian word (U+200C) are names; a zero-width space is not."""
    assert ops.create_operation(name=name).name == name
    with pytest.raises(InvalidInputError, match="control character U\\+200B"):
        ops.create_operation(name="hid\u200bden")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "x" * 129}, "a name has 1 to 128 characters"),
        ({"name": "   "}, "(spaces at its ends do not count), got only spaces;"),
        ({"name": "two\nlines"}, "control character U+000A"),
        ({"name": "bidi\u202eevil"}, "control character U+202E"),
        ({"tags": ["has space"]}, "tag 'has space' is invalid"),
        ({"tags": ["-leading"]}, "starts with a letter or digit"),
        ({"tags": ["x" * 65]}, "64"),
        ({"tags": [f"t{i}" for i in range(33)]}, "32"),
        ({"tags": "baseline"}, "tags"),
        ({"notes": "x" * 10_001}, "10,000"),
        ({"notes": "nul\x00"}, "NUL"),
    ],
)
def test_hostile_names_tags_and_notes_are_refused_saying_why(
    ops: TrainOps, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        ops.create_operation(**fields)
    operation = ops.create_operation()
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        ops.update_operation(operation.operation_id, **fields)
    assert ops.get_operation(operation.operation_id).name is None


def test_rename_tag_and_annotate_later_in_any_status(ops: TrainOps) -> None:
    operation_id = finished(ops, [0.5], tags=["draft", "a"], metadata={"strategy": "s1", "mlflow_run_id": "6f"})
    renamed = ops.update_operation(operation_id, name="keeper")
    assert renamed.name == "keeper" and renamed.tags == ["draft", "a"]
    tagged = ops.update_operation(operation_id, add_tags=["best", "a"], remove_tags=["draft"])
    assert tagged.tags == ["a", "best"]
    noted = ops.update_operation(operation_id, notes="the one to beat", metadata={"mlflow_run_id": "7a"})
    assert (noted.notes, noted.metadata.model_extra, noted.name) == (
        "the one to beat",
        {"mlflow_run_id": "7a"},
        "keeper",
    )
    assert noted.metadata.strategy == "s1" and noted.status is OperationStatus.COMPLETED

    cleared = ops.update_operation(operation_id, name=None, tags=None, notes=None)
    assert (cleared.name, cleared.tags, cleared.notes) == (None, [], None)
    assert ids(ops, tags=["a"]) == []  # the filter follows the tags

    replaced = ops.update_operation(operation_id, tags=["x", "y", "x"])
    assert replaced.tags == ["x", "y"]
    with pytest.raises(InvalidInputError, match="either tags"):
        ops.update_operation(operation_id, tags=["z"], add_tags=["w"])
    with pytest.raises(InvalidInputError, match="nothing to change"):
        ops.update_operation(operation_id)
    # update_metadata still changes the metadata only
    assert ops.update_metadata(operation_id, {"notes_in_metadata": "kept apart"}).tags == ["x", "y"]


def test_filters_combine_and_search_ignores_case(ops: TrainOps) -> None:
    first = finished(
        ops,
        [0.4],
        name="ResNet baseline",
        tags=["baseline", "cifar"],
        metadata={"strategy": "mean_reversion", "symbol": "EURUSD", "timeframe": "1h"},
    )
    second = finished(
        ops,
        [0.3],
        name="resnet wide",
        tags=["cifar"],
        notes="Wider blocks, 50% more channels",
        metadata={"strategy": "momentum", "symbol": "AAPL", "timeframe": "1d", "task": "image_classification"},
    )
    pending = ops.create_operation("evaluation", name="eval", tags=["baseline"])
    everything = [pending.operation_id, second, first]
    assert ids(ops) == everything

    assert ids(ops, status=[OperationStatus.PENDING]) == [pending.operation_id]
    assert ids(ops, operation_type="evaluation") == [pending.operation_id]
    assert ids(ops, name="RESNET BASELINE") == [first]
    assert ids(ops, name="resnet") == []  # the whole name; q finds part of one
    assert ids(ops, tags=["baseline"]) == [pending.operation_id, first]
    assert ids(ops, tags=["baseline", "cifar"]) == [first]
    assert ids(ops, tags=["cifar", "nowhere"]) == []
    assert ids(ops, strategy="momentum") == [second]
    assert ids(ops, symbol="EURUSD") == [first]
    assert ids(ops, timeframe="1d", tags=["cifar"]) == [second]
    assert ids(ops, q="resnet") == [second, first]
    assert ids(ops, q="50% MORE") == [second]  # notes; LIKE's wildcards are plain characters
    assert ids(ops, q="5_%") == []
    assert ids(ops, q="momentum") == [second]  # strategy
    assert ids(ops, q="classification") == [second]  # task
    assert ids(ops, q="aapl") == [second]  # symbol
    assert ids(ops, q="CIFA") == [second, first]  # a tag
    assert ids(ops, q=first[-8:]) == [first]  # the id
    assert ops.list_operations(tags=["baseline"]).total == 2

    middle = ops.get_operation(second).created_at
    assert ids(ops, created_after=middle) == [pending.operation_id, second]
    assert ids(ops, created_before=middle) == [first]
    assert ids(ops, created_after=middle, created_before=middle + timedelta(microseconds=1)) == [second]
    assert ids(ops, created_after=datetime.now(UTC) + timedelta(days=1)) == []
    with pytest.raises(InvalidInputError, match="no time zone"):
        ops.list_operations(created_after=datetime(2026, 1, 1))


def test_sort_by_a_metrics_best_value_follows_its_direction(ops: TrainOps) -> None:
    low = finished(ops, [0.9, 0.2, 0.5])  # best val_loss 0.2, best val_accuracy 0.8
    high = finished(ops, [0.6, 0.7])  # 0.6 / 0.4
    middle = finished(ops, [0.8, float("nan"), 0.4])  # 0.4 / 0.6 (NaN never best)
    silent = finished(ops, [])  # never reported: last in either order
    assert ids(ops, sort="best:val_loss") == [low, middle, high, silent]  # a loss: lowest first
    assert ids(ops, sort="best:val_accuracy") == [low, middle, high, silent]  # a score: highest first
    assert ids(ops, sort="best:val_loss", order="desc") == [high, middle, low, silent]
    assert ids(ops, sort="created", order="asc") == [low, high, middle, silent]
    assert ids(ops, sort="best:val_loss", tags=["none"]) == []

    with pytest.raises(InvalidInputError, match=r"created .* duration .* best:<metric>"):
        ops.list_operations(sort="loss")
    with pytest.raises(InvalidInputError, match="metric name"):
        ops.list_operations(sort="best:")


def test_sort_by_duration_puts_runs_never_started_last(ops: TrainOps) -> None:
    never = ops.create_operation().operation_id
    ran = finished(ops, [0.5])
    assert ids(ops, sort="duration") == [ran, never]
    assert ids(ops, sort="duration", order="asc") == [ran, never]


@pytest.mark.parametrize("sort", ["created", "best:val_loss", "duration"])
def test_cursor_pages_neither_skip_nor_repeat_while_runs_are_created(ops: TrainOps, sort: str) -> None:
    existing = {finished(ops, [0.1 * (i % 4) + 0.1]) for i in range(7)}  # equal best values: ties on the id
    existing.add(ops.create_operation().operation_id)  # no value: last
    seen: list[str] = []
    page = ops.list_operations(limit=3, sort=sort, tags=None)
    pages = 1
    while True:
        seen += [item.operation_id for item in page.items]
        assert page.total >= len(existing)
        finished(ops, [0.05])  # a new run between pages: the best of all, the newest, as long as any
        if page.next_cursor is None:
            break
        page = ops.list_operations(limit=3, sort=sort, cursor=page.next_cursor)
        pages += 1
    assert len(seen) == len(set(seen)), "a run was listed twice"
    assert existing <= set(seen), f"runs skipped: {existing - set(seen)}"
    assert pages >= 3


def test_a_cursor_belongs_to_its_list(ops: TrainOps) -> None:
    for _ in range(3):
        finished(ops, [0.5], tags=["a"])
    cursor = ops.list_operations(limit=1, tags=["a"]).next_cursor
    assert cursor is not None
    assert len(ops.list_operations(limit=5, tags=["a"], cursor=cursor).items) == 2
    with pytest.raises(InvalidInputError, match="other filters or another sort"):
        ops.list_operations(limit=1, cursor=cursor)
    with pytest.raises(InvalidInputError, match="other filters or another sort"):
        ops.list_operations(limit=1, tags=["a"], sort="best:val_loss", cursor=cursor)
    with pytest.raises(InvalidInputError, match="not one this list handed out"):
        ops.list_operations(cursor="not-a-cursor")
    with pytest.raises(InvalidInputError, match="either cursor"):
        ops.list_operations(tags=["a"], cursor=cursor, offset=1)
    assert ops.list_operations(limit=3, tags=["a"]).next_cursor is None  # the last page says so


def test_include_best_lists_each_runs_best_value(ops: TrainOps) -> None:
    run = finished(ops, [0.9, 0.3, 0.6])
    listed = ops.list_operations(include_best=True).items[0]
    assert listed.operation_id == run and listed.best is not None
    assert (listed.best.metric, listed.best.value, listed.best.epoch) == ("val_loss", pytest.approx(0.3), 1)
    assert ops.list_operations().items[0].best is None
