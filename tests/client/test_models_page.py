"""Named models page on every interface: ``list_models_page`` (limit, cursor, next_cursor) on both transports and
both databases, ``list_models`` unchanged for existing callers, and ``trainops models list --limit --cursor``;
a model whose source run was deleted says so in ``models list`` and ``models show``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from trainops.cli.main import app
from trainops.client import LocalTrainOps, TrainOps
from trainops.core.epoch import EpochRecord
from trainops.errors import InvalidInputError
from trainops.service.bootstrap import open_service
from trainops.settings import Settings
from trainops.store.engine import create_database_engine
from trainops.store.models import ModelRecord, ModelStore

START = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def save(settings: Settings) -> Iterator[ModelStore]:
    assert settings.database_url is not None
    engine = create_database_engine(settings.database_url)
    yield ModelStore(engine)
    engine.dispose()


def insert(store: ModelStore, index: int, *, source: str | None = None) -> None:
    saved_at = START + timedelta(minutes=index)
    store.insert(
        ModelRecord(
            model_id=0,
            name=f"model-{index}",
            version_path=f"mr/v{index}",
            strategy="mean_reversion",
            symbol="EURUSD",
            timeframe="1h",
            source_operation=source,
            description=None,
            metrics={},
            size_bytes=0,
            created_at=saved_at,
            saved_at=saved_at,
        )
    )


def ended_run(ops: TrainOps) -> str:
    operation_id = ops.create_operation(total_epochs=1).operation_id
    ops.start_operation(operation_id)
    ops.add_epochs(operation_id, [EpochRecord(epoch=0, val_loss=0.5)])
    ops.finish_operation(operation_id)
    return operation_id


def test_models_page_with_a_cursor_on_both_transports(ops: TrainOps, save: ModelStore) -> None:
    for index in range(5):
        insert(save, index)

    everything = ops.list_models_page()
    assert (everything.count, everything.next_cursor) == (5, None)
    assert [model.model_name for model in ops.list_models()] == [f"model-{i}" for i in (4, 3, 2, 1, 0)]

    seen: list[str] = []
    page = ops.list_models_page(limit=2)
    while True:
        assert page.count == len(page.models) <= 2
        seen += [model.model_name for model in page.models]
        if page.next_cursor is None:
            break
        page = ops.list_models_page(limit=2, cursor=page.next_cursor)
    assert seen == ["model-4", "model-3", "model-2", "model-1", "model-0"]

    first = ops.list_models_page(limit=2)
    assert [m.model_name for m in ops.list_models(limit=2, cursor=first.next_cursor)] == ["model-2", "model-1"]
    with pytest.raises(InvalidInputError, match="limit"):
        ops.list_models_page(cursor=first.next_cursor)
    with pytest.raises(InvalidInputError, match="other filters"):
        ops.list_models_page(limit=2, cursor=first.next_cursor, strategy="other")
    with pytest.raises(InvalidInputError):
        ops.list_models_page(limit=0)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["models", *args], catch_exceptions=False, env={"COLUMNS": "300"})
    return result.exit_code, result.stdout, result.stderr


def test_cli_pages_models_and_marks_a_deleted_source_run(settings: Settings, save: ModelStore) -> None:
    with LocalTrainOps(open_service(settings), settings=settings) as ops:
        kept = ended_run(ops)
        gone = ended_run(ops)
        insert(save, 0, source=kept)
        insert(save, 1, source=gone)
        insert(save, 2)
        assert ops.delete_operation(gone).models_kept == ["model-1"]

    code, out, err = invoke("list", "--limit", "2")
    assert code == 0, err
    assert "model-2" in out and "model-1" in out and "model-0" not in out
    assert f"{gone} (deleted)" in out
    cursor = out.split("More: add --cursor ", 1)[1].split()[0]
    code, out, err = invoke("list", "--limit", "2", "--cursor", cursor)
    assert code == 0, err
    assert "model-0" in out and "model-1" not in out and "More:" not in out
    assert kept in out and f"{kept} (deleted)" not in out

    code, out, err = invoke("list", "--limit", "1", "--json")
    page = json.loads(out)
    assert [model["model_name"] for model in page["models"]] == ["model-2"] and page["next_cursor"]
    code, out, err = invoke("list", "--json")
    assert [model["model_name"] for model in json.loads(out)] == ["model-2", "model-1", "model-0"]

    code, out, err = invoke("show", "model-1")
    assert code == 0, err
    assert f"{gone} (deleted)" in out
    code, out, err = invoke("show", "model-0")
    assert kept in out and "(deleted)" not in out

    code, out, err = invoke("list", "--limit", "0")
    assert code != 0 and "--limit" in err
