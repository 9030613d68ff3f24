"""Migration 0004: operations get a name, tags and notes; a run that recorded a ``name`` in its metadata before
(how the dashboard titled runs) has it as its name after the upgrade, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from tests.store.test_steps import fresh_database_url  # noqa: F401 (the fixture: a database no migration touched)
from trainops.core.listing import OperationFilter
from trainops.store import OperationStore, create_database_engine, current_revision, upgrade
from trainops.store.migrate import SCHEMA_REVISION
from trainops.store.tables import operations

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STORED_NAMES = {
    "op_training_20261201_120000_0000000a": {"name": "  resnet sweep  ", "strategy": "s"},  # kept, trimmed
    "op_training_20261201_120000_0000000b": {"name": "two\nlines"},  # not a name: stays in metadata only
    "op_training_20261201_120000_0000000c": {"name": 7},
    "op_training_20261201_120000_0000000d": {"name": "n" * 129},
    "op_training_20261201_120000_0000000e": {"strategy": "no name"},
    "op_training_20261201_120000_0000000f": None,
}


def test_a_0003_database_upgrades_and_names_runs_from_their_metadata(fresh_database_url: str) -> None:  # noqa: F811
    engine = create_database_engine(fresh_database_url)
    try:
        assert upgrade(engine, "0003") == "0003"
        with engine.begin() as connection:
            for operation_id, metadata in STORED_NAMES.items():
                connection.execute(
                    insert(operations).values(
                        id=operation_id,
                        operation_type="training",
                        status="completed",
                        created_at=NOW,
                        updated_at=NOW,
                        metadata=metadata,
                    )
                )
        assert upgrade(engine) == SCHEMA_REVISION == current_revision(engine) == "0004"

        store = OperationStore(engine)
        names = {operation_id: store.get(operation_id).name for operation_id in STORED_NAMES}
        assert names == {
            "op_training_20261201_120000_0000000a": "resnet sweep",
            "op_training_20261201_120000_0000000b": None,
            "op_training_20261201_120000_0000000c": None,
            "op_training_20261201_120000_0000000d": None,
            "op_training_20261201_120000_0000000e": None,
            "op_training_20261201_120000_0000000f": None,
        }
        named = store.get("op_training_20261201_120000_0000000a")
        assert named.metadata.model_extra == {"name": "  resnet sweep  "} and named.tags == []  # metadata as it was
        found, total, _, _ = store.list_operations(OperationFilter(name="RESNET SWEEP"))
        assert [operation.operation_id for operation in found] == ["op_training_20261201_120000_0000000a"]
        assert total == 1
    finally:
        engine.dispose()
