"""Read latency of ``GET /api/v1/operations/{id}/metrics``: the history plus its diagnosis.

Measured against one real server (uvicorn, one process, fresh SQLite database in WAL mode):

1. One poller reading the full history (every epoch and the diagnosis) of a run 100 and 1,000 epochs long.
   Two cases, because the server caches each history's analysis by the operation's version:

   * ``unchanged``: the history did not change since the last read (the server answers from its cache and only
     serialises). Goal: p50 <= 10 ms at 1,000 epochs.
   * ``after a write``: an epoch was written just before each read (untimed), so every read loads the history
     from the database and analyses it again, as the first read after each epoch of a live run does.

   Also the cost of a poll that changed nothing: ``If-None-Match`` with the current ETag, answered 304.

2. A live run under load: one writer adds an epoch every 100 ms while 32 pollers (threads spread over 4 client
   processes, each with its own ``httpx.Client``) poll it for a bounded time, each once per ``--poll-interval``:
   first every second (what ``trainops ops watch`` does), then every 100 ms as a stress test.

   * ``incremental``: what a real poller does (``?since_epoch=<last seen>`` and ``If-None-Match: <last ETag>``):
     mostly 304s, and one small answer per new epoch. Goal: p99 <= 50 ms and no errors.
   * ``full``: the whole history every time with no ETag, for contrast (what a naive dashboard would do).

   Errors are transport failures or any status but 200/304; gaps are polls whose new epochs did not start right
   after the last one seen (an incremental poller would have lost an epoch).

Run: ``.venv/bin/python bench/read.py`` (``--quick`` for a short run, ``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import httpx
from _report import LatencySummary, machine, table, verdict
from _server import trainops_server
from _workload import epoch_record, seeded_operation

GOAL_FULL_P50_MS = 10.0
GOAL_LOAD_P99_MS = 50.0


def _metrics_path(operation_id: str) -> str:
    return f"/api/v1/operations/{operation_id}/metrics"


# -- one poller ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SingleReadResult:
    epochs: int
    case: str
    latency: LatencySummary
    body_bytes: int


def _timed_get(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    response = client.get(path, headers=headers)
    elapsed = time.perf_counter() - t0
    if response.status_code not in (200, 304):
        response.raise_for_status()
    return elapsed, response


def read_unchanged(client: httpx.Client, operation_id: str, epochs: int, reads: int) -> SingleReadResult:
    """Full reads of a history that does not change between them (the server's analysis cache is warm)."""
    path = _metrics_path(operation_id)
    _timed_get(client, path)
    timed = [_timed_get(client, path) for _ in range(reads)]
    return SingleReadResult(
        epochs, "full, unchanged", LatencySummary.of([t for t, _ in timed]), len(timed[-1][1].content)
    )


def read_after_write(client: httpx.Client, operation_id: str, epochs: int, reads: int) -> SingleReadResult:
    """Full reads each right after a write (untimed) that re-sends the last epoch: every read misses the
    server's cache, so it includes the database read and the analysis."""
    path = _metrics_path(operation_id)
    last = epoch_record(epochs - 1, 2 * epochs)
    samples: list[float] = []
    size = 0
    for _ in range(reads):
        client.post(path, json=last).raise_for_status()
        elapsed, response = _timed_get(client, path)
        samples.append(elapsed)
        size = len(response.content)
    return SingleReadResult(epochs, "full, after a write", LatencySummary.of(samples), size)


def read_not_modified(client: httpx.Client, operation_id: str, epochs: int, reads: int) -> SingleReadResult:
    """Polls that send the current ETag and get 304 with no body."""
    path = _metrics_path(operation_id)
    etag = client.get(path).headers["etag"]
    timed = [_timed_get(client, path, {"If-None-Match": etag}) for _ in range(reads)]
    if any(response.status_code != 304 for _, response in timed):
        raise RuntimeError("a poll with the current ETag did not answer 304")
    return SingleReadResult(epochs, "304 (ETag matches)", LatencySummary.of([t for t, _ in timed]), 0)


def single_poller(url: str, sizes: Sequence[int], reads: int) -> list[SingleReadResult]:
    results: list[SingleReadResult] = []
    with httpx.Client(base_url=url, timeout=60.0) as client:
        for epochs in sizes:
            operation_id = seeded_operation(client, epochs)
            results.append(read_unchanged(client, operation_id, epochs, reads))
            results.append(read_after_write(client, operation_id, epochs, reads))
            results.append(read_not_modified(client, operation_id, epochs, reads))
    return results


# -- a live run under load ----------------------------------------------------------------------------------------


@dataclass
class PollerStats:
    """What one poller saw."""

    latencies: list[float] = field(default_factory=list)
    not_modified: int = 0
    errors: int = 0
    gaps: int = 0
    epochs_seen: int = 0
    response_bytes: int = 0


@dataclass(frozen=True)
class LoadResult:
    mode: str
    pollers: int
    seconds: float
    latency: LatencySummary
    requests: int
    not_modified: int
    errors: int
    gaps: int
    epochs_written: int
    write_latency: LatencySummary
    write_errors: int
    response_bytes: int

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds


@dataclass
class PollState:
    """What a poller remembers between polls."""

    last_epoch: int = -1
    etag: str | None = None


def _poll_incremental(client: httpx.Client, path: str, stats: PollerStats, state: PollState) -> None:
    """One poll as a real poller makes it: only epochs after the last seen, and the last ETag."""
    headers = {"If-None-Match": state.etag} if state.etag else {}
    t0 = time.perf_counter()
    response = client.get(path, params={"since_epoch": state.last_epoch}, headers=headers)
    stats.latencies.append(time.perf_counter() - t0)
    if response.status_code == 304:
        stats.not_modified += 1
        return
    if response.status_code != 200:
        stats.errors += 1
        return
    stats.response_bytes += len(response.content)
    epochs = response.json()["data"]["metrics"]["epochs"]
    if epochs:
        if epochs[0]["epoch"] != state.last_epoch + 1:
            stats.gaps += 1
        stats.epochs_seen += len(epochs)
        state.last_epoch = epochs[-1]["epoch"]
    state.etag = response.headers.get("etag")


def _poll_full(client: httpx.Client, path: str, stats: PollerStats, state: PollState) -> None:
    """One naive poll: the whole history, no ETag."""
    t0 = time.perf_counter()
    response = client.get(path)
    stats.latencies.append(time.perf_counter() - t0)
    if response.status_code != 200:
        stats.errors += 1
        return
    stats.response_bytes += len(response.content)
    stats.epochs_seen = len(response.json()["data"]["metrics"]["epochs"])


def _poller(
    url: str, path: str, mode: str, interval: float, offset: float, stop: threading.Event, stats: PollerStats
) -> None:
    poll = _poll_incremental if mode == "incremental" else _poll_full
    state = PollState()
    with httpx.Client(base_url=url, timeout=30.0) as client:
        if stop.wait(offset):
            return
        next_poll = time.perf_counter()
        while not stop.is_set():
            try:
                poll(client, path, stats, state)
            except (httpx.HTTPError, OSError, ValueError, KeyError):
                stats.errors += 1
            next_poll += interval
            stop.wait(max(0.0, next_poll - time.perf_counter()))


def _writer(url: str, path: str, first_epoch: int, total: int, every: float, stop: threading.Event) -> PollerStats:
    """Adds one epoch every ``every`` seconds until stopped (``latencies`` are its POSTs)."""
    stats = PollerStats()
    epoch = first_epoch
    with httpx.Client(base_url=url, timeout=30.0) as client:
        next_write = time.perf_counter()
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                client.post(path, json=epoch_record(epoch, total)).raise_for_status()
                epoch += 1
            except (httpx.HTTPError, OSError):
                stats.errors += 1
            stats.latencies.append(time.perf_counter() - t0)
            next_write += every
            stop.wait(max(0.0, next_write - time.perf_counter()))
    stats.epochs_seen = epoch - first_epoch
    return stats


def _poller_group(
    url: str, path: str, mode: str, interval: float, offsets: Sequence[float], seconds: float
) -> list[PollerStats]:
    """Run one thread per offset, polling for ``seconds``; returns each poller's stats."""
    stop = threading.Event()
    stats = [PollerStats() for _ in offsets]
    threads = [
        threading.Thread(target=_poller, args=(url, path, mode, interval, offset, stop, stats[i]), daemon=True)
        for i, offset in enumerate(offsets)
    ]
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=60.0)
    return stats


