"""A database that does not answer in time is a 503 the client may retry (``store/transactions.py``), the status
the OpenAPI document declares on every route that reads or writes it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient

from trainops.api import create_app
from trainops.service.bootstrap import open_service
from trainops.service.operations import OperationsService
from trainops.settings import Settings
from trainops.store import OperationStore, create_database_engine


def test_a_write_lock_held_past_the_busy_timeout_answers_503_and_reads_go_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trainops.db'}"
    settings = Settings(home=tmp_path / "home", database_url=url, reaper_interval=0)
    open_service(settings).store.engine.dispose()  # the schema
    impatient = OperationsService(OperationStore(create_database_engine(url, busy_timeout=0.2)))
    try:
        with TestClient(create_app(settings, service=impatient), base_url="http://testserver/api/v1") as client:
            assert client.post("/operations", json={"operation_type": "training"}).status_code == 201
            holder = sqlite3.connect(tmp_path / "trainops.db", isolation_level=None)  # another process's long write
            holder.execute("BEGIN IMMEDIATE")
            try:
                refused = client.post("/operations", json={"operation_type": "training"})
                listed = client.get("/operations")
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            retried = client.post("/operations", json={"operation_type": "training"})
    finally:
        impatient.store.engine.dispose()

    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["message"].startswith("the database is busy or unreachable")
    assert "nothing was changed, try again" in error["message"]
    # WAL: the read did not wait, and the refused write left nothing
    assert listed.status_code == 200 and listed.json()["data"]["total"] == 1
    assert retried.status_code == 201, retried.text
