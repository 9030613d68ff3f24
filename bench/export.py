"""The CSV export of a long history: ``GET /api/v1/operations/{id}/metrics?format=csv`` on 100,000 epochs.

One real server (uvicorn, one process, fresh SQLite), a run of ``--epochs`` epochs (100,000) with the five standard
metrics, duration and ``--custom`` custom metrics (2). Measured, ``--rounds`` times each:

* ``cold``: the first export after a write (the server loads the history from the database, then formats it);
* ``warm``: the history is in the server's cache (what an export right after opening the run's page costs);
* the first byte's time (the answer is streamed, 2,000 rows a chunk) and the whole answer's, and its size;
* for contrast, the JSON history with its diagnosis (``format=json``) of the same run, warm.

Run: ``.venv/bin/python bench/export.py`` (``--quick``: 20,000 epochs, 2 rounds).
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx
from _report import machine, table
from _server import trainops_server
from _workload import epoch_record, post_epochs, seeded_operation


def timed(client: httpx.Client, path: str, params: dict[str, object]) -> tuple[float, float, int]:
    """Seconds to the first byte, to the last byte, and the bytes of one streamed GET."""
    started = time.perf_counter()
    first = None
    size = 0
    with client.stream("GET", path, params=params) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            if first is None:
                first = time.perf_counter() - started
            size += len(chunk)
    return first or 0.0, time.perf_counter() - started, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100_000)
    parser.add_argument("--custom", type=int, default=2, help="custom metrics per epoch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.rounds = 20_000, 2
    print(f"export benchmark: {args.epochs:,} epochs, {args.custom} custom metrics; {machine()}")
    with trainops_server() as server, httpx.Client(base_url=server.url, timeout=300) as client:
        operation_id = seeded_operation(client, args.epochs, custom_metrics=args.custom)
        path = f"/api/v1/operations/{operation_id}/metrics"
        rows = []
        cases: list[tuple[str, dict[str, object], bool]] = [
            ("csv cold", {"format": "csv"}, True),
            ("csv warm", {"format": "csv"}, False),
            ("json warm (history + diagnosis)", {"format": "json"}, False),
        ]
        for name, params, cold in cases:
            firsts, totals, size = [], [], 0
            for round_ in range(args.rounds):
                if cold:  # re-write the last epoch: the next read loads the changed history
                    post_epochs(client, operation_id, [epoch_record(args.epochs - 1, 2 * args.epochs, seed=round_)])
                else:
                    timed(client, path, params)  # makes sure the cache holds this version
                first, total, size = timed(client, path, params)
                firsts.append(first * 1000)
                totals.append(total * 1000)
            rows.append(
                [name, f"{statistics.median(firsts):.0f}", f"{statistics.median(totals):.0f}", f"{size / 2**20:.1f}"]
            )
        print(table(["case (median)", "first byte ms", "whole answer ms", "MiB"], rows))


if __name__ == "__main__":
    main()
