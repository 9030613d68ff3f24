"""trainops beside MLflow: logging and reading back a training run's metrics, both against a real server.

Both servers run at once on this machine, each one process on a fresh SQLite database: ``mlflow server``
(``--workers 1`` by default, the same footing as trainops' single uvicorn process) and trainops (uvicorn). One
client process drives both, the way a training loop would:

* log: 100 epochs x 6 metrics (train/val loss and accuracy, learning rate, duration), one call per epoch, each
  tool both ways it offers. MLflow: ``mlflow.log_metrics(metrics, step=epoch)`` inside ``mlflow.start_run()``,
  synchronous (its default) and with ``synchronous=False`` plus ``mlflow.flush_async_logging()``. trainops:
  ``run.epoch(record)`` on the run a training loop holds (``HttpTrainOps.run()``), unbuffered (one request per
  epoch, answered before the call returns) and buffered (its HTTP default: a background thread sends batches)
  plus ``run.flush()``. Every variant is timed until the server has every epoch; creating the run/operation is
  reported on its own.
* read: every metric's full history. MLflow: ``MlflowClient().get_metric_history(run_id, key)`` for each of the
  6 keys. trainops: one ``get_metrics`` call (all epochs and the diagnosis), from a fresh client so no ETag
  short-cut applies.

Each scenario is repeated ``--repeats`` times, alternating the two systems, and the median is reported with the
ratio MLflow / trainops. Goal: trainops at least 10x faster.

MLflow is not a trainops dependency: run this with an environment that has it, e.g.
``python3 -m venv .venv-bench && .venv-bench/bin/pip install -e '.[bench]'`` then
``.venv-bench/bin/python bench/mlflow_compare.py``. Telemetry is switched off for both client and server.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _report import machine, table, verdict
from _server import LOOPBACK, RunningServer, free_port, serve, trainops_server
from _workload import STANDARD_FIELDS, epoch_record

from trainops import EpochRecord, HttpTrainOps

GOAL_SPEEDUP = 10.0
_NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}

os.environ.update(_NO_TELEMETRY)  # before mlflow is imported: nothing may leave this machine
try:
    import mlflow
    from mlflow.tracking import MlflowClient
except ImportError:  # main() says how to get it
    MLFLOW_INSTALLED = False
else:
    MLFLOW_INSTALLED = True
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # e.g. no "Creating a new experiment" line


@dataclass(frozen=True)
class Timing:
    """Seconds for one system in one repetition."""

    setup: float
    log: float
    read: float


@contextlib.contextmanager
def mlflow_server(workers: int) -> Iterator[RunningServer]:
    """``mlflow server`` on a fresh SQLite store and artifact folder in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="mlflow-bench-") as scratch:
        home = Path(scratch)
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{home / 'mlflow.db'}",
            "--artifacts-destination",
            str(home / "artifacts"),
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        env = {**os.environ, **_NO_TELEMETRY}
        with serve(argv, url=f"http://{LOOPBACK}:{port}", health_path="/health", home=home, env=env) as server:
            yield server


def _metrics_of(record: dict[str, Any]) -> dict[str, float]:
    return {name: float(record[name]) for name in STANDARD_FIELDS}


def run_mlflow(epochs: int, repetition: int, *, synchronous: bool) -> Timing:
    """Log ``epochs`` epochs to a new MLflow run, then read each metric's history back.

    ``synchronous=False`` is MLflow's asynchronous logging; the timed loop then ends with
    ``mlflow.flush_async_logging()``, so both modes time until the server has everything.
    """
    records = [epoch_record(e, epochs, seed=repetition) for e in range(epochs)]
    t0 = time.perf_counter()
    run = mlflow.start_run(run_name=f"bench-{repetition}")
    setup = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        for record in records:
            mlflow.log_metrics(_metrics_of(record), step=record["epoch"], synchronous=synchronous)
        if not synchronous:
            mlflow.flush_async_logging()
        log = time.perf_counter() - t0
    finally:
        with contextlib.redirect_stdout(io.StringIO()):  # end_run prints "View run ... at: <url>"
            mlflow.end_run()
    client = MlflowClient()
    t0 = time.perf_counter()
    histories = {key: client.get_metric_history(run.info.run_id, key) for key in STANDARD_FIELDS}
    read = time.perf_counter() - t0
    _check_counts("MLflow", {key: len(values) for key, values in histories.items()}, epochs)
    return Timing(setup, log, read)


