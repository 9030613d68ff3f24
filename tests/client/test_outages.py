"""Reporting that survives: a server killed with SIGKILL and restarted, a stop asked while it was away, what the
end could not send kept on disk and delivered by ``trainops sync``, and one refused epoch that costs no other.

The server runs as a process of its own (``tests/server_process.py``) on the test's database, SQLite and
PostgreSQL; the client loop is ``tests/resilience_loop.py``, which a Ray job can run as well.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.live_server import LiveServer
from tests.resilience_loop import LoopOutcome, report_epochs
from tests.server_process import ServerProcess
from trainops.cli.main import app
from trainops.client import HttpTrainOps, LocalTrainOps, TrainOps
from trainops.client.run import Run
from trainops.client.unsent import UnsentFile, register, sync_file
from trainops.core import EpochRecord, OperationStatus
from trainops.core.operation import new_operation_id
from trainops.errors import ServiceUnavailableError
from trainops.schemas.operations import CreateOperationRequest
from trainops.service.bootstrap import open_service
from trainops.settings import Settings

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "300"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def server(database_url: str, settings: Settings, tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(database_url, tmp_path / "server") as process:
        yield process


@pytest.fixture
def local(settings: Settings) -> Iterator[LocalTrainOps]:
    """The same database in this process: what an agent on another API process would see and do."""
    client = LocalTrainOps(open_service(settings))
    yield client
    client.close()


def test_a_loop_outlives_a_server_killed_mid_run_and_loses_no_epoch(server: ServerProcess) -> None:
    """The issue's kill -9 test: 300 epochs, should_stop() every epoch, the server SIGKILLed mid-run and restarted
    on the same port and database 10 s later: the run ends completed with 300 of 300 epochs and no exception."""
    reached = threading.Event()
    outcome: list[LoopOutcome] = []

    def loop() -> None:
        outcome.append(report_epochs(server.url, 300, pause=0.1, on_epoch=lambda e: e == 80 and reached.set()))

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        assert reached.wait(120), "the loop did not reach epoch 80"
        server.kill()
        time.sleep(10)
        server.start()
    finally:
        thread.join(240)
    assert not thread.is_alive()
    result = outcome[0]
    assert result.exception is None, result.exception
    assert (result.epochs_logged, result.status, result.unsent) == (300, "completed", None)
    assert result.slowest_check < 0.5  # should_stop() never waited on the dead server

    with HttpTrainOps(server.url) as ops:
        assert result.operation_id is not None
        stored = ops.get_operation(result.operation_id)
        epochs = ops.get_metrics(result.operation_id).metrics.epochs
    assert stored.status is OperationStatus.COMPLETED
    assert [epoch.epoch for epoch in epochs] == list(range(300))
    assert stored.epochs_completed == 300


def test_a_stop_asked_while_the_server_was_down_is_learnt_once_it_is_back(
    server: ServerProcess, local: LocalTrainOps
) -> None:
    with HttpTrainOps(server.url) as ops:
        run = Run(ops, ops.create_operation(total_epochs=1000), flush_interval=0.05, stop_check_interval=0.2)
        with run:
            run.log(0, val_loss=1.0)
            run.flush()
            server.kill()
            # an agent stops the run through another API process on the same database
            local.cancel_operation(run.operation_id, "overfitting since epoch 0", requested_by="agent")
            epoch = 1
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:  # the loop goes on; it cannot know yet
                started = time.monotonic()
                assert run.should_stop() is None
                assert time.monotonic() - started < 0.1
                run.log(epoch, val_loss=1.0 + epoch)
                epoch += 1
                time.sleep(0.05)
            assert not run.reachable  # what code that would ask the server something can check first
            server.start()
            deadline = time.monotonic() + 30
            while (request := run.should_stop()) is None and time.monotonic() < deadline:
                run.log(epoch, val_loss=1.0 + epoch)
                epoch += 1
                time.sleep(0.05)
            assert request is not None and run.reachable
            assert (request.reason, request.requested_by) == ("overfitting since epoch 0", "agent")
        assert run.unsent is None
        ended = ops.get_operation(run.operation_id)
        assert ended.status is OperationStatus.CANCELLED
        assert ended.epochs_completed == epoch  # every epoch logged during the outage landed too


def test_what_the_end_could_not_send_is_spilled_and_trainops_sync_delivers_it(
    server: ServerProcess, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    ops = HttpTrainOps(server.url, retries=0)
    run = Run(ops, ops.create_operation(total_epochs=30), flush_interval=0.05, flush_timeout=1.0, max_queued_epochs=5)
    unsent = settings.home / "unsent" / run.operation_id
    with caplog.at_level(logging.WARNING, logger="trainops.client"):
        with run:
            for epoch in range(10):
                run.log(epoch, val_loss=1.0 / (epoch + 1))
            run.flush()
            server.kill()
            for epoch in range(10, 30):
                run.log(epoch, val_loss=1.0 / (epoch + 1))
                run.step(epoch * 10, {"loss": 0.5})
            assert list(unsent.glob("*.jsonl")), "past max_queued_epochs, epochs go to disk during the run"
            run.result["best"] = 29
            ended_at = time.monotonic()
        waited = time.monotonic() - ended_at
    ops.close()

    assert 1.0 <= waited < 8.0  # the end waits flush_timeout, then gives up
    assert run.unsent is not None and (run.unsent.epochs, run.unsent.steps, run.unsent.end) == (20, 20, True)
    assert run.unsent.path is not None and run.unsent.path.parent == unsent
    assert len(list(unsent.glob("*.jsonl"))) == 1  # the spill of the run and its end: one file, in order
    assert f"kept in {run.unsent.path}" in caplog.text and f"trainops sync {run.operation_id}" in caplog.text

    code, listed, _ = invoke("sync", "--dry-run")
    assert code == 0
    assert f"{run.operation_id}: 20 epoch(s) (10-29), 20 step(s), the end (completed) for {server.url}" in listed
    assert run.unsent.path.exists()  # a dry run sends nothing

    code, _, error = invoke("sync", run.operation_id)  # the server is still down: kept, exit 1
    assert code == 1 and "cannot reach the trainops server" in error and run.unsent.path.exists()

    server.start()
    code, out, error = invoke("sync")  # to the server the run reported to, recorded in the file
    assert code == 0, error
    assert f"Synced {run.operation_id}: 20 epoch(s), 20 step(s); the operation is completed" in out
    assert not unsent.exists()
    with HttpTrainOps(server.url) as ops:
        operation = ops.get_operation(run.operation_id)
        epochs = ops.get_metrics(run.operation_id).metrics.epochs
        steps = ops.get_steps(run.operation_id).points
    assert operation.status is OperationStatus.COMPLETED and operation.result == {"best": 29}
    assert [epoch.epoch for epoch in epochs] == list(range(30))
    assert len(steps) == 20
    assert invoke("sync")[1].startswith("Nothing to sync")


def test_a_run_begun_while_the_server_is_down_registers_itself_once_it_is_up(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server is down when the run begins: the run begins offline under an id it chose, and once the server is
    started it registers the operation (name, tags, planned epochs as asked) and delivers every epoch and step."""
    server = ServerProcess(database_url, tmp_path / "server")  # its port is chosen; it is not started yet
    try:
        with HttpTrainOps(server.url, retries=0) as ops:
            with caplog.at_level(logging.WARNING, logger="trainops.client"):
                started, began = time.monotonic(), datetime.now(UTC)
                run = ops.run(total_epochs=20, name="begun offline", tags=["outage"], flush_interval=0.05)
                assert time.monotonic() - started < 5  # one refused connection, not a wait
            assert f"run {run.operation_id} begins offline" in caplog.text and server.url in caplog.text
            assert (run.registered, run.reachable, run.operation.status) == (False, False, OperationStatus.PENDING)
            with run:
                for epoch in range(5):
                    run.log(epoch, val_loss=1.0 / (epoch + 1))
                    run.step(epoch * 10, {"loss": 0.5})
                    assert run.should_stop() is None
                up = datetime.now(UTC)
                server.start()
                for epoch in range(5, 20):
                    run.log(epoch, val_loss=1.0 / (epoch + 1))
                    run.step(epoch * 10, {"loss": 0.5})
                    time.sleep(0.05)
                deadline = time.monotonic() + 30  # the next try comes after a back-off of up to 5 s
                while not run.registered and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert run.registered and run.reachable
            assert run.unsent is None
            operation = ops.get_operation(run.operation_id)
            epochs = ops.get_metrics(run.operation_id).metrics.epochs
            steps = ops.get_steps(run.operation_id).points
            listed = ops.list_operations()
    finally:
        server.stop()
    assert (operation.status, operation.name, operation.tags, operation.total_epochs) == (
        OperationStatus.COMPLETED,
        "begun offline",
        ["outage"],
        20,
    )
    assert operation.metadata.executor == "external"
    assert operation.started_at is not None and began <= operation.started_at < up  # when it began, not registered
    assert operation.created_at == operation.started_at
    assert [epoch.epoch for epoch in epochs] == list(range(20)) and len(steps) == 20
    assert [item.operation_id for item in listed.items] == [run.operation_id]  # registered once


