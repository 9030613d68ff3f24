"""A Run ends its operation however the script around it ends: left unfinished at exit, with a result the server
cannot store, interrupted while its end waits, with ``sys.exit``, or ended on the server by someone else; and the
same late call answers the same on both transports."""

from __future__ import annotations

import _thread
import logging
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.live_server import LiveServer
from trainops import InvalidInputError, OperationStatus, TrainOps
from trainops.callbacks import TrainingCallbacks
from trainops.client import run as run_module
from trainops.client.http import HttpTrainOps
from trainops.client.local import LocalTrainOps
from trainops.client.run import Run
from trainops.core import EpochRecord, WriteAck
from trainops.errors import ConfigurationError, ConflictError, NotFoundError, ServiceUnavailableError
from trainops.service.bootstrap import open_service
from trainops.settings import Settings

TOKEN = "run-endings-token-0123456789"


@pytest.fixture
def local_ops(settings: Settings) -> Iterator[LocalTrainOps]:
    client = LocalTrainOps(open_service(settings))
    yield client
    client.close()


# -- a script that never finishes its run ---------------------------------------------------------------------

SCRIPT = """
import sys, trainops
ops = trainops.connect()
run = ops.run(total_epochs=5, name="left open")
for epoch in range(3):
    run.log(epoch, train_loss=1.0 / (epoch + 1))
{ending}
"""


def run_script(ending: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = SCRIPT.format(ending=textwrap.dedent(ending))
    return subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("transport", ["local", "http"])
@pytest.mark.parametrize(
    ("ending", "status", "error"),
    [
        ("", OperationStatus.COMPLETED, None),
        ("raise RuntimeError('out of memory')", OperationStatus.FAILED, "RuntimeError: out of memory"),
        (
            # a command that gives up on its own error (exit code 1) while its training thread runs on
            """
            import threading, time
            def train():
                with run:
                    time.sleep(60)
            threading.Thread(target=train, daemon=True).start()
            time.sleep(0.5)
            sys.exit(1)
            """,
            OperationStatus.FAILED,
            "the process exited while the run's `with` block still ran",
        ),
    ],
    ids=["exits", "raises", "leaves-a-training-thread"],
)
def test_a_run_left_unfinished_is_ended_as_the_script_exits_with_its_epochs(
    settings: Settings,
    local_ops: LocalTrainOps,
    tmp_path: Path,
    transport: str,
    ending: str,
    status: OperationStatus,
    error: str | None,
) -> None:
    """Over HTTP every epoch was lost and the operation stayed pending for good, without a word."""
    env = {"TRAINOPS_HOME": str(tmp_path), "TRAINOPS_DATABASE_URL": str(settings.database_url), "TRAINOPS_URL": ""}
    if transport == "http":
        with LiveServer(settings) as server:
            done = run_script(ending, {**env, "TRAINOPS_URL": server.url})
    else:
        done = run_script(ending, env)

    [operation] = local_ops.list_operations().items
    assert (operation.status, operation.error) == (status, error), done.stderr
    epochs = local_ops.get_metrics(operation.operation_id).metrics.epochs
    assert [epoch.epoch for epoch in epochs] == [0, 1, 2]
    assert f"run {operation.operation_id} was not finished" in done.stderr
    assert not list((tmp_path / "unsent").glob("**/*.jsonl"))  # nothing left for `trainops sync`


# -- the result --------------------------------------------------------------------------------------------------


def test_a_result_of_tensors_and_arrays_is_stored_as_numbers(ops: TrainOps) -> None:
    with ops.run() as run:
        run.result = {
            "test_accuracy": torch.tensor(0.5),
            "per_class": np.array([0.25, 0.75]),
            "best": np.float32(0.5),
            "checkpoint": Path("/runs/best.pt"),
        }

    stored = ops.get_operation(run.operation_id)
    assert stored.status is OperationStatus.COMPLETED
    assert stored.result == {
        "test_accuracy": 0.5,
        "per_class": [0.25, 0.75],
        "best": 0.5,
        "checkpoint": "/runs/best.pt",
    }


def test_a_result_the_server_cannot_store_never_leaves_the_run_running(
    ops: TrainOps, caplog: pytest.LogCaptureFixture
) -> None:
    """The end had raised, and a failure in the block was not even recorded: the run stayed running for good."""
    run = ops.run()

    def train() -> None:
        with run:
            run.result = {"model": object()}
            raise ValueError("bad batch")

    with caplog.at_level(logging.WARNING, logger="trainops.client"), pytest.raises(ValueError, match="bad batch"):
        train()

    stored = ops.get_operation(run.operation_id)
    assert (stored.status, stored.error) == (OperationStatus.FAILED, "ValueError: bad batch")
    assert stored.result == {
        "unstorable_result": "result.model holds a object, which JSON cannot carry; send text or a number"
    }
    assert "its result cannot be stored" in caplog.text


def test_an_error_message_holding_a_nul_is_stored_escaped(ops: TrainOps) -> None:
    with pytest.raises(OSError, match="bad file name"), ops.run() as run:
        raise OSError("bad file name: a\x00b")

    assert ops.get_operation(run.operation_id).error == "OSError: bad file name: a\\x00b"


# -- how the block ends ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        (None, OperationStatus.COMPLETED, None),
        (0, OperationStatus.COMPLETED, None),
        (3, OperationStatus.FAILED, "the script exited with code 3"),
    ],
)
def test_sys_exit_in_the_block_ends_the_run_by_its_code(
    ops: TrainOps, code: int | None, status: OperationStatus, error: str | None
) -> None:
    with pytest.raises(SystemExit), ops.run() as run:
        sys.exit(code)
    with pytest.raises(SystemExit), TrainingCallbacks(ops) as callbacks:
        sys.exit(code)

    assert callbacks.operation_id is not None
    for operation_id in (run.operation_id, callbacks.operation_id):
        stored = ops.get_operation(operation_id)
        assert (stored.status, stored.error) == (status, error)


