"""The dashboard in a real browser: time to first chart on a long run, and the latency of a live epoch.

A real server process (``python -m trainops.cli serve``, SQLite, as ``trainops serve`` runs it) and Debian's
Chromium, headless, driven by Playwright (the same browser the dashboard's tests use). Two figures:

* **Time to first chart** on the run page (``/runs/{id}``) of a finished run of ``--epochs`` epochs (10,000) with
  6 metrics (train and validation loss and accuracy, learning rate, duration): from the start of navigation (the
  browser's ``performance`` clock, 0 at navigation) to the page's ``trainops:first-chart`` mark, set right after the
  main chart first drew with data. Each round opens a fresh browser context (nothing cached: the HTML, uPlot, the
  scripts and the history all come from the server), then reloads it once (the browser's cache warm). A 10-epoch
  run, measured the same way in the same rounds, is the baseline: the difference is what the long history costs.
  Beside it, the size and server time of ``GET .../metrics?points=2000`` (what the page asks for: a history thinned
  for display) and of the full history.
* **Events latency**: a running run's page is open; the benchmark POSTs one epoch at a time (httpx, one request
  each, ``--interval`` apart plus a random fraction of it, so the POSTs fall anywhere in the stream's poll cycle)
  and waits for the page's ``trainops:epoch-drawn`` mark of that epoch. Latency = the mark's wall time
  (``performance.timeOrigin + startTime``; browser and benchmark share this machine's clock) minus the moment the
  POST was sent. The server looks for changes every ``TRAINOPS_EVENTS_POLL_INTERVAL`` (0.25 s by default), so
  about half of that is expected on average; ``--poll`` runs it again with a shorter interval for contrast.

Goal (issue 14): first chart under 1 s for 10,000 epochs x 6 metrics on this machine. Latency: a figure to watch.

Run: ``.venv/bin/python bench/dashboard.py`` (``--quick`` for a short run). Needs ``/usr/bin/chromium``
(``apt-get install -y chromium``; ``make test`` installs it) and the dashboard's vendor files (``make vendor``).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from _report import machine, percentile, table, verdict
from _server_process import ServerProcess
from playwright.sync_api import Browser, Page, sync_playwright

from trainops.client import HttpTrainOps

CHROMIUM = "/usr/bin/chromium"
BATCH = 1000
"""Epochs per POST while filling the long run."""


def curves(epochs: int, seed: int = 7) -> Iterator[dict[str, float | int]]:
    """A plausible long run: losses that fall and flatten with noise, accuracies that rise, a cosine learning rate."""
    rng = random.Random(seed)
    for epoch in range(1, epochs + 1):
        progress = epoch / epochs
        train = 0.25 + 2.0 * math.exp(-6 * progress) + rng.gauss(0, 0.02)
        val = 0.32 + 2.0 * math.exp(-5 * progress) + 0.08 * progress**2 + rng.gauss(0, 0.03)
        yield {
            "epoch": epoch,
            "train_loss": train,
            "val_loss": val,
            "train_accuracy": min(0.999, 0.55 + 0.42 * (1 - math.exp(-5 * progress)) + rng.gauss(0, 0.005)),
            "val_accuracy": min(0.999, 0.52 + 0.38 * (1 - math.exp(-4 * progress)) + rng.gauss(0, 0.01)),
            "learning_rate": 1e-3 * 0.5 * (1 + math.cos(math.pi * progress)),
            "duration": 1.8 + rng.random() * 0.2,
        }


def finished_run(url: str, epochs: int) -> str:
    """A completed run of ``epochs`` epochs x 6 metrics, stored through the REST API."""
    with HttpTrainOps(url) as ops:
        operation = ops.create_operation("training", metadata={"name": f"{epochs:,}-epoch run"}, total_epochs=epochs)
        operation_id = operation.operation_id
    with httpx.Client(base_url=f"{url}/api/v1", timeout=120) as client:
        batch: list[dict[str, float | int]] = []
        for record in curves(epochs):
            batch.append(record)
            if len(batch) == BATCH:
                client.post(f"/operations/{operation_id}/metrics", json={"epochs": batch}).raise_for_status()
                batch = []
        if batch:
            client.post(f"/operations/{operation_id}/metrics", json={"epochs": batch}).raise_for_status()
        client.post(f"/operations/{operation_id}/complete", json={"status": "completed"}).raise_for_status()
    return operation_id


def first_chart_ms(page: Page) -> float:
    """Milliseconds from navigation to the page's ``trainops:first-chart`` mark (waits for it)."""
    page.wait_for_function("() => performance.getEntriesByName('trainops:first-chart').length > 0", timeout=60_000)
    value: float = page.evaluate("performance.getEntriesByName('trainops:first-chart')[0].startTime")
    return value


