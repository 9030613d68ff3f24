"""Ingest throughput: how many epoch records per second a trainops server stores over loopback.

Measured against one real server (uvicorn, one process, fresh SQLite database in WAL mode), one client:

* one epoch per POST, plain httpx: what a training loop that reports each epoch as it ends costs the server.
  Goal: at least 1,000 epochs/s, so that reporting is never what slows training down, and one server keeps up
  with many runs at once.
* one epoch per POST through ``trainops.HttpTrainOps.add_epoch``: the same with the client library's own
  validation and serialisation on top.
* ``{"epochs": [...]}`` batches of 10, 100 and 1,000: what a buffering reporter or a bulk import gets.

Every write is a real upsert in its own transaction (re-sending an epoch replaces it), so the figures include
the database work, not only the HTTP stack.

Run: ``.venv/bin/python bench/ingest.py`` (``--quick`` for a short run, ``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
from _report import LatencySummary, table, verdict
from _server import trainops_server
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


def sequential_client_library(url: str, epochs: int) -> IngestResult:
    """One epoch per POST through ``HttpTrainOps.add_epoch`` (builds an ``EpochRecord`` per epoch, as a
    training script using the library does)."""
    ops = HttpTrainOps(url, retries=0)
    try:
        operation_id = ops.create_operation("training", total_epochs=epochs).operation_id
        records = [epoch_record(e, epochs) for e in range(epochs)]

        def sender(record: dict[str, object]) -> Callable[[], None]:
            return lambda: ops.add_epoch(operation_id, EpochRecord.model_validate(record)) and None

        return _timed_requests("1 epoch/POST, HttpTrainOps", epochs, [sender(r) for r in records])
    finally:
        ops.close()


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
    parser.add_argument("--quick", action="store_true", help="small sizes: 500 single epochs, 3,000 per batch size")
    args = parser.parse_args(argv)
    epochs, batch_epochs = (500, 3000) if args.quick else (args.epochs, args.batch_epochs)

    with trainops_server() as server, httpx.Client(base_url=server.url, timeout=60.0) as client:
        print(f"trainops ingest: server {server.url} (uvicorn, 1 process, pid {server.pid}), SQLite in {server.home}")
        _warm_up(client)
        results = [sequential_httpx(client, epochs), sequential_client_library(server.url, epochs)]
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
    single = results[0]
    print(
        f"goal: one epoch per POST >= {GOAL_EPOCHS_PER_SECOND:,.0f} epochs/s: "
        f"{single.epochs_per_second:,.0f} epochs/s, "
        f"{verdict(single.epochs_per_second, GOAL_EPOCHS_PER_SECOND, higher_is_better=True)}"
    )


if __name__ == "__main__":
    main()