def under_load(
    url: str,
    *,
    mode: str,
    history: int,
    pollers: int,
    seconds: float,
    poll_interval: float,
    write_every: float,
    processes: int = 1,
) -> LoadResult:
    """``pollers`` pollers of one operation in ``mode`` while a writer thread adds an epoch every
    ``write_every`` seconds, for ``seconds``; pollers start spread over one interval.

    The pollers are threads spread over ``processes`` client processes: in a single Python process, 32 client
    threads queue for one GIL and the queueing shows up as server latency that the server never caused.
    """
    with httpx.Client(base_url=url, timeout=60.0) as setup:
        operation_id = seeded_operation(setup, history)
    path = _metrics_path(operation_id)
    offsets = [poll_interval * i / pollers for i in range(pollers)]
    groups = [offsets[i::processes] for i in range(processes)]
    stop = threading.Event()
    writer_stats: list[PollerStats] = []
    writer = threading.Thread(
        target=lambda: writer_stats.append(_writer(url, path, history, 2 * history, write_every, stop)), daemon=True
    )
    started = time.perf_counter()
    writer.start()
    with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(_poller_group, url, path, mode, poll_interval, group, seconds) for group in groups if group
        ]
        stats = [item for future in futures for item in future.result()]
    stop.set()
    writer.join(timeout=60.0)
    elapsed = time.perf_counter() - started
    latencies = [value for s in stats for value in s.latencies]
    written = writer_stats[0] if writer_stats else PollerStats(errors=1)
    return LoadResult(
        mode=mode,
        pollers=pollers,
        seconds=elapsed,
        latency=LatencySummary.of(latencies),
        requests=len(latencies),
        not_modified=sum(s.not_modified for s in stats),
        errors=sum(s.errors for s in stats),
        gaps=sum(s.gaps for s in stats),
        epochs_written=written.epochs_seen,
        write_latency=LatencySummary.of(written.latencies),
        write_errors=written.errors,
        response_bytes=sum(s.response_bytes for s in stats),
    )