def measure_first_chart(browser: Browser, url: str, operation_id: str) -> tuple[float, float]:
    """One round: a fresh context (cold cache), then one reload (warm); each page's time to first chart."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{url}/runs/{operation_id}")
        cold = first_chart_ms(page)
        page.reload()
        warm = first_chart_ms(page)
        return cold, warm
    finally:
        context.close()


def response_figures(url: str, operation_id: str, rounds: int) -> list[list[str]]:
    rows = []
    with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as client:
        for label, params in (("points=2000", {"points": 2000}), ("full history", {})):
            times, size = [], 0
            for _ in range(rounds):
                started = time.perf_counter()
                response = client.get(f"/operations/{operation_id}/metrics", params=params)
                times.append(time.perf_counter() - started)
                response.raise_for_status()
                size = len(response.content)
            epochs = len(response.json()["data"]["metrics"]["epochs"])
            rows.append([label, f"{epochs:,}", f"{size / 1024:,.0f} KiB", f"{statistics.median(times) * 1000:.0f} ms"])
    return rows


def measure_latency(browser: Browser, url: str, count: int, interval: float) -> list[float]:
    """Seconds from each epoch's POST to its point drawn on the open run page."""
    with HttpTrainOps(url) as ops:
        operation = ops.create_operation("training", metadata={"name": "live run"}, total_epochs=count + 10)
        operation_id = operation.operation_id
    rng = random.Random(3)
    latencies = []
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        with httpx.Client(base_url=f"{url}/api/v1", timeout=30) as client:
            metrics = f"/operations/{operation_id}/metrics"
            client.post(metrics, json=next(curves(count + 10))).raise_for_status()  # epoch 1: the page has a chart
            page = context.new_page()
            page.goto(f"{url}/runs/{operation_id}")
            page.wait_for_function("() => document.body.dataset.lastEpoch === '1'", timeout=60_000)
            for record in list(curves(count + 10))[1 : count + 1]:
                time.sleep(interval * (1 + rng.random()))
                epoch = record["epoch"]
                sent = time.time()
                client.post(metrics, json=record).raise_for_status()
                page.wait_for_function(f"() => document.body.dataset.lastEpoch === '{epoch}'", timeout=30_000)
                drawn_ms: float = page.evaluate(
                    """(epoch) => {
                        const marks = performance.getEntriesByName('trainops:epoch-drawn')
                            .filter((mark) => mark.detail && mark.detail.epoch === epoch);
                        return performance.timeOrigin + marks[0].startTime;
                    }""",
                    epoch,
                )
                latencies.append(drawn_ms / 1000 - sent)
            client.post(f"/operations/{operation_id}/complete", json={"status": "completed"}).raise_for_status()
    finally:
        context.close()
    return latencies


@contextmanager
def server(home: Path, poll: float | None = None) -> Iterator[ServerProcess]:
    env = {"TRAINOPS_EVENTS_POLL_INTERVAL": str(poll)} if poll is not None else {}
    with ServerProcess(home, env=env) as running:
        yield running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10_000, help="epochs of the long run (6 metrics each)")
    parser.add_argument("--rounds", type=int, default=5, help="page loads per run (fresh context each)")
    parser.add_argument("--latency-epochs", type=int, default=40, help="epochs POSTed one by one for the latency")
    parser.add_argument("--interval", type=float, default=0.3, help="seconds between those POSTs (plus up to as much)")
    parser.add_argument("--poll", type=float, default=0.05, help="a shorter poll interval to contrast")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and epochs")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.latency_epochs = 2, 10

    print(f"bench/dashboard.py: {machine()}")
    with tempfile.TemporaryDirectory(prefix="trainops-bench-dashboard-") as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            with server(Path(folder) / "default") as running:
                started = time.perf_counter()
                long_run = finished_run(running.url, args.epochs)
                print(f"stored {args.epochs:,} epochs x 6 metrics in {time.perf_counter() - started:.1f} s")
                short_run = finished_run(running.url, 10)
                measure_first_chart(browser, running.url, short_run)  # the server's first page: warm it up
                long_times: list[tuple[float, float]] = []
                short_times: list[tuple[float, float]] = []
                for _ in range(args.rounds):  # alternating, so both see the same machine
                    long_times.append(measure_first_chart(browser, running.url, long_run))
                    short_times.append(measure_first_chart(browser, running.url, short_run))
                rows = []
                for label, times in ((f"{args.epochs:,} epochs", long_times), ("10 epochs (baseline)", short_times)):
                    cold = [cold for cold, _ in times]
                    warm = [warm for _, warm in times]
                    figures = [statistics.median(cold), max(cold), statistics.median(warm), max(warm)]
                    rows.append([label, *(f"{value:.0f} ms" for value in figures)])
                print(f"\nTime to first chart on /runs/{{id}} ({args.rounds} rounds; goal: < 1000 ms)")
                print(table(["run", "cold median", "cold max", "warm median", "warm max"], rows))
                worst = max(max(pair) for pair in long_times)
                print(f"goal, the slowest load of the long run: {verdict(worst, 1000.0, higher_is_better=False)}")
                print(f"\nGET /operations/{{id}}/metrics of the {args.epochs:,}-epoch run (server time + transfer)")
                print(table(["query", "epochs sent", "body", "median"], response_figures(running.url, long_run, 5)))
                default_latency = measure_latency(browser, running.url, args.latency_epochs, args.interval)
            with server(Path(folder) / "fast", poll=args.poll) as running:
                fast_latency = measure_latency(browser, running.url, args.latency_epochs, args.interval)
        finally:
            browser.close()
    rows = []
    for label, values in (("0.25 s (default)", default_latency), (f"{args.poll} s", fast_latency)):
        ms = [value * 1000 for value in values]
        figures = [statistics.median(ms), percentile(ms, 90), max(ms)]
        rows.append([label, str(len(ms)), *(f"{value:.0f} ms" for value in figures)])
    print("\nEvents latency: an epoch's POST sent -> its point drawn on the open run page")
    print(table(["TRAINOPS_EVENTS_POLL_INTERVAL", "epochs", "median", "p90", "max"], rows))


if __name__ == "__main__":
    main()
