"""Several API processes on one database, as ``docs/deploy.md`` ("Several API processes behind a load balancer")
promises them: two ``trainops serve`` processes, A and B, on one PostgreSQL database, each on its own port, and a
training in a process of its own (``tests/api/several_processes_run.py``) that reports through A.

What is written through one process reads the same through the other: the run, its metrics polled with
``since_epoch`` and ETags (an ETag of one process answers 304 from the other), the events stream (opened on one,
resumed with ``Last-Event-ID`` on the other), and a cancel (asked through B, heard by the loop reporting through A).
PostgreSQL only: SQLite is one process on one disk.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.api.test_events_api import epochs_in, events_of, frames
from tests.processes import clean_env, stop_group
from tests.server_process import ServerProcess
from trainops.client import HttpTrainOps
from trainops.core.diagnosis import OperationMetrics
from trainops.core.operation import OperationStatus
from trainops.schemas.events import DiagnosisEvent, EpochsEvent, OperationEvent, StatusEvent

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)]

LOOP = Path(__file__).with_name("several_processes_run.py")

Servers = tuple[ServerProcess, ServerProcess]


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[Servers]:
    """A and B: two server processes on the test's database (``database_url`` migrated it before either starts),
    started side by side."""
    pair = ServerProcess(database_url, tmp_path / "a"), ServerProcess(database_url, tmp_path / "b")
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(ServerProcess.start, pair))
        yield pair
    finally:
        for server in pair:
            server.stop()


class ReportingLoop:
    """``several_processes_run.py`` in a process group of its own, reporting to ``url``; the JSON lines it prints
    are read on a thread. Stopped, whole group, at the end of its block whatever happened."""

    def __init__(self, url: str, home: Path, *args: str) -> None:
        home.mkdir(parents=True)
        self.stderr = home / "loop.log"
        with self.stderr.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(LOOP), *args],
                env=clean_env(TRAINOPS_URL=url, TRAINOPS_HOME=str(home)),
                cwd=home,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()
        self.operation_id: str = ""

    def _read(self, stdout: IO[bytes]) -> None:
        for line in stdout:
            self._lines.put(json.loads(line))
        self._lines.put(None)

    def __enter__(self) -> ReportingLoop:
        operation_id = self.next(timeout=60)["operation_id"]
        assert operation_id, f"the loop's run is not tracked:\n{self.stderr.read_text()[-3000:]}"
        self.operation_id = operation_id
        return self

    def __exit__(self, *_: object) -> None:
        stop_group(self.process, grace=5)
        self._reader.join(5)  # the pipe ends with the process
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()

    def next(self, timeout: float = 20) -> dict[str, Any]:
        """The loop's next line."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"the loop said nothing for {timeout:.0f} s:\n{self.stderr.read_text()[-3000:]}")
        if line is None:
            pytest.fail(f"the loop exited ({self.process.wait(5)}):\n{self.stderr.read_text()[-3000:]}")
        return line

    def until_epoch(self, epoch: int) -> None:
        """Wait until the loop stored ``epoch``."""
        while self.next().get("epoch") != epoch:
            pass

    def log(self, epochs: int) -> None:
        """A ``--stepped`` loop: log ``epochs`` more epochs, and wait until they are stored."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{epochs}\n".encode())
        self.process.stdin.flush()
        for _ in range(epochs):
            assert "epoch" in self.next(), "the loop stopped before logging every epoch asked"

    def end(self, timeout: float = 30) -> dict[str, Any]:
        """Let the loop end (a ``--stepped`` one completes) and answer its last line: what it did."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        while "epochs" not in (line := self.next(timeout)):
            pass
        assert self.process.wait(timeout) == 0, self.stderr.read_text()[-3000:]
        return line


