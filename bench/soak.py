"""Load and soak: 32 pollers and 8 writers against one ``trainops serve`` process for 10 minutes, on SQLite and
then on PostgreSQL.

The server is a real ``trainops serve`` process on loopback (``_server_process.ServerProcess``), on a fresh SQLite
database in its own home, or with ``TRAINOPS_DATABASE_URL`` on a throwaway PostgreSQL server started from the
machine's binaries exactly as the test suite starts one (``tests/postgres.py``: ``initdb``/``pg_ctl``, as the
``postgres`` user when root, fsync off). Its clients are threads spread over client processes (spawned, so 40
threads do not queue for one GIL and show up as server latency):

* **Writers** (8): each is one training run. Even-numbered writers report as an unbuffered loop does: one epoch
  per ``POST .../metrics`` every 0.5 s, a ``POST .../progress`` after each. Odd-numbered writers report as
  ``HttpTrainOps``'s buffered run does: an epoch every 0.2 s, queued, sent as ``{"epochs": [...]}`` with a
  progress update once a second. Every writer sends ``POST .../heartbeat`` every 5 s and ends its run with
  ``POST .../complete`` once the time is up. An epoch that fails is sent again (re-sending replaces it), so every
  epoch a writer produced is acknowledged once the run ends.
* **Pollers** (32), each following one run, in four roles as the dashboard and ``trainops ops watch`` do:
  the runs page (``GET /operations?include=best`` every 2 s), ``ops watch`` (``GET .../metrics?since_epoch=N``
  with ``If-None-Match`` every 1 s: mostly 304s), a chart (``GET .../metrics?points=2000`` with
  ``If-None-Match`` every 2 s) and an events stream (``GET .../events``, reading every event, reconnecting with
  ``Last-Event-ID`` every 30 s as ``EventSource`` would after a dropped connection). A stream's latency is the time
  to its response headers; a stream reader checks that its ``epochs`` events never skip or repeat an epoch.

Reported per route: requests, requests/s, p50/p99/max; errors (any status but 2xx/304, or a transport error;
goal 0) with the first few described; the server process's RSS (psutil: the process and its children) at the
start, every ``--sample-every`` seconds (60) and at the end, with the epochs stored at that moment (a history cached
in memory grows with its run, so growth per stored epoch is printed too; goal: flat); and, once every run ended,
every run's whole history read back (``GET .../metrics``): every acknowledged epoch there exactly once with the
values written (goal: none lost, none duplicated, none altered). The server log's tracebacks are counted.

The server keeps live runs' histories in memory (``TRAINOPS_HISTORY_CACHE_EPOCHS``, 100,000 epochs by default), so
its memory grows with the epochs stored until that budget is reached; ``--history-cache-epochs 6000`` sets a
budget below what a soak stores, to watch it level off.

Run: ``.venv/bin/python bench/soak.py`` (2 x 10 min; ``--database sqlite``, ``--minutes 3``, ``--quick``: 1 minute
with 16 pollers and 4 writers on each database).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from _report import LatencySummary, machine, percentile, table
from _server_process import ServerProcess, clean_env
from _workload import STANDARD_FIELDS, create_operation, epoch_record

from trainops.core.epoch import MAX_EPOCH

API = "/api/v1"
TOTAL_EPOCHS = 100_000
"""The runs' planned length: larger than any soak writes, so the curves keep their shape and runs never end early."""

RUNS_PAGE_EVERY = 2.0
WATCH_EVERY = 1.0
CHART_EVERY = 2.0
STREAM_RECONNECT_EVERY = 30.0
HEARTBEAT_EVERY = 5.0
SINGLE_EPOCH_EVERY = 0.5
BUFFERED_EPOCH_EVERY = 0.2
BUFFERED_FLUSH_EVERY = 1.0
ROLES = ("runs page", "watch", "chart", "events")

MAX_ERROR_SAMPLES = 5


# -- what each client process brings back ---------------------------------------------------------------------------


