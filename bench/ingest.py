"""Ingest throughput: how many epoch records per second a trainops server stores over loopback.

Measured against one real server (uvicorn, one process, fresh SQLite database in WAL mode), one client:

* one epoch per POST, plain httpx: what a training loop that reports each epoch as it ends costs the server.
  Goal: at least 1,000 epochs/s, so that reporting is never what slows training down, and one server keeps up
  with many runs at once.
* one epoch per POST with the standard library's ``http.client``: the same with a lean client, closer to what
  the server alone sustains (httpx costs ~0.7 ms of CPU per request here).
* one epoch per POST through ``trainops.HttpTrainOps.add_epoch``: the same with the client library's own
  validation and serialisation on top.
* a buffered run (``HttpTrainOps.run()``'s default): what a training loop sees; per-call latency is the
  loop's, the rate is until every epoch is stored.
* several writers at once (threads, each its own client and operation), one epoch per POST: what the server
  sustains when many runs report together, with less of the client's own latency in the figure.
* ``{"epochs": [...]}`` batches of 10, 100 and 1,000: what a buffering reporter or a bulk import gets.

Every write is a real upsert in its own transaction (re-sending an epoch replaces it), so the figures include
the database work, not only the HTTP stack.

Run: ``.venv/bin/python bench/ingest.py`` (``--quick`` for a short run, ``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from _report import LatencySummary, machine, table, verdict
from _server import LOOPBACK, trainops_server
from _workload import create_operation, epoch_record

from trainops import EpochRecord, HttpTrainOps

GOAL_EPOCHS_PER_SECOND = 1000.0
WARM_UP_EPOCHS = 100


@dataclass(frozen=True)
class IngestResult:
    """One way of sending epochs: how many, in how many requests, how long it took and per-request latency."""

    mode: str
    epochs: int
    requests: int
    seconds: float
    latency: LatencySummary

    @property
    def epochs_per_second(self) -> float:
        return self.epochs / self.seconds


def _timed_requests(mode: str, epochs: int, sends: Sequence[Callable[[], None]]) -> IngestResult:
    """Run ``sends`` one after another, timing each and the whole."""
    latencies: list[float] = []
    started = time.perf_counter()
    for send in sends:
        t0 = time.perf_counter()
        send()
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return IngestResult(mode, epochs, len(sends), elapsed, LatencySummary.of(latencies))


def _post(client: httpx.Client, path: str, body: object) -> Callable[[], None]:
    def send() -> None:
        client.post(path, json=body).raise_for_status()

    return send


def sequential_httpx(client: httpx.Client, epochs: int) -> IngestResult:
    """One epoch per POST with plain httpx, into a fresh operation."""
    operation_id = create_operation(client, epochs)
    path = f"/api/v1/operations/{operation_id}/metrics"
    sends = [_post(client, path, epoch_record(e, epochs)) for e in range(epochs)]
    return _timed_requests("1 epoch/POST, httpx", epochs, sends)


def sequential_stdlib(url: str, epochs: int) -> IngestResult:
    """One epoch per POST with the standard library's ``http.client`` on one kept-alive connection.

    httpx spends about 0.7 ms of CPU per request on this machine; this lean client shows what the server itself
    sustains, one request at a time."""
    with httpx.Client(base_url=url, timeout=60.0) as setup:
        operation_id = create_operation(setup, epochs)
    parsed = urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or LOOPBACK, parsed.port, timeout=60.0)
    path = f"/api/v1/operations/{operation_id}/metrics"
    headers = {"Content-Type": "application/json"}

    def sender(body: bytes) -> Callable[[], None]:
        def send() -> None:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status} from {path}")

        return send

    sends = [sender(json.dumps(epoch_record(e, epochs)).encode()) for e in range(epochs)]
    try:
        return _timed_requests("1 epoch/POST, http.client", epochs, sends)
    finally:
        connection.close()


def buffered_run(url: str, epochs: int) -> IngestResult:
    """What a training loop sees with the client's default over HTTP: ``run.epoch`` returns at once and a
    background thread sends batches; timed until ``run.flush()`` has every epoch stored."""
    records = [EpochRecord.model_validate(epoch_record(e, epochs)) for e in range(epochs)]
    with HttpTrainOps(url, retries=0) as ops, ops.run("training", total_epochs=epochs, flush_interval=0.5) as run:
        started = time.perf_counter()
        latencies = []
        for record in records:
            t0 = time.perf_counter()
            run.epoch(record)
            latencies.append(time.perf_counter() - t0)
        run.flush()
        elapsed = time.perf_counter() - started
    return IngestResult("buffered run (client default)", epochs, epochs, elapsed, LatencySummary.of(latencies))


def sequential_client_library(url: str, epochs: int) -> IngestResult:
    """One epoch per POST through ``HttpTrainOps.add_epoch`` (builds an ``EpochRecord`` per epoch, as a
    training script using the library does)."""
    with HttpTrainOps(url, retries=0) as ops:
        operation_id = ops.create_operation("training", total_epochs=epochs).operation_id

        def sender(record: dict[str, object]) -> Callable[[], None]:
            def send() -> None:
                ops.add_epoch(operation_id, EpochRecord.model_validate(record))

            return send

        sends = [sender(epoch_record(e, epochs)) for e in range(epochs)]
        return _timed_requests("1 epoch/POST, HttpTrainOps", epochs, sends)


def concurrent_writers(url: str, writers: int, epochs_each: int) -> IngestResult:
    """``writers`` threads, each with its own ``httpx.Client`` and operation, posting one epoch per request.

    Throughput is all epochs over the wall time from the first request to the last; latency is per request.
    """
    with httpx.Client(base_url=url, timeout=60.0) as setup:
        operation_ids = [create_operation(setup, epochs_each) for _ in range(writers)]
    latencies: list[list[float]] = [[] for _ in range(writers)]
    errors: list[BaseException] = []
    start = threading.Barrier(writers + 1)

    def write(index: int) -> None:
        path = f"/api/v1/operations/{operation_ids[index]}/metrics"
        records = [epoch_record(e, epochs_each, seed=index) for e in range(epochs_each)]
        with httpx.Client(base_url=url, timeout=60.0) as client:
            start.wait()
            try:
                for record in records:
                    t0 = time.perf_counter()
                    client.post(path, json=record).raise_for_status()
                    latencies[index].append(time.perf_counter() - t0)
            except (httpx.HTTPError, OSError) as error:
                errors.append(error)

    threads = [threading.Thread(target=write, args=(i,), daemon=True) for i in range(writers)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} writer(s) failed; the first: {errors[0]!r}")
    flat = [value for per_writer in latencies for value in per_writer]
    return IngestResult(f"{writers} writers, 1 epoch/POST", len(flat), len(flat), elapsed, LatencySummary.of(flat))


def batched(client: httpx.Client, epochs: int, batch_size: int) -> IngestResult:
    """``{"epochs": [...]}`` of ``batch_size`` records per POST, into a fresh operation."""
    operation_id = create_operation(client, epochs)
    path = f"/api/v1/operations/{operation_id}/metrics"
    records = [epoch_record(e, epochs) for e in range(epochs)]
    sends = [_post(client, path, {"epochs": records[i : i + batch_size]}) for i in range(0, epochs, batch_size)]
    return _timed_requests(f"batches of {batch_size:,}", epochs, sends)


def _warm_up(client: httpx.Client) -> None:
    """A first few requests, so imports, connection set-up and SQLite's caches are not counted."""
    sequential_httpx(client, WARM_UP_EPOCHS)
    batched(client, WARM_UP_EPOCHS * 10, WARM_UP_EPOCHS)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3000, help="epochs sent one per POST (default 3,000)")
    parser.add_argument(
        "--batch-epochs", type=int, default=20_000, help="epochs sent for each batch size (default 20,000)"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[10, 100, 1000], help="epochs per batch POST")
    parser.add_argument(
        "--writers",
        type=int,
        default=4,
        help="concurrent writers sharing the --epochs between them (default 4; 1: skip)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: 500 single epochs, 3,000 per batch size")
    args = parser.parse_args(argv)
    epochs, batch_epochs = (500, 3000) if args.quick else (args.epochs, args.batch_epochs)

    with trainops_server() as server, httpx.Client(base_url=server.url, timeout=60.0) as client:
        print(f"trainops ingest: server {server.url} (uvicorn, 1 process, pid {server.pid}), SQLite in {server.home}")
        print(machine())
        _warm_up(client)
        results = [
            sequential_httpx(client, epochs),
            sequential_stdlib(server.url, epochs),
            sequential_client_library(server.url, epochs),
            buffered_run(server.url, epochs),
        ]
        if args.writers > 1:
            results.append(concurrent_writers(server.url, args.writers, max(epochs // args.writers, 1)))
        results += [batched(client, batch_epochs, size) for size in args.batch_sizes]

    rows = [
        (
            r.mode,
            r.epochs,
            r.requests,
            r.seconds,
            r.epochs_per_second,
            r.latency.p50,
            r.latency.p99,
            f"{r.epochs_per_second / GOAL_EPOCHS_PER_SECOND:.2f}x",
        )
        for r in results
    ]
    headers = ("mode", "epochs", "requests", "seconds", "epochs/s", "req p50 ms", "req p99 ms", "vs 1,000/s")
    print(table(headers, rows))
    for single in results[:2]:
        print(
            f"goal: one epoch per POST >= {GOAL_EPOCHS_PER_SECOND:,.0f} epochs/s ({single.mode}): "
            f"{single.epochs_per_second:,.0f} epochs/s, "
            f"{verdict(single.epochs_per_second, GOAL_EPOCHS_PER_SECOND, higher_is_better=True)}"
        )


if __name__ == "__main__":
    main()
