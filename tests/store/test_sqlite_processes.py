"""SQLite as the meeting point of several processes: a trainer in one, readers and cancellers in others."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trainops.core import EpochRecord, OperationStatus
from trainops.errors import ServiceUnavailableError
from trainops.service.bootstrap import open_service
from trainops.settings import Settings
from trainops.store import OperationStore, create_database_engine

TRAINER = textwrap.dedent(
    """
    import sys, time
    import trainops
    from trainops.settings import Settings
    ops = trainops.connect(settings=Settings(home=sys.argv[1]))
    with ops.run(total_epochs=1000) as run:
        print(run.operation_id, flush=True)
        for epoch in range(1000):
            run.log(epoch, train_loss=1.0 / (epoch + 1), val_loss=1.0 / (epoch + 1))
            if run.should_stop():
                break
            time.sleep(0.01)
    print("stopped at", epoch, flush=True)
    """
)


def test_a_cancel_from_another_process_stops_the_trainer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    trainer = subprocess.Popen(
        [sys.executable, "-c", TRAINER, str(home)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert trainer.stdout is not None
    operation_id = trainer.stdout.readline().strip()
    service = open_service(Settings(home=home))
    try:
        # Read while the other process writes (WAL: readers never block the writer).
        while service.get(operation_id).epochs_completed < 5:
            assert trainer.poll() is None, trainer.stderr.read() if trainer.stderr else ""
        service.cancel(operation_id, "seen enough", requested_by="test")
        out, err = trainer.communicate(timeout=60)
    finally:
        if trainer.poll() is None:
            trainer.kill()
    assert trainer.returncode == 0, err
    assert "stopped at" in out
    operation = service.get(operation_id)
    assert operation.status is OperationStatus.CANCELLED
    assert operation.cancel_reason == "seen enough"
    assert 5 <= operation.epochs_completed < 1000
    history = service.metrics(operation_id).metrics.epochs
    assert [record.epoch for record in history] == list(range(operation.epochs_completed))
    service.store.engine.dispose()


def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = "import sys; from trainops.service.bootstrap import open_service; from trainops.settings import Settings; "
    script += "open_service(Settings(home=sys.argv[1]))"
    starters = [subprocess.Popen([sys.executable, "-c", script, str(home)], stderr=subprocess.PIPE) for _ in range(4)]
    errors = [starter.communicate(timeout=60)[1] for starter in starters]
    assert [starter.returncode for starter in starters] == [0, 0, 0, 0], errors
    service = open_service(Settings(home=home))
    operation = service.create()
    assert service.add_epoch(operation.operation_id, EpochRecord(epoch=0)).accepted == 1
    service.store.engine.dispose()


def test_a_write_lock_held_too_long_is_a_retryable_503_and_reads_go_on(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    service = open_service(Settings(home=tmp_path, database_url=f"sqlite:///{path}"))
    operation = service.create(total_epochs=3)
    service.add_epoch(operation.operation_id, EpochRecord(epoch=0, val_loss=1.0))
    impatient = OperationStore(create_database_engine(f"sqlite:///{path}", busy_timeout=0.2))

    holder = sqlite3.connect(path, isolation_level=None)  # another process's long write, in effect
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(ServiceUnavailableError, match=r"database is busy.*database is locked"):
            impatient.write_epochs(operation.operation_id, [EpochRecord(epoch=1, val_loss=0.9)], datetime.now(UTC))
        assert impatient.get(operation.operation_id).epochs_completed == 1  # WAL: the read did not wait
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    impatient.write_epochs(operation.operation_id, [EpochRecord(epoch=1, val_loss=0.9)], datetime.now(UTC))
    assert service.get(operation.operation_id).epochs_completed == 2
    impatient.engine.dispose()
    service.store.engine.dispose()
