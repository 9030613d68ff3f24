"""What the database layer says when the database is misnamed, full, read-only, away, or upgraded by several
processes at once: one clear error, retryable where retrying helps, and never a traceback."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.store.test_steps import fresh_database_url  # noqa: F401  # a fixture: an empty database
from trainops.core import EpochRecord
from trainops.errors import ConfigurationError, InvalidInputError, ServiceUnavailableError
from trainops.service.bootstrap import open_service, upgrade_database
from trainops.settings import Settings
from trainops.store import OperationStore, create_database_engine, current_revision, head_revision
from trainops.store.engine import parse_database_url
from trainops.store.transactions import unavailable_as_domain_error


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://tmp/trainops.db", r"names a host \('tmp'\).* takes four slashes, sqlite:////tmp/trainops\.db"),
        ("postgresql+asyncpg://u@h/db", r"does not use the driver 'postgresql\+asyncpg'.*postgresql\+psycopg://"),
        ("postgresql+pg8000://u:secret@h/db", r"does not use the driver 'postgresql\+pg8000' \(.*u:\*\*\*@h/db\)"),
        ("postgresql+psycopg://u@h:notaport/db", "has a port that is not a number"),
    ],
)
def test_a_database_url_that_cannot_work_is_one_clear_error(url: str, message: str) -> None:
    """Each of these ended every command in a 57-70 line traceback."""
    with pytest.raises(ConfigurationError, match=message) as refused:
        create_database_engine(url)
    assert "secret" not in refused.value.message


def test_a_postgres_url_as_hosts_hand_them_out_is_taken() -> None:
    assert parse_database_url("postgres://u@h/db").drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("words", "said"),
    [
        ("database or disk is full", "the database cannot be written: the disk holding it is full"),
        ("attempt to write a readonly database", "the database cannot be written: its file is read-only"),
    ],
)
def test_a_database_that_cannot_take_writes_is_a_retryable_error_saying_why(
    tmp_path: Path, words: str, said: str
) -> None:
    """A full disk or a read-only file answered HTTP 500 "internal error", and a traceback in the CLI."""
    connection = sqlite3.connect(tmp_path / "trainops.db", isolation_level=None)
    connection.execute("CREATE TABLE runs (id INTEGER)")
    if "readonly" in words:
        connection.execute("PRAGMA query_only = ON")  # SQLite's own read-only refusal, as for a read-only file

    def write() -> None:
        with unavailable_as_domain_error():
            if "full" in words:  # a full disk cannot be made here: SQLite's own words for it
                raise sqlite3.OperationalError(words)
            connection.execute("INSERT INTO runs VALUES (1)")

    try:
        with pytest.raises(ServiceUnavailableError, match=f"^{said}") as refused:
            write()
    finally:
        connection.close()
    assert refused.value.message.endswith(f"nothing was changed ({words})")


def test_an_unreachable_postgresql_is_not_given_sqlite_advice() -> None:
    engine = create_database_engine("postgresql+psycopg://trainops@127.0.0.1:1/trainops")
    try:
        with pytest.raises(ServiceUnavailableError) as refused, unavailable_as_domain_error(), engine.connect():
            pass
        assert "is the database server running, and reachable from here?" in refused.value.message
        assert "SQLite" not in refused.value.message and "\n" not in refused.value.message
        # a health check on a database that went away is an outage (503), not a bad URL (500)
        with pytest.raises(ServiceUnavailableError, match="the database does not answer"):
            current_revision(engine, serving=True)
    finally:
        engine.dispose()


def test_upgrades_started_together_take_turns_and_say_what_each_did(fresh_database_url: str) -> None:  # noqa: F811
    """On PostgreSQL one of three upgrades started at once crashed (2 rounds in 6), and two said they upgraded."""
    settings = Settings(database_url=fresh_database_url)
    upgrades: list[tuple[str | None, str] | BaseException] = []

    def upgrade() -> None:
        try:
            done = upgrade_database(settings)
            upgrades.append((done.from_revision, done.to_revision))
        except BaseException as error:
            upgrades.append(error)

    threads = [threading.Thread(target=upgrade) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    head = head_revision()
    assert sorted(upgrades, key=str) == sorted([(None, head), (head, head), (head, head)], key=str)


def test_an_upgrade_to_an_older_revision_says_trainops_does_not_downgrade(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'trainops.db'}")
    upgrade_database(settings)

    with pytest.raises(
        InvalidInputError, match=f"at revision {head_revision()}, past 0002: trainops does not downgrade"
    ):
        upgrade_database(settings, "0002")


@pytest.mark.postgres
def test_a_postgresql_lock_held_too_long_is_a_retryable_503_and_reads_go_on(postgres_database_url: str) -> None:
    """PostgreSQL waited for a lock for ever: one stuck transaction hung every write to its operation."""
    service = open_service(Settings(database_url=postgres_database_url))
    operation = service.create(total_epochs=3)
    service.add_epoch(operation.operation_id, EpochRecord(epoch=0, val_loss=1.0))
    impatient = OperationStore(create_database_engine(postgres_database_url, busy_timeout=0.2))

    with service.store.engine.connect() as holder:  # someone's open transaction, holding the operation's row
        holder.execute(text("SELECT 1 FROM operations WHERE id = :id FOR UPDATE"), {"id": operation.operation_id})
        with pytest.raises(ServiceUnavailableError, match=r"busy or unreachable.*lock timeout.*held a lock"):
            impatient.write_epochs(operation.operation_id, [EpochRecord(epoch=1, val_loss=0.9)], datetime.now(UTC))
        assert impatient.get(operation.operation_id).epochs_completed == 1  # the read did not wait
        holder.rollback()
    impatient.write_epochs(operation.operation_id, [EpochRecord(epoch=1, val_loss=0.9)], datetime.now(UTC))
    assert service.get(operation.operation_id).epochs_completed == 2
    impatient.engine.dispose()
    service.store.engine.dispose()