class RegistrationGate(httpx.BaseTransport):
    """The way to a live server that answers 503 to registering an operation until :attr:`open` is set: the server
    was away when a run began, and is back before the run has registered itself."""

    def __init__(self) -> None:
        self.server = httpx.HTTPTransport()
        self.open = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/v1/operations" and not self.open.is_set():
            error = {"code": "service_unavailable", "message": "the server is starting"}
            return httpx.Response(503, json={"success": False, "error": error})
        return self.server.handle_request(request)

    def close(self) -> None:
        self.server.close()


def test_an_artifact_of_a_run_begun_offline_waits_for_its_registration(live_server: LiveServer, tmp_path: Path) -> None:
    """Before the run has registered itself, its artifact would reach a server that knows no such operation: the
    artifact waits a moment for the registration (asked for now, not at the run's next try in seconds), and says
    so when it does not come."""
    notes = tmp_path / "notes.txt"
    notes.write_text("lr 1e-3")
    gate = RegistrationGate()
    with HttpTrainOps(live_server.url, transport=gate, retries=0) as ops:
        run = ops.run(total_epochs=3, flush_interval=2)  # tries to register every 2, then 4, then 5 seconds
        with run:
            run.log(0, val_loss=1.0)
            asked = time.monotonic()
            not_yet = rf"^run {run.operation_id} is not registered with the server yet .*log the artifact again once"
            with pytest.raises(ServiceUnavailableError, match=not_yet):
                run.log_artifact(notes)
            assert time.monotonic() - asked < 4  # a moment, not the run's flush_timeout
            assert not run.registered

            gate.open.set()
            stored = run.log_artifact(notes, artifact_path="run")
            assert run.registered
        listed = ops.list_artifacts(run.operation_id)
        operation = ops.get_operation(run.operation_id)
    assert stored.path == "run/notes.txt" and listed == [stored]
    assert operation.status is OperationStatus.COMPLETED


