"""Executors: what running a training as a Ray job costs against running it on the server's own machine.

The same tiny strategy training (``strategies/mean_reversion.yaml`` on the sample market data that ``trainops data
sample`` writes, ``--epochs`` epochs, early stopping off) is started through ``POST /api/v1/training/start`` on two
real servers (``python -m trainops.cli serve``, SQLite, one torch thread for every training):

* ``local``: ``TRAINOPS_EXECUTOR=local``, the default: a worker process of the server's machine, reading the
  server's data directory and writing to its model registry.
* ``ray``: ``TRAINOPS_EXECUTOR=ray`` against a Ray head this script starts (loopback, ports and ``--temp-dir`` of
  its own, token authentication on, 2 CPUs; stopped by its own process tree at the end, even on errors). The
  job's worker shares no disk with the server: its ``TRAINOPS_HOME`` is the head's temporary folder, it
  downloads the market data from the server (its download cache is emptied before every round, so each round
  downloads) and uploads the trained model version to it.

One untimed warm-up training on each first (the local executor's worker pool, Ray's job supervisor and runtime
environment are made once per server or cluster), then ``--rounds`` rounds, the executors' order alternating.
The benchmark polls ``GET /operations/{id}`` every 100 ms, so each time is good to about 0.1 s. Figures, medians:

* from sending the request to the operation ``running``, to its first epoch stored, to ``completed``;
* the training's own duration as it recorded it (``result.duration_seconds``: data, preprocessing, fit and
  evaluation in the worker) and the fit alone (``training_time_minutes``);
* the Ray overhead: ray minus local, in seconds, for each;
* the cancel latency: a training started with thousands of epochs is cancelled (``DELETE /operations/{id}`` with
  a reason) once its first epoch is stored; the time from sending the DELETE to the operation ``cancelled``.

Run: ``.venv/bin/python bench/executors.py`` (``--quick`` for a short run). Needs the ``ray`` extra.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _ray_head import RayHead, ray_head
from _report import machine, table
from _server_process import ServerProcess

from trainops.pipeline.data_files import write_sample_data

STRATEGIES = Path(__file__).resolve().parent.parent / "strategies"
TOKEN = "bench-executors-token-0123456789abcdef"
POLL = 0.1
TIMEOUT = 300.0
"""Seconds one training gets (a Ray job's first start on a busy 2-core machine is the slow case)."""
ENDED = {"completed", "failed", "cancelled"}
EXECUTORS = ("local", "ray")


@dataclass
class Timeline:
    """One training, seconds from the moment its start request was sent."""

    executor: str
    operation_id: str
    answered: float = math.nan
    running: float = math.nan
    first_epoch: float = math.nan
    ended: float = math.nan
    status: str = "-"
    duration: float = math.nan
    """``result.duration_seconds``: the job as the worker timed it."""
    fit: float = math.nan
    """``training_metrics.training_time_minutes`` in seconds: the fit alone."""
    model_version: bool = False
    device: str | None = None
    error: str | None = None


def watch(
    api: httpx.Client, timeline: Timeline, sent: float, until: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Poll the operation, noting when it first reads running, with an epoch, and ended, until ``until``."""
    deadline = sent + TIMEOUT
    while True:
        answer = api.get(f"/operations/{timeline.operation_id}")
        now = time.monotonic() - sent
        data: dict[str, Any] = answer.json()["data"]
        if math.isnan(timeline.running) and data["status"] in {"running", *ENDED}:
            timeline.running = now
        if math.isnan(timeline.first_epoch) and data["epochs_completed"] >= 1:
            timeline.first_epoch = now
        if data["status"] in ENDED:
            timeline.ended = now
            timeline.status = data["status"]
            timeline.error = data.get("error")
        if until(data):
            return data
        if time.monotonic() > deadline:
            raise RuntimeError(f"{timeline.operation_id} ({timeline.executor}) did not get there in {TIMEOUT:.0f} s")
        time.sleep(POLL)


def start(api: httpx.Client, executor: str, config: dict[str, Any]) -> tuple[Timeline, float]:
    sent = time.monotonic()
    answer = api.post("/training/start", json={"strategy": "mean_reversion", "config": config})
    if answer.status_code != 200:
        raise RuntimeError(f"{executor}: POST /training/start answered {answer.status_code}: {answer.text}")
    timeline = Timeline(executor, answer.json()["task_id"], answered=time.monotonic() - sent)
    return timeline, sent


def train(api: httpx.Client, executor: str, epochs: int) -> Timeline:
    timeline, sent = start(api, executor, {"epochs": epochs, "early_stopping": {"patience": 100_000}})
    data = watch(api, timeline, sent, lambda now: now["status"] in ENDED)
    result = data.get("result") or {}
    timeline.duration = float(result.get("duration_seconds", math.nan))
    minutes = (result.get("training_metrics") or {}).get("training_time_minutes")
    timeline.fit = 60.0 * float(minutes) if minutes is not None else math.nan
    timeline.model_version = bool(result.get("model_version"))
    timeline.device = (data.get("metadata") or {}).get("device")
    return timeline


def cancel(api: httpx.Client, executor: str) -> tuple[Timeline, float]:
    """Start a long training, cancel it once an epoch is stored; answers it and the DELETE-to-cancelled time."""
    timeline, sent = start(api, executor, {"epochs": 5000, "early_stopping": {"patience": 100_000}})
    watch(api, timeline, sent, lambda now: now["epochs_completed"] >= 1 or now["status"] in ENDED)
    asked = time.monotonic()
    answer = api.request("DELETE", f"/operations/{timeline.operation_id}", json={"reason": "bench: cancel latency"})
    if answer.status_code != 200:
        raise RuntimeError(f"{executor}: DELETE answered {answer.status_code}: {answer.text}")
    timeline = Timeline(executor, timeline.operation_id)
    watch(api, timeline, asked, lambda now: now["status"] in ENDED)
    return timeline, timeline.ended


def clear_node_cache(head: RayHead) -> None:
    """Empty the Ray worker's download cache, so every round downloads the market data as a new node would."""
    shutil.rmtree(head.node_home / "cache" / "data", ignore_errors=True)


def servers(stack: ExitStack, scratch: Path, head: RayHead) -> dict[str, httpx.Client]:
    data = scratch / "data"
    write_sample_data(data)
    common = {
        "TRAINOPS_DATA_DIR": str(data),
        "TRAINOPS_STRATEGIES_DIR": str(STRATEGIES),
        "TRAINOPS_API_TOKEN": TOKEN,
        "OMP_NUM_THREADS": "1",
    }
    local = ServerProcess(scratch / "local", {**common, "TRAINOPS_MODELS_DIR": str(scratch / "local" / "models")})
    ray = ServerProcess(
        scratch / "ray",
        {
            **common,
            "TRAINOPS_MODELS_DIR": str(scratch / "ray" / "models"),
            "TRAINOPS_EXECUTOR": "ray",
            "TRAINOPS_RAY_ADDRESS": head.address,
            "RAY_AUTH_TOKEN": head.token,
        },
    )
    ray.env["TRAINOPS_PUBLIC_URL"] = ray.url  # where the job's worker reports
    clients = {}
    for name, server in (("local", local), ("ray", ray)):
        stack.enter_context(server)
        clients[name] = stack.enter_context(
            httpx.Client(base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        )
    return clients


def rotated(round_index: int) -> Iterator[str]:
    yield from (EXECUTORS if round_index % 2 == 0 else reversed(EXECUTORS))


def median(values: list[float]) -> float:
    finite = [value for value in values if not math.isnan(value)]
    return statistics.median(finite) if finite else math.nan


FIGURES = (
    ("to running", lambda t: t.running),
    ("to first epoch", lambda t: t.first_epoch),
    ("to completed", lambda t: t.ended),
    ("recorded duration", lambda t: t.duration),
    ("fit alone", lambda t: t.fit),
)


def training_rows(timelines: list[Timeline]) -> list[list[object]]:
    rows: list[list[object]] = []
    medians: dict[str, list[float]] = {}
    for executor in EXECUTORS:
        runs = [t for t in timelines if t.executor == executor]
        medians[executor] = [median([figure(t) for t in runs]) for _, figure in FIGURES]
        statuses = ", ".join(sorted({t.status for t in runs}))
        rows.append([executor, len(runs), *medians[executor], statuses])
    overhead = [ray - local for ray, local in zip(medians["ray"], medians["local"], strict=True)]
    rows.append(["ray - local (s)", "", *[f"{value:+.2f}" for value in overhead], ""])
    return rows


def cancel_rows(cancels: list[tuple[Timeline, float]]) -> list[list[object]]:
    rows: list[list[object]] = []
    for executor in EXECUTORS:
        runs = [(t, seconds) for t, seconds in cancels if t.executor == executor]
        latencies = [seconds for _, seconds in runs]
        statuses = ", ".join(sorted({t.status for t, _ in runs}))
        rows.append([executor, len(runs), median(latencies), min(latencies), max(latencies), statuses])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round, 1 cancel each")
    parser.add_argument("--rounds", type=int, default=None, help="timed trainings per executor (default 3)")
    parser.add_argument("--cancels", type=int, default=None, help="cancels per executor (default 2)")
    parser.add_argument("--epochs", type=int, default=50, help="epochs of each training (default 50)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    cancels_each = args.cancels or (1 if args.quick else 2)

    print(
        f"bench/executors.py: {machine()}, mean_reversion x {args.epochs} epochs, {rounds} round(s), "
        f"{cancels_each} cancel(s) per executor"
    )
    with tempfile.TemporaryDirectory(prefix="trainops-bench-") as tmp, ExitStack() as stack:
        head = stack.enter_context(ray_head(cpus=2, env={"OMP_NUM_THREADS": "1"}))
        apis = servers(stack, Path(tmp), head)
        warm_up = []
        for executor in EXECUTORS:
            clear_node_cache(head)
            warm_up.append(train(apis[executor], executor, args.epochs))
        print("  warm-up done", file=sys.stderr, flush=True)
        timelines: list[Timeline] = []
        for round_index in range(rounds):
            for executor in rotated(round_index):
                clear_node_cache(head)
                timelines.append(train(apis[executor], executor, args.epochs))
        print("  trainings done", file=sys.stderr, flush=True)
        cancels = []
        for round_index in range(cancels_each):
            for executor in rotated(round_index):
                cancels.append(cancel(apis[executor], executor))

    headers = ["executor", "runs", *[f"{name} s" for name, _ in FIGURES], "status"]
    print("\nFirst training on each (untimed warm-up, for information)")
    print(table(headers, [[t.executor, 1, *[figure(t) for _, figure in FIGURES], t.status] for t in warm_up]))
    print(f"\nTrainings of {args.epochs} epochs, seconds from the start request (medians)")
    print(table(headers, training_rows(timelines)))
    uploaded = all(t.model_version for t in warm_up + timelines)
    devices = sorted({str(t.device) for t in warm_up + timelines})
    print(f"model version registered by every training: {'yes' if uploaded else 'NO'}; devices: {', '.join(devices)}")
    print("\nCancel: from sending DELETE /operations/{id} to the operation ended (seconds)")
    print(table(["executor", "runs", "median", "min", "max", "status"], cancel_rows(cancels)))
    for t in warm_up + timelines + [t for t, _ in cancels]:
        if t.error and t.status != "cancelled":
            print(f"ERROR {t.executor} {t.operation_id}: {t.error}")


if __name__ == "__main__":
    main()
