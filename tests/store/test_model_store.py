"""The models table: what a save answers, what a delete returns, and which models a symbol filter finds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from trainops.errors import NotFoundError
from trainops.store import create_database_engine
from trainops.store.models import ModelRecord, ModelStore


@pytest.fixture
def engine(database_url: str) -> Engine:
    engine = create_database_engine(database_url)
    yield engine
    engine.dispose()


def record(name: str, version_path: str = "s/EURUSD_1h_v1", symbol: str = "EURUSD") -> ModelRecord:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return ModelRecord(
        model_id=0,
        name=name,
        version_path=version_path,
        strategy="s",
        symbol=symbol,
        timeframe="1h",
        source_operation=None,
        description=None,
        metrics={},
        size_bytes=1,
        created_at=now,
        saved_at=now,
    )


def test_each_save_answers_with_the_row_it_wrote_while_others_overwrite_the_name(engine: Engine) -> None:
    """The answer was read back by name after the commit, so a save racing others with overwrite could answer
    with another save's row; and an overwrite whose delete and insert another overwrite came between failed as
    "already exists; send overwrite"."""
    store = ModelStore(engine)
    answers: list[tuple[str, ModelRecord]] = []
    start = threading.Barrier(6)

    def save(writer: int) -> None:
        start.wait()
        for round_ in range(15):
            path = f"s/EURUSD_1h_v{writer * 100 + round_ + 1}"
            answers.append((path, store.insert(record("race", path), replace=True)))

    threads = [threading.Thread(target=save, args=(writer,)) for writer in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(answers) == 90  # none refused
    assert all(answer.version_path == path for path, answer in answers)
    assert store.get("race").version_path in {path for path, _ in answers}


def test_a_delete_returns_the_row_it_removed(engine: Engine) -> None:
    store = ModelStore(engine)
    saved = store.insert(record("gone"))

    assert store.delete("gone") == saved
    with pytest.raises(NotFoundError, match="no model named 'gone'"):
        store.delete("gone")


def test_a_symbol_filter_finds_the_models_trained_on_several_symbols_too(engine: Engine) -> None:
    store = ModelStore(engine)
    for name, symbol in [("one", "EURUSD"), ("two", "EURUSD+GOOG"), ("three", "GBPUSD+EURUSD+GOOG"), ("x", "EURUSDX")]:
        store.insert(record(name, symbol=symbol))
    store.insert(record("odd", symbol="A_B"))

    assert sorted(model.name for model in store.list_models(symbol="EURUSD")) == ["one", "three", "two"]
    assert sorted(model.name for model in store.list_models(symbol="GOOG")) == ["three", "two"]
    assert [model.name for model in store.list_models(symbol="A_B")] == ["odd"]
    assert store.list_models(symbol="A%") == [] and store.list_models(symbol="AXB") == []
