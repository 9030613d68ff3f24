"""What an idle runs page costs the server: ``GET /api/v1/operations?limit=1000&include=best`` polled with and
without ``If-None-Match``.

The dashboard's runs page polls that list (every 2 s while a run is active, every 10 s otherwise). Measured
against one real server (uvicorn, one process, fresh SQLite database) holding N runs of 20 epochs each (one still
training, the others finished):

* ``full``: the whole page every time, as the page polled before the list had an ETag;
* ``unchanged``: ``If-None-Match`` with the last ETag while nothing changed: a 304 from one aggregate query;
* ``after a write``: an epoch was added to one run just before each poll (untimed), so the tag moved and the
  page comes back whole: the price of a poll while training runs.

Run: ``.venv/bin/python bench/list_poll.py`` (``--runs 1000 3000``, ``--rounds 30``).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Iterator

import httpx
from _report import LatencySummary, machine, table
from _server import trainops_server
from _workload import epoch_record, seeded_operation

LIST = "/api/v1/operations"
PAGE = {"limit": 1000, "include": "best"}


def timed(client: httpx.Client, headers: dict[str, str] | None = None) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(LIST, params=PAGE, headers=headers or {})
    return time.perf_counter() - started, response


def measure(
    client: httpx.Client, rounds: int, runs: int, live_run: str, live_epochs: Iterator[int]
) -> list[list[object]]:
    first = client.get(LIST, params=PAGE)
    first.raise_for_status()
    tag = first.headers["ETag"]
    full: list[float] = []
    unchanged: list[float] = []
    written: list[float] = []
    sizes: dict[str, int] = {}
    for _ in range(rounds):
        seconds, response = timed(client)
        assert response.status_code == 200, response.text
        full.append(seconds)
        sizes["full"] = len(response.content)
        seconds, response = timed(client, {"If-None-Match": tag})
        assert response.status_code == 304, response.status_code
        unchanged.append(seconds)
        sizes["unchanged"] = len(response.content)
        record = epoch_record(next(live_epochs), 1_000_000)
        client.post(f"{LIST}/{live_run}/metrics", json={"epochs": [record]}).raise_for_status()
        seconds, response = timed(client, {"If-None-Match": tag})
        assert response.status_code == 200, response.status_code
        written.append(seconds)
        sizes["after a write"] = len(response.content)
        tag = response.headers["ETag"]
    rows = []
    for case, samples in (("full", full), ("unchanged (304)", unchanged), ("after a write", written)):
        summary = LatencySummary.of(samples)
        size = sizes["unchanged" if case.startswith("unchanged") else case]
        rows.append([runs, case, f"{summary.p50:.1f}", f"{summary.p90:.1f}", f"{size:,}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1000], help="runs stored (default 1000)")
    parser.add_argument("--rounds", type=int, default=30, help="polls of each kind (default 30)")
    arguments = parser.parse_args()
    print(machine())
    rows: list[list[object]] = []
    with trainops_server() as server, httpx.Client(base_url=server.url, timeout=60.0) as client:
        live_run = seeded_operation(client, 20)  # the one run still training: the writes go there
        live_epochs = itertools.count(20)
        stored = 1
        for runs in sorted(arguments.runs):
            for seed in range(stored, runs):
                operation_id = seeded_operation(client, 20, seed=seed)
                client.post(f"{LIST}/{operation_id}/complete", json={}).raise_for_status()
            stored = runs
            rows.extend(measure(client, arguments.rounds, runs, live_run, live_epochs))
    print(table(["runs", "poll", "p50 ms", "p90 ms", "bytes"], rows))
    by_case = {(row[0], row[1]): float(str(row[2])) for row in rows}
    for runs in sorted(arguments.runs):
        ratio = by_case[(runs, "full")] / by_case[(runs, "unchanged (304)")]
        print(f"{runs} runs: an unchanged poll costs 1/{ratio:.0f} of a full one")


if __name__ == "__main__":
    main()