def unreachable(operation_id: str, records: list[EpochRecord]) -> WriteAck:
    raise ServiceUnavailableError("connection refused")


def interrupt_main_in(seconds: float) -> None:
    threading.Timer(seconds, _thread.interrupt_main).start()


def test_ctrl_c_while_the_end_waits_for_a_server_away_keeps_everything_on_disk_at_once(
    local_ops: LocalTrainOps, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A second Ctrl-C during the end's silent minute had thrown every record away."""
    monkeypatch.setattr(local_ops, "add_epochs", unreachable)
    run = Run(local_ops, local_ops.create_operation(), flush_interval=0.01, flush_timeout=60, unsent_directory=tmp_path)
    with caplog.at_level(logging.WARNING, logger="trainops.client"):
        with run:
            run.log(0, val_loss=1.0)
            run.log(1, val_loss=0.9)
            time.sleep(0.2)  # the buffer finds the server away
            interrupt_main_in(0.5)
            started = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                run.finish()
        waited = time.monotonic() - started

    assert waited < 5
    assert "ends while the server is away: waiting up to 60 s" in caplog.text
    unsent = run.unsent
    assert unsent is not None and unsent.path is not None and unsent.path.exists()
    assert (unsent.epochs, unsent.end) == (2, True)
    assert "was interrupted (Ctrl-C)" in unsent.reason


def test_a_block_ended_by_ctrl_c_waits_a_few_seconds_at_most_for_a_server_away(
    local_ops: LocalTrainOps, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(local_ops, "add_epochs", unreachable)
    run = Run(local_ops, local_ops.create_operation(), flush_interval=0.01, flush_timeout=60, unsent_directory=tmp_path)
    run.log(0, val_loss=1.0)

    def interrupted() -> None:
        with run:
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        interrupted()

    assert time.monotonic() - started < 8  # INTERRUPTED_WAIT (5 s), not flush_timeout
    assert run.unsent is not None and run.unsent.epochs == 1


# -- ended elsewhere ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flush_interval", [None, 0.05], ids=["unbuffered", "buffered"])
def test_a_run_ended_elsewhere_is_told_to_stop_by_its_heartbeat(ops: TrainOps, flush_interval: float | None) -> None:
    """In-process ``should_stop`` raised ConflictError; over HTTP it answered "go on" until the next epoch."""
    run = Run(ops, ops.create_operation(), flush_interval=flush_interval, stop_check_interval=0.05)
    requests = []

    def train() -> None:
        with run:
            ops.finish_operation(run.operation_id, OperationStatus.FAILED, error="ended by an agent")
            deadline = time.monotonic() + 10
            while (request := run.should_stop()) is None and time.monotonic() < deadline:
                time.sleep(0.05)
            requests.append(request)

    with pytest.raises(ConflictError, match="already failed"):  # the end says why it was not recorded
        train()

    [request] = requests
    assert request is not None and request.requested_by == "trainops"
    assert "already failed" in request.reason
    assert ops.get_operation(run.operation_id).error == "ended by an agent"


# -- late and odd calls ----------------------------------------------------------------------------------------


def test_late_calls_answer_the_same_on_both_transports(ops: TrainOps) -> None:
    with ops.run() as run:
        run.log(0, val_loss=1.0)

    with pytest.raises(ConflictError, match="has finished; it takes no more epochs"):
        run.log(1, val_loss=0.5)
    run.batch(1, 3, 10, {"loss": 0.5})  # progress is best effort: dropped
    run.progress(run.operation.progress)
    with pytest.raises(NotFoundError):
        ops.get_operation("")
    assert repr(run) == f"<Run {run.operation_id} completed (finished)>"


def test_batch_metrics_that_are_not_numbers_are_left_out_never_raised(
    ops: TrainOps, caplog: pytest.LogCaptureFixture
) -> None:
    """They raised a raw TypeError, at whichever batch the throttle let through."""
    with caplog.at_level(logging.WARNING, logger="trainops.client"), ops.run(total_epochs=1) as run:
        run._batch_interval = 0.0
        for batch in range(3):
            run.batch(0, batch, 3, {"loss": torch.tensor(0.5), "grad_norm": None, "note": "x"})

    assert caplog.text.count("batch metric 'grad_norm' left out") == 1
    assert caplog.text.count("batch metric 'note' left out") == 1


def test_finish_names_the_statuses_a_run_ends_with(ops: TrainOps) -> None:
    with ops.run() as run:
        with pytest.raises(InvalidInputError, match="a run ends completed, failed, cancelled; got 'done'"):
            run.finish("done")
        with pytest.raises(InvalidInputError, match="got 'running'"):
            run.finish("running")

    assert ops.get_operation(run.operation_id).status is OperationStatus.COMPLETED


def test_log_leaves_out_a_metric_not_measured_and_counts_too_many(ops: TrainOps) -> None:
    with ops.run() as run:
        run.log(0, train_loss=1.0, f1=None, val_loss=None)
        with pytest.raises(InvalidInputError, match="at most 256 custom metrics per epoch, got 257"):
            run.log(1, **{f"m{index}": 1.0 for index in range(257)})

    [epoch] = ops.get_metrics(run.operation_id).metrics.epochs
    assert (epoch.train_loss, epoch.val_loss, epoch.metrics) == (1.0, None, {})


def test_ops_run_takes_the_ends_wait(ops: TrainOps) -> None:
    with ops.run(flush_timeout=5) as run:
        assert run.flush_timeout == 5
    with pytest.raises(InvalidInputError, match="flush_timeout is seconds, 0 or more"):
        ops.run(flush_timeout=-1)


def test_log_artifact_stores_the_file_with_the_run(ops: TrainOps, tmp_path: Path) -> None:
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights")
    with ops.run() as run:
        stored = run.log_artifact(checkpoint, artifact_path="checkpoints")

    assert stored.path == "checkpoints/best.pt"
    assert [item.path for item in ops.list_artifacts(run.operation_id)] == ["checkpoints/best.pt"]


# -- the HTTP client's own -------------------------------------------------------------------------------------


def test_a_token_read_with_its_line_end_is_sent_without_it(settings: Settings) -> None:
    """It was "cannot reach the server", with the token in the message."""
    guarded = settings.model_copy(update={"api_token": TOKEN})
    with LiveServer(guarded) as server, HttpTrainOps(server.url, token=f"{TOKEN}\n", retries=0) as client:
        assert client.list_operations().total == 0

    with pytest.raises(ConfigurationError, match="a character an HTTP header cannot carry") as refused:
        HttpTrainOps("http://127.0.0.1:1", token="tökén-0123456789abcdef")
    assert "tökén" not in refused.value.message
    assert Settings(api_token=f"  {TOKEN}\n").api_token == TOKEN


def test_a_run_whose_token_is_refused_says_so_and_does_not_wait_for_a_server_that_is_up(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A forgotten token read as an outage: "begins offline ... once the server answers", a minute's wait at the
    end for a server that was up all along, and "sync once the server is back"."""
    guarded = settings.model_copy(update={"api_token": TOKEN})
    with LiveServer(guarded) as server, HttpTrainOps(server.url, retries=0) as client:
        with caplog.at_level(logging.WARNING, logger="trainops.client"):
            with client.run(total_epochs=3, flush_timeout=60) as run:
                for epoch in range(3):
                    run.log(epoch, train_loss=1.0, val_loss=1.0 / (epoch + 1))
                ended_at = time.monotonic()
            waited = time.monotonic() - ended_at

        assert waited < 5  # not the 60 s of flush_timeout: no wait brings a token
        assert "the server refuses the token (missing or wrong bearer token" in caplog.text
        assert f"run {run.operation_id} begins offline: its records are kept for `trainops sync`" in caplog.text
        assert "ends while the server is away" not in caplog.text
        assert run.unsent is not None and run.unsent.token_refused and run.unsent.epochs == 3
        assert run.unsent.message.endswith(
            f"send them with `trainops sync {run.operation_id}` with the server's token (--token, or "
            "TRAINOPS_API_TOKEN)"
        )
        with HttpTrainOps(server.url, token=TOKEN) as authorized:
            assert authorized.list_operations().total == 0  # nothing reached it


def test_a_run_whose_token_stops_being_accepted_keeps_its_end_at_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's token was changed while the run trained, every epoch already delivered: the end's delivery
    was retried as if the server were away, for all of flush_timeout."""
    guarded = settings.model_copy(update={"api_token": TOKEN})
    with (
        LiveServer(guarded) as server,
        HttpTrainOps(server.url, token=TOKEN, retries=0) as client,
        caplog.at_level(logging.WARNING, logger="trainops.client"),
    ):
        with client.run(total_epochs=2, flush_interval=None, flush_timeout=60) as run:
            for epoch in range(2):
                run.log(epoch, val_loss=1.0 / (epoch + 1))  # each one stored before log returns
            # as if the server were restarted with another token: this client's is refused from here on
            client._http.headers["Authorization"] = "Bearer another-token-0123456789"
            ended_at = time.monotonic()
        waited = time.monotonic() - ended_at

    assert waited < 5
    assert run.unsent is not None and run.unsent.token_refused and run.unsent.end and run.unsent.epochs == 0
    assert "with the server's token (--token, or TRAINOPS_API_TOKEN)" in caplog.text


def test_a_closed_client_says_so_on_both_transports(live_server: LiveServer, settings: Settings) -> None:
    """A local client went on working after close(), an HTTP one refused: code moved between them broke."""
    clients: list[TrainOps] = [HttpTrainOps(live_server.url), LocalTrainOps(open_service(settings))]
    for client in clients:
        operation = client.create_operation(total_epochs=2)
        client.close()

        with pytest.raises(ConfigurationError, match=r"was closed .*connect again"):
            client.list_operations()
        with pytest.raises(ConfigurationError, match="was closed"):
            client.add_epoch(operation.operation_id, EpochRecord(epoch=0, val_loss=1.0))


# -- the framework callbacks -------------------------------------------------------------------------------------


def test_callbacks_take_a_name_tags_and_notes_and_keep_numbers_in_the_config(ops: TrainOps) -> None:
    config: dict[str, Any] = {"lr": np.float32(0.5), "batch_size": np.int64(32), "wd": torch.tensor(1e-4)}
    with TrainingCallbacks(ops, name="resnet lr=0.5", tags=["baseline"], notes="first", config=config) as callbacks:
        callbacks.on_epoch_end(0, {"loss": 1.0})

    assert callbacks.operation_id is not None
    stored = ops.get_operation(callbacks.operation_id)
    assert (stored.name, stored.tags, stored.notes) == ("resnet lr=0.5", ["baseline"], "first")
    parameters = stored.metadata.parameters
    assert parameters["lr"] == 0.5 and parameters["batch_size"] == 32
    assert parameters["wd"] == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="tags"):
        TrainingCallbacks(ops, tags=["no spaces allowed here"])


def test_callbacks_used_without_on_train_begin_say_so_once(ops: TrainOps, caplog: pytest.LogCaptureFixture) -> None:
    callbacks = TrainingCallbacks(ops)
    with caplog.at_level(logging.WARNING, logger="trainops"):
        callbacks.on_batch_end(0, {"loss": 1.0})
        callbacks.on_epoch_end(0, {"loss": 1.0})

    assert caplog.text.count("on_train_begin() was not called, so nothing is tracked") == 1
    assert ops.list_operations().total == 0


def test_log_warns_once_of_a_frameworks_name_for_a_standard_field(
    ops: TrainOps, caplog: pytest.LogCaptureFixture
) -> None:
    """``eval_loss`` rising for twelve epochs read as "No val_loss reported yet: keep training"."""
    with caplog.at_level(logging.WARNING, logger="trainops.client"), ops.run() as run:
        for epoch in range(3):
            run.log(epoch, eval_loss=1.0 + epoch, lr=1e-3, train_loss=1.0)
        run.log(3, val_loss=1.0, eval_loss=2.0)  # the field itself: nothing to say

    assert caplog.text.count("'eval_loss' is kept as a custom metric; the diagnosis reads val_loss") == 1
    assert caplog.text.count("'lr' is kept as a custom metric; the diagnosis reads learning_rate") == 1
    assert "train_loss" not in caplog.text


FORKING = """
import os, sys, trainops
ops = trainops.connect()
with ops.run(total_epochs=3) as run:
    run.log(0, train_loss=1.0)
    child = os.fork()
    if child == 0:  # a DataLoader worker, say: its copy of the run has no sending thread
        run.log(1, train_loss=0.5)
        sys.exit(0)  # and its exit must not end the parent's run
    os.waitpid(child, 0)
    run.log(1, train_loss=0.25)
"""


def test_a_forked_process_neither_sends_nor_ends_its_parents_run(
    settings: Settings, local_ops: LocalTrainOps, tmp_path: Path
) -> None:
    env = {**os.environ, "TRAINOPS_HOME": str(tmp_path), "TRAINOPS_DATABASE_URL": str(settings.database_url)}
    with LiveServer(settings) as server:
        done = subprocess.run(
            [sys.executable, "-c", FORKING], env={**env, "TRAINOPS_URL": server.url}, capture_output=True, text=True
        )

    [operation] = local_ops.list_operations().items
    assert operation.status is OperationStatus.COMPLETED, done.stderr
    epochs = local_ops.get_metrics(operation.operation_id).metrics.epochs
    assert [(epoch.epoch, epoch.train_loss) for epoch in epochs] == [(0, 1.0), (1, 0.25)]
    assert done.stderr.count("(this one was forked from it, a DataLoader worker say): what this process logs") == 1
    assert "was not finished" not in done.stderr


def test_a_client_pickles_and_a_run_says_why_it_does_not(live_server: LiveServer) -> None:
    with HttpTrainOps(live_server.url, retries=1) as client:
        copy = pickle.loads(pickle.dumps(client))
        with copy.run() as run, pytest.raises(TypeError, match="a Run reports from the process that opened it"):
            pickle.dumps(run)
        assert client.get_operation(run.operation_id).status is OperationStatus.COMPLETED
        assert (copy.url, copy.retries) == (client.url, 1)
        copy.close()


def test_local_trainops_given_a_path_says_how_to_open_one() -> None:
    with pytest.raises(TypeError, match=r"takes an OperationsService, not str; .*trainops.connect\(settings="):
        LocalTrainOps("/tmp/trainops.db")  # type: ignore[arg-type]


def test_a_server_that_takes_the_connection_and_never_answers_holds_the_start_briefly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A hung server held a run's start for the client's whole read timeout (30 s) before it began offline."""
    monkeypatch.setattr(run_module, "REGISTER_WAIT", 1.0)
    monkeypatch.setenv("TRAINOPS_HOME", str(tmp_path))
    hung = socket.create_server(("127.0.0.1", 0), backlog=16)  # accepts (the kernel's backlog), never reads
    url = f"http://127.0.0.1:{hung.getsockname()[1]}"
    try:
        with HttpTrainOps(url, timeout=30) as client, caplog.at_level(logging.WARNING, logger="trainops.client"):
            started = time.monotonic()
            run = client.run(flush_timeout=0)
            took = time.monotonic() - started
            with run:
                run.log(0, train_loss=1.0)
    finally:
        hung.close()

    assert took < 5
    assert (
        f"{url} did not answer within 1 s (hung, or overloaded); run {run.operation_id} begins offline" in caplog.text
    )
    assert run.unsent is not None and run.unsent.registration and run.unsent.epochs == 1


def test_an_unbuffered_run_whose_database_is_away_buffers_from_then_on(
    local_ops: LocalTrainOps, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """In-process, an epoch met by a database locked past its busy timeout (or restarting) raised out of run.log,
    and was lost: the training crashed unless it caught the error."""

    def locked(operation_id: str, record: EpochRecord) -> WriteAck:
        raise ServiceUnavailableError("the database is busy or unreachable (database is locked)")

    monkeypatch.setattr(local_ops, "add_epoch", locked)  # one epoch at a time is the unbuffered path
    run = Run(local_ops, local_ops.create_operation(total_epochs=3), flush_interval=None, unsent_directory=tmp_path)
    with caplog.at_level(logging.WARNING, logger="trainops.client"), run:
        for epoch in range(3):
            run.log(epoch, train_loss=1.0 / (epoch + 1))
            run.step(epoch * 10, {"loss": 0.5})

    assert caplog.text.count("its records wait and are sent once the database answers") == 1
    stored = local_ops.get_metrics(run.operation_id).metrics.epochs
    assert [epoch.epoch for epoch in stored] == [0, 1, 2]
    assert [point.step for point in local_ops.get_steps(run.operation_id).points] == [0, 10, 20]
    assert local_ops.get_operation(run.operation_id).status is OperationStatus.COMPLETED
    assert run.unsent is None