@dataclass
class Tally:
    """Latencies per route, errors with a few descriptions, and what the clients checked, for one process."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    not_modified: int = 0
    stream_events: int = 0
    stream_epochs: int = 0
    stream_gaps: int = 0
    stream_repeats: int = 0
    written: dict[str, list[int]] = field(default_factory=dict)
    """Per operation, the epochs a writer had acknowledged (2xx) when it ended."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, route: str, seconds: float) -> None:
        with self.lock:
            self.latencies[route].append(seconds)

    def error(self, route: str, what: str) -> None:
        with self.lock:
            self.errors[route] += 1
            if len(self.error_samples) < MAX_ERROR_SAMPLES:
                self.error_samples.append(f"{route}: {what}")

    def plain(self) -> dict[str, Any]:
        """Picklable (no lock, no defaultdict factories)."""
        return {
            "latencies": dict(self.latencies),
            "errors": dict(self.errors),
            "error_samples": self.error_samples,
            "not_modified": self.not_modified,
            "stream_events": self.stream_events,
            "stream_epochs": self.stream_epochs,
            "stream_gaps": self.stream_gaps,
            "stream_repeats": self.stream_repeats,
            "written": self.written,
        }


def _call(
    tally: Tally, client: httpx.Client, route: str, method: str, path: str, **kwargs: Any
) -> httpx.Response | None:
    """One timed request; any status but 2xx/304, or a transport error, counts as an error of ``route``."""
    t0 = time.perf_counter()
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        tally.record(route, time.perf_counter() - t0)
        tally.error(route, f"{type(exc).__name__}: {exc}")
        return None
    tally.record(route, time.perf_counter() - t0)
    if response.status_code == 304:
        tally.not_modified += 1
    elif not 200 <= response.status_code < 300:
        tally.error(route, f"HTTP {response.status_code}: {response.text[:200]}")
        return None
    return response


def _wait_until(stop_at: float, moment: float) -> bool:
    """Sleep until ``moment`` (perf_counter) but not past ``stop_at``; False once the time is up."""
    time.sleep(max(0.0, min(moment, stop_at) - time.perf_counter()))
    return time.perf_counter() < stop_at


# -- writers --------------------------------------------------------------------------------------------------------


def _writer(url: str, operation_id: str, seed: int, buffered: bool, stop_at: float, tally: Tally) -> None:
    """One training run reporting until ``stop_at``, then ending it completed (see the module docstring)."""
    base = f"{API}/operations/{operation_id}"
    acknowledged: list[int] = []
    pending: list[int] = []  # produced, not acknowledged yet
    epoch = 0
    every = BUFFERED_EPOCH_EVERY if buffered else SINGLE_EPOCH_EVERY
    send_every = BUFFERED_FLUSH_EVERY if buffered else SINGLE_EPOCH_EVERY
    route = "POST .../metrics (batch)" if buffered else "POST .../metrics (1 epoch)"
    with httpx.Client(base_url=url, timeout=30.0) as client:
        start = time.perf_counter()
        next_send = start + send_every
        next_heartbeat = start + HEARTBEAT_EVERY

        def send() -> None:
            if not pending:
                return
            records = [epoch_record(e, TOTAL_EPOCHS, seed=seed) for e in pending]
            body = {"epochs": records} if buffered else records[0]
            if _call(tally, client, route, "POST", f"{base}/metrics", json=body) is not None:
                acknowledged.extend(pending)
                pending.clear()
            progress = {
                "percentage": 100.0 * epoch / TOTAL_EPOCHS,
                "phase": "training",
                "epoch": epoch,
                "total_epochs": TOTAL_EPOCHS,
                "message": f"Epoch {epoch}/{TOTAL_EPOCHS}",
            }
            _call(tally, client, "POST .../progress", "POST", f"{base}/progress", json=progress)

        while True:
            # An epoch "trains" for ``every`` seconds; the buffered writer sends what it queued once per flush.
            if not _wait_until(stop_at, start + (epoch + 1) * every):
                break
            pending.append(epoch)
            epoch += 1
            now = time.perf_counter()
            if not buffered or now >= next_send:
                send()
                next_send = now + send_every
            if now >= next_heartbeat:
                _call(tally, client, "POST .../heartbeat", "POST", f"{base}/heartbeat")
                next_heartbeat = now + HEARTBEAT_EVERY
        for _ in range(10):  # the run's end: deliver the rest, as a run's flush does, a bounded number of tries
            send()
            if not pending:
                break
            time.sleep(0.5)
        _call(tally, client, "POST .../complete", "POST", f"{base}/complete", json={"status": "completed"})
    with tally.lock:
        tally.written[operation_id] = acknowledged