def api(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v1", timeout=30)


def epoch_numbers(metrics: OperationMetrics) -> list[int]:
    return [record.epoch for record in metrics.metrics.epochs]


def test_a_run_reported_through_a_reads_the_same_through_b_and_etags_work_across_them(
    servers: Servers, tmp_path: Path
) -> None:
    a, b = servers
    with (
        ReportingLoop(a.url, tmp_path / "loop", "--stepped", "--epochs", "20") as loop,
        HttpTrainOps(a.url) as via_a,
        HttpTrainOps(b.url) as via_b,
        api(a) as raw_a,
        api(b) as raw_b,
    ):
        operation_id = loop.operation_id
        loop.log(3)
        running = via_b.get_operation(operation_id)
        assert (running.status, running.epochs_completed, running.last_epoch) == (OperationStatus.RUNNING, 3, 2)
        assert running == via_a.get_operation(operation_id)
        assert epoch_numbers(via_b.get_metrics(operation_id)) == [0, 1, 2]  # B caches this history now

        # a poller on B, then on A with B's ETag: nothing changed, so A answers 304 with the same ETag
        url, since = f"/operations/{operation_id}/metrics", {"since_epoch": 2}
        polled = raw_b.get(url, params=since)
        assert polled.status_code == 200 and polled.json()["data"]["metrics"]["epochs"] == []
        tag = polled.headers["etag"]
        unchanged = raw_a.get(url, params=since, headers={"If-None-Match": tag})
        assert (unchanged.status_code, unchanged.headers["etag"]) == (304, tag)

        loop.log(2)  # epochs 3 and 4, through A
        moved = raw_a.get(url, params=since, headers={"If-None-Match": tag})
        assert moved.status_code == 200
        assert [record["epoch"] for record in moved.json()["data"]["metrics"]["epochs"]] == [3, 4]
        assert moved.headers["etag"] != tag
        again = raw_b.get(url, params=since, headers={"If-None-Match": moved.headers["etag"]})
        assert again.status_code == 304  # A's new ETag is B's too

        # B's cached history revalidated against the database: the epochs A stored since, and a diagnosis over them
        whole = via_b.get_metrics(operation_id)
        assert epoch_numbers(whole) == [0, 1, 2, 3, 4]
        assert (whole.metrics.total_epochs_completed, whole.metrics.best_epoch) == (5, 4)
        assert epoch_numbers(via_b.get_metrics(operation_id, since_epoch=2)) == [3, 4]
        assert whole == via_a.get_metrics(operation_id)
        assert via_b.get_operation(operation_id) == via_a.get_operation(operation_id)

        assert loop.end() == {"epochs": 5, "stopped_by": None, "requested_by": None}
        ended = via_b.get_operation(operation_id)
        assert (ended.status, ended.epochs_completed) == (OperationStatus.COMPLETED, 5)
        assert ended == via_a.get_operation(operation_id)
        assert via_b.get_metrics(operation_id) == via_a.get_metrics(operation_id)


def test_an_events_stream_opened_on_b_resumes_on_a_with_nothing_repeated_or_missing(
    servers: Servers, tmp_path: Path
) -> None:
    a, b = servers
    with (
        ReportingLoop(a.url, tmp_path / "loop", "--stepped", "--epochs", "8") as loop,
        api(b) as raw_b,
        HttpTrainOps(a.url, retries=0, timeout=10) as via_a,  # one connection: a stall fails, it is not retried
    ):
        operation_id = loop.operation_id
        loop.log(3)

        # B's stream: the history so far, then the epochs A stores while it is open; then the connection drops
        on_b: list[dict[str, Any]] = []
        with raw_b.stream("GET", f"/operations/{operation_id}/events", timeout=10) as response:
            assert response.status_code == 200
            for block in frames(response):
                on_b.append(block)
                if block.get("event") == "status" and epochs_in(events_of(on_b)) == [0, 1, 2]:  # caught up
                    loop.log(2)  # epochs 3 and 4, through A
                if 4 in epochs_in(events_of(on_b[-1:])):
                    break
        seen = events_of(on_b)
        assert epochs_in(seen) == [0, 1, 2, 3, 4]
        assert all(event["id"] == event["data"]["id"] for event in seen)
        last_event_id = seen[-1]["id"]

        loop.log(2)  # epochs 5 and 6, while nobody reads

        # resumed on A: what was missed, then the rest of the run live, to its end
        on_a: list[OperationEvent] = []
        for event in via_a.events(operation_id, last_event_id=last_event_id):  # it returns after the diagnosis
            on_a.append(event)
            if isinstance(event, EpochsEvent) and event.epochs[-1].epoch == 6:
                loop.log(1)  # epoch 7
                assert loop.end() == {"epochs": 8, "stopped_by": None, "requested_by": None}

    resumed = [record.epoch for event in on_a if isinstance(event, EpochsEvent) for record in event.epochs]
    assert resumed == [5, 6, 7]  # none of B's again, none missing
    ids = [event["id"] for event in seen] + [event.id for event in on_a]
    assert len(set(ids)) == len(ids)
    statuses = [event.status for event in on_a if isinstance(event, StatusEvent)]
    assert statuses == [OperationStatus.COMPLETED]  # running was sent on B already
    final = on_a[-1]
    assert isinstance(final, DiagnosisEvent) and final.status is OperationStatus.COMPLETED
    assert final.diagnosis is not None and final.diagnosis.epochs_analyzed == 8

    # after the last event, a reconnection to either process is told there is nothing more
    for server in (a, b):
        with api(server) as client:
            done = client.get(f"/operations/{operation_id}/events", headers={"Last-Event-ID": final.id})
        assert done.status_code == 204


def test_a_cancel_asked_through_b_stops_the_loop_reporting_through_a(servers: Servers, tmp_path: Path) -> None:
    a, b = servers
    reason = "val_loss flat since epoch 3"
    with (
        ReportingLoop(a.url, tmp_path / "loop", "--epochs", "300", "--pause", "0.05") as loop,
        HttpTrainOps(a.url) as via_a,
        HttpTrainOps(b.url) as via_b,
    ):
        operation_id = loop.operation_id
        loop.until_epoch(5)
        asked = via_b.cancel_operation(operation_id, reason, requested_by="agent")
        assert (asked.status, asked.cancel_requested, asked.cancel_reason) == (OperationStatus.RUNNING, True, reason)
        stored_at_cancel = via_b.get_operation(operation_id).epochs_completed
        outcome = loop.end()

        # the loop heard it with its next write's answer from A, and stopped there
        assert (outcome["stopped_by"], outcome["requested_by"]) == (reason, "agent")
        assert stored_at_cancel <= outcome["epochs"] <= stored_at_cancel + 2
        ended = via_b.get_operation(operation_id)
        assert ended == via_a.get_operation(operation_id)
        assert (ended.status, ended.epochs_completed) == (OperationStatus.CANCELLED, outcome["epochs"])
        assert ended.cancel_request is not None
        assert (ended.cancel_request.reason, ended.cancel_request.requested_by) == (reason, "agent")
