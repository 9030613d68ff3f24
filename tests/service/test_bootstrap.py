"""The database schema checks behind ``trainops db``: what a database is at, and upgrading it."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainops.errors import ConfigurationError, InvalidInputError
from trainops.service import bootstrap
from trainops.service.bootstrap import database_status, upgrade_database
from trainops.settings import Settings
from trainops.store import head_revision


def fresh(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'fresh.db'}")


def test_a_fresh_database_is_upgraded_step_by_step_then_left_alone(tmp_path: Path) -> None:
    settings = fresh(tmp_path)
    head = head_revision()

    before = database_status(settings)
    assert (before.revision, before.required, before.current) == (None, head, False)

    partial = upgrade_database(settings, "0001")
    assert (partial.from_revision, partial.to_revision) == (None, "0001")
    assert database_status(settings).model_dump() == {"revision": "0001", "required": head, "current": False}

    done = upgrade_database(settings)
    assert (done.database, done.from_revision, done.to_revision) == (settings.resolved_database_url, "0001", head)
    again = upgrade_database(settings)
    assert (again.from_revision, again.to_revision) == (head, head)
    assert database_status(settings).current


def test_an_unknown_revision_lists_the_migrations_and_changes_nothing(tmp_path: Path) -> None:
    settings = fresh(tmp_path)
    with pytest.raises(
        InvalidInputError, match=r"no migration has revision 'bogus': use head \(the newest\) or one of 0001, 0002"
    ):
        upgrade_database(settings, "bogus")
    assert database_status(settings).revision is None


def test_the_test_database_is_current(settings: Settings) -> None:
    status = database_status(settings)

    assert status.current and status.revision == head_revision()
    assert upgrade_database(settings).from_revision == head_revision()


def test_the_upgrade_hides_the_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite URLs have no password, so look at the URL the upgrade reports for a PostgreSQL one without connecting.
    monkeypatch.setattr(bootstrap, "migrate", lambda engine, revision: (None, "0002"))
    settings = Settings(home=tmp_path, database_url="postgresql+psycopg://trainops:s3cret@db.example:5432/trainops")

    done = upgrade_database(settings)

    assert "s3cret" not in done.database
    assert done.database == "postgresql+psycopg://trainops:***@db.example:5432/trainops"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", r"'not a url' is not a database URL; use e\.g\. sqlite:////path/trainops\.db"),
        ("mysql://db/trainops", r"unsupported database 'mysql' .*: trainops runs on sqlite or postgresql"),
    ],
)
def test_a_bad_database_url_says_what_to_use(tmp_path: Path, url: str, message: str) -> None:
    settings = Settings(home=tmp_path, database_url=url)

    with pytest.raises(ConfigurationError, match=message):
        database_status(settings)
    with pytest.raises(ConfigurationError, match=message):
        upgrade_database(settings)