def writer_group(url: str, runs: Sequence[tuple[str, int, bool]], stop_at_wall: float) -> dict[str, Any]:
    """Threads, one per ``(operation id, seed, buffered)``, in this client process."""
    tally = Tally()
    stop_at = time.perf_counter() + (stop_at_wall - time.time())
    threads = [threading.Thread(target=_writer, args=(url, *run, stop_at, tally), daemon=True) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally.plain()


# -- pollers --------------------------------------------------------------------------------------------------------


def _runs_page(client: httpx.Client, operation_id: str, stop_at: float, tally: Tally) -> None:
    next_poll = time.perf_counter()
    while _wait_until(stop_at, next_poll):
        response = _call(
            tally, client, "GET /operations?include=best", "GET", f"{API}/operations", params={"include": "best"}
        )
        if response is not None and not any(
            item["operation_id"] == operation_id for item in response.json()["data"]["items"]
        ):
            tally.error("GET /operations?include=best", f"{operation_id} missing from the runs page")
        next_poll += RUNS_PAGE_EVERY


def _watch(client: httpx.Client, operation_id: str, stop_at: float, tally: Tally) -> None:
    """``ops watch``: new epochs only, with the last ETag; the epochs must follow on from the last seen."""
    path = f"{API}/operations/{operation_id}/metrics"
    last, etag = -1, None
    next_poll = time.perf_counter()
    while _wait_until(stop_at, next_poll):
        headers: dict[str, str] = {"If-None-Match": etag} if etag else {}
        route = "GET .../metrics?since_epoch (ETag)"
        response = _call(tally, client, route, "GET", path, params={"since_epoch": last}, headers=headers)
        if response is not None and response.status_code == 200:
            epochs = [record["epoch"] for record in response.json()["data"]["metrics"]["epochs"]]
            if epochs and epochs != list(range(last + 1, last + 1 + len(epochs))):
                tally.error(route, f"after epoch {last} the poll answered {epochs[:5]}...: not the next epochs")
            last = epochs[-1] if epochs else last
            etag = response.headers.get("etag")
        next_poll += WATCH_EVERY


def _chart(client: httpx.Client, operation_id: str, stop_at: float, tally: Tally) -> None:
    path = f"{API}/operations/{operation_id}/metrics"
    etag = None
    next_poll = time.perf_counter()
    while _wait_until(stop_at, next_poll):
        headers: dict[str, str] = {"If-None-Match": etag} if etag else {}
        response = _call(
            tally, client, "GET .../metrics?points=2000", "GET", path, params={"points": 2000}, headers=headers
        )
        if response is not None and response.status_code == 200:
            etag = response.headers.get("etag")
        next_poll += CHART_EVERY


def _events(client: httpx.Client, operation_id: str, stop_at: float, tally: Tally) -> None:
    """Read the stream, reconnecting with ``Last-Event-ID`` every ``STREAM_RECONNECT_EVERY`` seconds."""
    path = f"{API}/operations/{operation_id}/events"
    route = "GET .../events (to headers)"
    last_id: str | None = None
    last_epoch = -1
    while time.perf_counter() < stop_at:
        until = min(stop_at, time.perf_counter() + STREAM_RECONNECT_EVERY)
        headers = {"Last-Event-ID": last_id} if last_id else {}
        t0 = time.perf_counter()
        try:
            with client.stream("GET", path, headers=headers) as response:
                tally.record(route, time.perf_counter() - t0)
                if response.status_code == 204:  # the run ended and we have everything
                    return
                if response.status_code != 200:
                    tally.error(route, f"HTTP {response.status_code}")
                    time.sleep(1.0)
                    continue
                event_id, event = None, None
                for line in response.iter_lines():  # an event or a keep-alive at least every 15 s
                    if line.startswith("id: "):
                        event_id = line[4:]
                    elif line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event_id is not None:
                        tally.stream_events += 1
                        if event == "epochs":
                            for record in json.loads(line[6:])["epochs"]:
                                if record["epoch"] <= last_epoch:
                                    tally.stream_repeats += 1
                                elif record["epoch"] != last_epoch + 1:
                                    tally.stream_gaps += 1
                                last_epoch = max(last_epoch, record["epoch"])
                                tally.stream_epochs += 1
                        last_id = event_id
                    if time.perf_counter() >= until:
                        break
        except httpx.HTTPError as exc:
            tally.record(route, time.perf_counter() - t0)
            tally.error(route, f"{type(exc).__name__}: {exc}")
            time.sleep(1.0)


_ROLE_LOOPS: dict[str, Callable[[httpx.Client, str, float, Tally], None]] = {
    "runs page": _runs_page,
    "watch": _watch,
    "chart": _chart,
    "events": _events,
}


def poller_group(url: str, pollers: Sequence[tuple[str, str, float]], stop_at_wall: float) -> dict[str, Any]:
    """Threads, one per ``(role, operation id, start offset s)``, each with its own client, in this process."""
    tally = Tally()
    stop_at = time.perf_counter() + (stop_at_wall - time.time())

    def run(role: str, operation_id: str, offset: float) -> None:
        time.sleep(offset)  # spread the pollers over an interval rather than all at once
        with httpx.Client(base_url=url, timeout=httpx.Timeout(30.0, read=60.0)) as client:
            _ROLE_LOOPS[role](client, operation_id, stop_at, tally)

    threads = [threading.Thread(target=run, args=poller, daemon=True) for poller in pollers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally.plain()


# -- the server, its memory and the read-back ----------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident memory of the server process and any children it started."""
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


def epochs_stored(client: httpx.Client, operation_ids: Sequence[str]) -> int:
    total = 0
    for operation_id in operation_ids:
        # since the last epoch a history may hold: the counts without the epochs themselves
        response = client.get(f"{API}/operations/{operation_id}/metrics", params={"since_epoch": MAX_EPOCH})
        total += int(response.json()["data"]["metrics"].get("epochs_stored") or 0) if response.is_success else 0
    return total


@dataclass(frozen=True)
class ReadBack:
    written: int
    stored: int
    lost: int
    duplicated: int
    altered: int
    unexpected: int
    detail: list[str]


def read_back(client: httpx.Client, written: dict[str, list[int]], seeds: dict[str, int]) -> ReadBack:
    """Every run's whole history against what its writer had acknowledged, value by value."""
    lost = duplicated = altered = unexpected = stored = 0
    detail: list[str] = []
    for operation_id, epochs in written.items():
        response = client.get(f"{API}/operations/{operation_id}/metrics", timeout=120.0)
        response.raise_for_status()
        records = response.json()["data"]["metrics"]["epochs"]
        stored += len(records)
        seen: dict[int, dict[str, Any]] = {}
        for record in records:
            if record["epoch"] in seen:
                duplicated += 1
            seen[record["epoch"]] = record
        missing = sorted(set(epochs) - set(seen))
        extra = sorted(set(seen) - set(epochs))
        lost += len(missing)
        unexpected += len(extra)
        if missing:
            detail.append(f"{operation_id}: {len(missing)} epochs lost, first {missing[:5]}")
        if extra:
            detail.append(f"{operation_id}: {len(extra)} epochs stored that no POST acknowledged, first {extra[:5]}")
        for epoch in epochs:
            if epoch not in seen:
                continue
            expected = epoch_record(epoch, TOTAL_EPOCHS, seed=seeds[operation_id])
            if any(seen[epoch].get(name) != expected[name] for name in STANDARD_FIELDS):
                altered += 1
                if altered <= MAX_ERROR_SAMPLES:
                    detail.append(f"{operation_id} epoch {epoch}: stored {seen[epoch]} != written {expected}")
    return ReadBack(sum(map(len, written.values())), stored, lost, duplicated, altered, unexpected, detail)


@contextmanager
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server (the test suite's own helper) with a fresh ``trainops_soak`` database."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from sqlalchemy import create_engine, text

    import postgres  # type: ignore[import-not-found]  # tests/postgres.py: pytest-free

    reason = postgres.missing_reason()
    if reason:
        raise SystemExit(f"cannot start PostgreSQL: {reason}; run with --database sqlite")
    with postgres.postgres_server() as base:
        admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE trainops_soak"))
        admin.dispose()
        yield f"{base}/trainops_soak"


# -- one soak -------------------------------------------------------------------------------------------------------


@dataclass
class SoakResult:
    database: str
    seconds: float
    tallies: list[dict[str, Any]]
    memory: list[tuple[float, int, int]]
    """(seconds since the load began, RSS bytes, epochs stored)."""
    read_back: ReadBack
    tracebacks: int


def soak(
    database: str,
    *,
    seconds: float,
    writers: int,
    pollers: int,
    processes: int,
    sample_every: float,
    history_cache_epochs: int | None = None,
) -> SoakResult:
    with (
        tempfile.TemporaryDirectory(prefix="trainops-soak-") as scratch,
        postgres_url() if database == "postgres" else _no_url() as url,
    ):
        env = {"TRAINOPS_DATABASE_URL": url} if url else {}
        if history_cache_epochs is not None:
            env["TRAINOPS_HISTORY_CACHE_EPOCHS"] = str(history_cache_epochs)
        if url:  # a server creates a SQLite schema itself but leaves a shared database's to `trainops db upgrade`
            upgrade = [sys.executable, "-m", "trainops.cli", "db", "upgrade"]
            subprocess.run(upgrade, env=clean_env(TRAINOPS_HOME=scratch, **env), check=True, capture_output=True)
        with ServerProcess(Path(scratch) / "home", env) as server:
            return _drive(server, database, seconds, writers, pollers, processes, sample_every)


@contextmanager
def _no_url() -> Iterator[str | None]:
    yield None


def _drive(
    server: ServerProcess,
    database: str,
    seconds: float,
    writers: int,
    pollers: int,
    processes: int,
    sample_every: float,
) -> SoakResult:
    assert server.process is not None
    url, pid = server.url, server.process.pid
    print(f"\n== {database}: server {url} (trainops serve, pid {pid}); {machine()}", flush=True)
    with httpx.Client(base_url=url, timeout=60.0) as client:
        runs = [(create_operation(client, TOTAL_EPOCHS), seed, seed % 2 == 1) for seed in range(writers)]
        for operation_id, _, _ in runs:
            client.post(f"{API}/operations/{operation_id}/start").raise_for_status()
        ids = [operation_id for operation_id, _, _ in runs]
        following = [
            (ROLES[i % len(ROLES)], ids[i % len(ids)], (i // len(ROLES)) * RUNS_PAGE_EVERY / max(pollers // 4, 1))
            for i in range(pollers)
        ]
        started_wall = time.time()
        stop_at = started_wall + seconds
        memory = [(0.0, rss_bytes(pid), 0)]
        writer_processes = max(1, min(processes // 2, writers))
        poller_processes = max(1, processes - writer_processes)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=writer_processes + poller_processes, mp_context=context) as pool:
            futures: list[Future[dict[str, Any]]] = [
                pool.submit(writer_group, url, runs[i::writer_processes], stop_at) for i in range(writer_processes)
            ]
            futures += [
                pool.submit(poller_group, url, following[i::poller_processes], stop_at)
                for i in range(poller_processes)
                if following[i::poller_processes]
            ]
            next_sample = started_wall + sample_every
            while time.time() < stop_at:
                time.sleep(max(0.0, min(next_sample, stop_at) - time.time()))
                if time.time() >= next_sample:
                    memory.append((time.time() - started_wall, rss_bytes(pid), epochs_stored(client, ids)))
                    print(
                        f"  {memory[-1][0]:6.0f} s  RSS {memory[-1][1] / 2**20:7.1f} MiB  epochs stored "
                        f"{memory[-1][2]:,}",
                        flush=True,
                    )
                    next_sample += sample_every
            tallies = [future.result() for future in futures]
        elapsed = time.time() - started_wall
        memory.append((elapsed, rss_bytes(pid), epochs_stored(client, ids)))
        written: dict[str, list[int]] = {}
        for tally in tallies:
            written.update(tally["written"])
        checked = read_back(client, written, {operation_id: seed for operation_id, seed, _ in runs})
    tracebacks = server.log.read_text(errors="replace").count("Traceback")
    return SoakResult(database, elapsed, tallies, memory, checked, tracebacks)


# -- report ---------------------------------------------------------------------------------------------------------


def report(result: SoakResult) -> bool:
    """Print the figures; True when every goal held."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    samples: list[str] = []
    for tally in result.tallies:
        for route, values in tally["latencies"].items():
            latencies[route].extend(values)
        for route, count in tally["errors"].items():
            errors[route] += count
        samples.extend(tally["error_samples"])
    rows = []
    for route in sorted(latencies):
        summary = LatencySummary.of(latencies[route])
        rows.append(
            (
                route,
                summary.count,
                summary.count / result.seconds,
                summary.p50,
                summary.p99,
                summary.max,
                errors.get(route, 0),
            )
        )
    total = sum(len(values) for values in latencies.values())
    rows.append(
        (
            "all",
            total,
            total / result.seconds,
            percentile([v * 1e3 for vs in latencies.values() for v in vs], 50),
            percentile([v * 1e3 for vs in latencies.values() for v in vs], 99),
            math.nan,
            sum(errors.values()),
        )
    )
    print(f"\n{result.database}: {result.seconds:.0f} s of load")
    print(table(("route", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "errors"), rows))
    not_modified = sum(tally["not_modified"] for tally in result.tallies)
    print(f"304 answers: {not_modified:,}")
    stream = {
        key: sum(tally[key] for tally in result.tallies)
        for key in ("stream_events", "stream_epochs", "stream_gaps", "stream_repeats")
    }
    print(
        f"events streams: {stream['stream_events']:,} events, {stream['stream_epochs']:,} epochs received, "
        f"{stream['stream_gaps']} gaps, {stream['stream_repeats']} repeats"
    )
    for sample in samples[:MAX_ERROR_SAMPLES]:
        print(f"  error: {sample}")

    print("\nserver memory (RSS)")
    mem_rows = [(f"{t:.0f} s", rss / 2**20, stored) for t, rss, stored in result.memory]
    print(table(("at", "RSS MiB", "epochs stored"), mem_rows))
    (_, first, _), (_, last, stored_end) = result.memory[0], result.memory[-1]
    # The first minute warms caches and pools; growth after it is what a leak would show.
    steady = result.memory[1] if len(result.memory) > 2 else result.memory[0]
    growth_steady = (last - steady[1]) / 2**20
    per_k = growth_steady / max(stored_end - steady[2], 1) * 1000
    print(
        f"growth: {(last - first) / 2**20:+.1f} MiB from the start, {growth_steady:+.1f} MiB after the first "
        f"sample ({per_k:+.2f} MiB per 1,000 epochs stored since)"
    )

    back = result.read_back
    print(
        f"\nread back: {back.written:,} epochs acknowledged, {back.stored:,} stored; lost {back.lost}, duplicated "
        f"{back.duplicated}, altered {back.altered}, stored unacknowledged {back.unexpected}"
    )
    for line in back.detail[:10]:
        print(f"  {line}")
    print(f"server log: {result.tracebacks} tracebacks")
    clean = (
        sum(errors.values()) == 0
        and stream["stream_gaps"] == 0
        and stream["stream_repeats"] == 0
        and back.lost == 0
        and back.duplicated == 0
        and back.altered == 0
        and result.tracebacks == 0
    )
    print(f"goals: 0 errors, none lost/duplicated/altered: {'met' if clean else 'MISSED'}; memory: see the series")
    return clean


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="load time per database (default 10)")
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--writers", type=int, help="training runs reporting at once (default 8; --quick 4)")
    parser.add_argument("--pollers", type=int, help="clients following them (default 32; --quick 16)")
    parser.add_argument("--client-processes", type=int, default=6, help="processes the clients are spread over")
    parser.add_argument("--sample-every", type=float, help="seconds between memory samples (default 60; --quick 10)")
    parser.add_argument("--quick", action="store_true", help="1 minute, 16 pollers and 4 writers")
    parser.add_argument(
        "--history-cache-epochs",
        type=int,
        help="the server's TRAINOPS_HISTORY_CACHE_EPOCHS (default: the server's own, 100,000); one below the epochs "
        "a soak stores shows the server's memory levelling off",
    )
    args = parser.parse_args(argv)
    minutes = 1.0 if args.quick else args.minutes
    writers = args.writers or (4 if args.quick else 8)
    pollers = args.pollers or (16 if args.quick else 32)
    sample_every = args.sample_every or (10.0 if args.quick else 60.0)
    databases = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    print(
        f"trainops soak: {writers} writers, {pollers} pollers ({', '.join(ROLES)}), {minutes:g} min per database, "
        f"{args.client_processes} client processes"
        + ("" if args.history_cache_epochs is None else f", history cache of {args.history_cache_epochs:,} epochs")
    )
    outcomes = []
    for database in databases:
        result = soak(
            database,
            seconds=minutes * 60,
            writers=writers,
            pollers=pollers,
            processes=args.client_processes,
            sample_every=sample_every,
            history_cache_epochs=args.history_cache_epochs,
        )
        outcomes.append(report(result))
    raise SystemExit(0 if all(outcomes) else 1)


if __name__ == "__main__":
    main()