def run_trainops(url: str, epochs: int, repetition: int, *, buffered: bool) -> Timing:
    """Log ``epochs`` epochs through a trainops run (what a training loop holds), then read its metrics (history
    and diagnosis) back.

    ``buffered`` is the HTTP client's default: ``run.log`` queues and a background thread sends batches; the
    timed loop ends with ``run.flush()``, so both modes time until the server has everything. Unbuffered, each
    ``run.log`` is one request answered before it returns.
    """
    records = [EpochRecord.model_validate(epoch_record(e, epochs, seed=repetition)) for e in range(epochs)]
    with HttpTrainOps(url, retries=0) as ops:
        t0 = time.perf_counter()
        run = ops.run("training", total_epochs=epochs, flush_interval=0.5 if buffered else None)
        with run:
            setup = time.perf_counter() - t0
            t0 = time.perf_counter()
            for record in records:
                run.epoch(record)
            run.flush()
            log = time.perf_counter() - t0
    with HttpTrainOps(url, retries=0) as reader:
        reader.health()  # open the connection outside the timing, as MLflow's pooled session has one
        t0 = time.perf_counter()
        metrics = reader.get_metrics(run.operation_id)
        read = time.perf_counter() - t0
    history = metrics.metrics.epochs
    _check_counts("trainops", {key: sum(r.value(key) is not None for r in history) for key in STANDARD_FIELDS}, epochs)
    return Timing(setup, log, read)


def _check_counts(system: str, counts: dict[str, int], epochs: int) -> None:
    short = {key: count for key, count in counts.items() if count != epochs}
    if short:
        raise RuntimeError(f"{system} read back {short} values instead of {epochs} per metric")


def _median(timings: Sequence[Timing], phase: str) -> float:
    return statistics.median(float(getattr(t, phase)) for t in timings)


def _print(times: dict[str, list[Timing]], epochs: int) -> None:
    """One table of medians, then the ratios: like for like, and each tool's default way of logging."""
    rows = []
    for system, timings in times.items():
        rows.append(
            (
                system,
                _median(timings, "setup") * 1000,
                _median(timings, "log") * 1000,
                _median(timings, "log") / epochs * 1000,
                _median(timings, "read") * 1000,
            )
        )
    print(
        table(
            (
                "system (median)",
                "create ms",
                f"log {epochs} x {len(STANDARD_FIELDS)} ms",
                "ms/epoch",
                f"read {len(STANDARD_FIELDS)} histories ms",
            ),
            rows,
        )
    )
    comparisons = [
        ("log, each tool's default", "MLflow (synchronous)", "trainops (buffered)", "log"),
        ("log, both synchronous", "MLflow (synchronous)", "trainops (unbuffered)", "log"),
        ("log, both asynchronous", "MLflow (asynchronous)", "trainops (buffered)", "log"),
        ("read every history", "MLflow (synchronous)", "trainops (buffered)", "read"),
    ]
    for label, mlflow_system, trainops_system, phase in comparisons:
        speedup = _median(times[mlflow_system], phase) / _median(times[trainops_system], phase)
        print(
            f"goal: {label}: trainops >= {GOAL_SPEEDUP:.0f}x faster than MLflow: {speedup:.1f}x, "
            f"{verdict(speedup, GOAL_SPEEDUP, higher_is_better=True)}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs per run (default 100)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per system, medians reported (default 5)")
    parser.add_argument("--mlflow-workers", type=int, default=1, help="mlflow server --workers (default 1)")
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    args = parser.parse_args(argv)
    if not MLFLOW_INSTALLED:
        sys.exit(
            "mlflow is not installed in this environment. It is not a trainops dependency; make a separate one:\n"
            "  python3 -m venv .venv-bench && .venv-bench/bin/pip install -e '.[bench]'\n"
            "then run: .venv-bench/bin/python bench/mlflow_compare.py"
        )
    repeats = 2 if args.quick else args.repeats

    with mlflow_server(args.mlflow_workers) as tracking, trainops_server() as trainops:
        print(
            f"MLflow {mlflow.__version__} server {tracking.url} (--workers {args.mlflow_workers}, SQLite) vs "
            f"trainops server {trainops.url} (uvicorn, 1 process, SQLite); {args.epochs} epochs, {repeats} repeats"
        )
        print(machine())
        mlflow.set_tracking_uri(tracking.url)
        mlflow.set_experiment("trainops-bench")
        systems: dict[str, Callable[[int, int], Timing]] = {
            "MLflow (synchronous)": lambda n, r: run_mlflow(n, r, synchronous=True),
            "MLflow (asynchronous)": lambda n, r: run_mlflow(n, r, synchronous=False),
            "trainops (unbuffered)": lambda n, r: run_trainops(trainops.url, n, r, buffered=False),
            "trainops (buffered)": lambda n, r: run_trainops(trainops.url, n, r, buffered=True),
        }
        for measure in systems.values():  # warm-up: first requests, imports, connection pools
            measure(10, -1)
        times: dict[str, list[Timing]] = {system: [] for system in systems}
        for repetition in range(repeats):  # alternate the systems, so drifts in machine load hit all alike
            for system, measure in systems.items():
                times[system].append(measure(args.epochs, repetition))
    _print(times, args.epochs)


if __name__ == "__main__":
    main()