# -- report -------------------------------------------------------------------------------------------------------


def _print_single(results: Sequence[SingleReadResult]) -> None:
    rows = [
        (f"{r.epochs:,} epochs", r.case, r.latency.count, r.latency.p50, r.latency.p90, r.latency.p99, r.body_bytes)
        for r in results
    ]
    print(table(("history", "read", "reads", "p50 ms", "p90 ms", "p99 ms", "body bytes"), rows))
    for r in results:
        if r.epochs == 1000 and r.case.startswith("full"):
            print(
                f"goal: 1,000-epoch full read ({r.case}) p50 <= {GOAL_FULL_P50_MS:.0f} ms: {r.latency.p50:.2f} ms, "
                f"{verdict(r.latency.p50, GOAL_FULL_P50_MS, higher_is_better=False)}"
            )


def _print_load(results: Sequence[LoadResult]) -> None:
    rows = [
        (
            r.mode,
            r.requests,
            r.requests_per_second,
            r.not_modified,
            r.latency.p50,
            r.latency.p99,
            r.latency.max,
            r.errors,
            r.gaps,
            f"{r.response_bytes / r.seconds / 1e6:.2f}",
            r.epochs_written,
            r.write_latency.p50,
            r.write_latency.p99,
        )
        for r in results
    ]
    headers = (
        "polls",
        "requests",
        "req/s",
        "304s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "gaps",
        "MB/s out",
        "epochs written",
        "write p50 ms",
        "write p99 ms",
    )
    print(table(headers, rows))
    for r in results:
        if r.mode == "incremental":
            ok = r.errors == 0 and r.gaps == 0 and r.write_errors == 0
            print(
                f"goal: incremental polls under load p99 <= {GOAL_LOAD_P99_MS:.0f} ms: {r.latency.p99:.2f} ms, "
                f"{verdict(r.latency.p99, GOAL_LOAD_P99_MS, higher_is_better=False)}; "
                f"errors {r.errors} (+{r.write_errors} writer), gaps {r.gaps}: {'met' if ok else 'MISSED'}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="history lengths for one poller")
    parser.add_argument("--reads", type=int, default=200, help="timed reads per case with one poller (default 200)")
    parser.add_argument("--pollers", type=int, default=32, help="concurrent pollers under load (default 32)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each load run (default 10)")
    parser.add_argument(
        "--poll-interval",
        type=float,
        nargs="+",
        default=[1.0, 0.1],
        help="seconds between one poller's polls; one load run per value (default: 1.0, as `trainops ops watch`, "
        "then 0.1 as a stress test; 0: flat out)",
    )
    parser.add_argument("--write-every", type=float, default=0.1, help="seconds between epochs (default 0.1)")
    parser.add_argument("--load-history", type=int, default=1000, help="epochs already stored (default 1,000)")
    parser.add_argument("--skip-full-load", action="store_true", help="only incremental polls under load")
    parser.add_argument(
        "--client-processes", type=int, default=4, help="client processes the pollers are spread over (default 4)"
    )
    parser.add_argument("--quick", action="store_true", help="50 reads per case, 3 s load runs")
    args = parser.parse_args(argv)
    reads, seconds = (50, 3.0) if args.quick else (args.reads, args.seconds)

    with trainops_server() as server:
        print(f"trainops read: server {server.url} (uvicorn, 1 process, pid {server.pid}), SQLite in {server.home}")
        print(machine())
        print("\none poller, full history with diagnosis:")
        _print_single(single_poller(server.url, args.sizes, reads))
        modes = ["incremental"] if args.skip_full_load else ["incremental", "full"]
        for interval in args.poll_interval:
            print(
                f"\n{args.pollers} pollers ({args.client_processes} client processes) every "
                f"{interval * 1000:.0f} ms, one writer every {args.write_every * 1000:.0f} ms, {seconds:.0f} s each, "
                f"history starting at {args.load_history:,} epochs:"
            )
            load = [
                under_load(
                    server.url,
                    mode=mode,
                    history=args.load_history,
                    pollers=args.pollers,
                    seconds=seconds,
                    poll_interval=interval,
                    write_every=args.write_every,
                    processes=args.client_processes,
                )
                for mode in modes
            ]
            _print_load(load)


if __name__ == "__main__":
    main()