def test_a_run_that_never_reaches_the_server_is_registered_by_trainops_sync(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    server = ServerProcess(database_url, tmp_path / "server")
    try:
        with HttpTrainOps(server.url, retries=0) as ops:
            began = datetime.now(UTC)
            run = ops.run(total_epochs=10, name="never reached", flush_interval=0.05)
            run.flush_timeout = 0.5
            with run:
                for epoch in range(10):
                    run.log(epoch, val_loss=1.0 / (epoch + 1))
                run.result["best"] = 9
        assert run.unsent is not None and (run.unsent.epochs, run.unsent.end) == (10, True)
        assert run.unsent.registration and "the operation's registration and 10 epoch(s) could not" in run.unsent.reason
        assert run.unsent.message.startswith(f"operation {run.operation_id}: its registration, 10 epoch(s), the run")

        code, listed, _ = invoke("sync", "--dry-run")
        assert code == 0
        assert f"{run.operation_id} (not registered yet: sync registers it first): 10 epoch(s) (0-9)" in listed
        code, listed, _ = invoke("sync", "--dry-run", "--json")
        assert json.loads(listed)[0]["registers"] is True

        server.start()
        synced = datetime.now(UTC)
        code, out, error = invoke("sync")
        assert code == 0, error
        assert f"Synced {run.operation_id} (registered now): 10 epoch(s); the operation is completed" in out
        with HttpTrainOps(server.url) as ops:
            operation = ops.get_operation(run.operation_id)
            epochs = ops.get_metrics(run.operation_id).metrics.epochs
    finally:
        server.stop()
    assert (operation.status, operation.name, operation.result) == (
        OperationStatus.COMPLETED,
        "never reached",
        {"best": 9},
    )
    assert [epoch.epoch for epoch in epochs] == list(range(10))
    assert operation.started_at is not None and began <= operation.started_at < synced
    assert invoke("sync")[1].startswith("Nothing to sync")


def test_registering_twice_under_one_id_registers_once(ops: TrainOps, tmp_path: Path) -> None:
    """What a run or ``trainops sync`` sends again after a lost answer: the second request finds the first's
    operation, and a spill file whose run was registered meanwhile syncs into it."""
    request = CreateOperationRequest(name="once", total_epochs=3, operation_id=new_operation_id("training"))
    first, created = register(ops, request)
    again, created_again = register(ops, request)
    assert (created, created_again) == (True, False) and again.operation_id == first.operation_id
    spill = UnsentFile(tmp_path, first.operation_id, None, request)
    spill.append_epochs([EpochRecord(epoch=e, val_loss=1.0) for e in range(3)])
    spill.close()
    result = sync_file(ops, spill.path)
    assert (result.registered, result.epochs) == (False, 3)
    assert ops.list_operations().total == 1


def test_sync_resends_without_duplicating_and_says_what_it_cannot_deliver(
    ops: TrainOps, settings: Settings, tmp_path: Path
) -> None:
    operation = ops.create_operation(total_epochs=10)
    ops.add_epochs(operation.operation_id, [EpochRecord(epoch=e, val_loss=1.0) for e in range(5)])
    spill = UnsentFile(tmp_path, operation.operation_id, None)
    spill.append_epochs([EpochRecord(epoch=e, val_loss=0.5) for e in range(10)])  # 0-4 landed already
    spill.close()

    result = sync_file(ops, spill.path)

    assert result.epochs == 10 and result.status is None
    epochs = ops.get_metrics(operation.operation_id).metrics.epochs
    assert [(epoch.epoch, epoch.val_loss) for epoch in epochs] == [(e, 0.5) for e in range(10)]
    assert ops.get_operation(operation.operation_id).epochs_completed == 10  # re-sent ones are not counted twice
    assert not spill.path.exists()

    ops.finish_operation(operation.operation_id)
    late = UnsentFile(tmp_path, operation.operation_id, None)
    late.append_epochs([EpochRecord(epoch=10)])
    late.close()
    with pytest.raises(Exception, match=r"already completed.*cannot be added\. Delete the file"):
        sync_file(ops, late.path)
    assert late.path.exists()


def test_one_refused_epoch_in_a_batch_is_dropped_alone_with_the_servers_message(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    year_0 = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))  # what this client's checks let through
    with LiveServer(settings) as live, HttpTrainOps(live.url, retries=0) as ops:
        run = Run(ops, ops.create_operation(total_epochs=20), flush_interval=30)  # one batch, sent at the end
        with caplog.at_level(logging.WARNING, logger="trainops.client"), run:
            for epoch in range(20):
                if epoch == 13:
                    run.epoch(EpochRecord.model_construct(epoch=13, val_loss=0.1, timestamp=year_0, metrics={}))
                else:
                    run.log(epoch, val_loss=1.0 / (epoch + 1))
        epochs = ops.get_metrics(run.operation_id).metrics.epochs
        status = ops.get_operation(run.operation_id).status

    assert [epoch.epoch for epoch in epochs] == [e for e in range(20) if e != 13]
    assert status is OperationStatus.COMPLETED and run.unsent is None
    refused = [record.getMessage() for record in caplog.records if "refused" in record.getMessage()]
    assert len(refused) == 1
    assert refused[0].startswith(f"trainops: operation {run.operation_id}: the server refused epoch 13, dropped: ")
    assert "timestamp 0001-01-01T00:00:00+01:00 is year 0 in UTC" in refused[0]


def test_the_loop_script_prints_its_outcome(live_server: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.resilience_loop import main

    assert main(["--url", live_server.url, "--epochs", "3", "--pause", "0"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert (outcome["epochs_logged"], outcome["status"], outcome["exception"]) == (3, "completed", None)


def test_epochs_are_stamped_when_logged_not_when_a_late_server_stores_them(ops: TrainOps) -> None:
    before = datetime.now(UTC)
    with ops.run(total_epochs=1, flush_interval=0.05) as run:
        run.log(0, val_loss=1.0)
        time.sleep(0.3)
    (epoch,) = ops.get_metrics(run.operation_id).metrics.epochs
    assert epoch.timestamp is not None and before <= epoch.timestamp < before + timedelta(seconds=0.3)
