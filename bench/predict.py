"""Model predictions: what one signal costs with the model loaded, in this process and over HTTP, and a range.

The model is real: ``strategies/mean_reversion.yaml`` (EURUSD 1h) trained for 3 epochs on the sample data that
``trainops data sample`` writes, saved under a name in a fresh SQLite database, all in a temporary directory.
Three figures:

* One bar, in process: ``ModelRegistry.predict`` with ``test_date`` set to a random bar (uniform over the bars
  with complete features, a fixed seed), the model loaded and the data files cached (a few warm-up calls first).
  Each call computes the features from the bars up to the one asked about (so later bars cost a little more),
  runs one forward pass and builds the answer. Latency percentiles.
* One bar, over HTTP: the same requests as ``POST /api/v1/models/predict`` against a real server (uvicorn, one
  process, as ``trainops serve`` runs it; see ``_server.py``) on the same database and files, after
  ``POST /models/{name}/load``; one httpx client, one request at a time, timed by the client (so the figure
  includes loopback, JSON in both directions and the client's own time).
* A range of 1,000 bars: ``start_date``/``end_date`` over the last 1,000 bars of the data (the most recent ones,
  and the dearest: features are computed over every bar up to the end), in process and over HTTP; the median of
  several runs, with the check that exactly 1,000 predictions came back.

There is no goal to meet yet: the figures are for information. The machine line says how many cores were shared
by the server and the client.

Run: ``.venv/bin/python bench/predict.py`` (about 15 s), ``--quick`` (fewer predictions and rounds, about 10 s).
It touches nothing of yours: the data, the database and the model live in a temporary directory.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import torch
from _report import LatencySummary, machine, table
from _server import trainops_server

from trainops.client.local import LocalTrainOps
from trainops.core.operation import OperationStatus
from trainops.executors.jobs import run_training
from trainops.pipeline.artifacts import read_model_version
from trainops.pipeline.data_files import write_sample_data
from trainops.pipeline.prediction import first_usable_bar
from trainops.pipeline.strategy import load_strategy
from trainops.pipeline.symbol_frames import load_frames
from trainops.schemas.models import PredictRequest, RangePredictionAnswer, SaveModelRequest
from trainops.service.bootstrap import open_registry, open_service
from trainops.service.registry import ModelRegistry
from trainops.service.training import apply_overrides, create_training
from trainops.settings import Settings

STRATEGIES = Path(__file__).resolve().parent.parent / "strategies"
MODEL = "bench-mean-reversion"
SYMBOL, TIMEFRAME = "EURUSD", "1h"
RANGE_BARS = 1_000
WARM_UP = 5
EPOCHS = 3


def train_and_save(settings: Settings) -> ModelRegistry:
    """Train the strategy into ``settings``' models directory and save it as ``MODEL``; the registry on it."""
    service = open_service(settings)
    ops = LocalTrainOps(service, settings=settings)
    config = apply_overrides(load_strategy(STRATEGIES / "mean_reversion.yaml"), epochs=EPOCHS)
    operation = run_training(
        ops,
        create_training(service, config, device="cpu"),
        data_dir=settings.resolved_data_dir,
        models_dir=settings.resolved_models_dir,
    )
    if operation.status is not OperationStatus.COMPLETED:
        raise RuntimeError(f"the training ended {operation.status.value}: {operation.error}")
    registry = open_registry(settings, service)
    registry.save(SaveModelRequest(task_id=operation.operation_id, model_name=MODEL))
    return registry


def usable_bars(registry: ModelRegistry) -> pd.DatetimeIndex:
    """The base bars a prediction can be asked about: from the first with complete features to the last."""
    version = read_model_version(Path(registry.get(MODEL).model_path))
    frames = load_frames(version.config, registry.data_dir, SYMBOL)
    bars = pd.DatetimeIndex(frames[TIMEFRAME].index)
    return bars[bars >= first_usable_bar(version, frames)]


def single(moment: datetime) -> dict[str, Any]:
    return {"model_name": MODEL, "symbol": SYMBOL, "timeframe": TIMEFRAME, "test_date": moment.isoformat()}


def timed(call: Callable[[], object], count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def latency_row(label: str, seconds: list[float]) -> list[object]:
    summary = LatencySummary.of(seconds)
    return [label, summary.count, summary.p50, summary.p90, summary.p99, summary.max]


def single_in_process(registry: ModelRegistry, moments: list[datetime]) -> list[float]:
    registry.load(MODEL)
    requests = [PredictRequest.model_validate(single(moment)) for moment in moments]
    for request in requests[:WARM_UP]:
        registry.predict(request)
    queue = iter(requests)
    return timed(lambda: registry.predict(next(queue)), len(requests))


def single_over_http(client: httpx.Client, moments: list[datetime]) -> list[float]:
    client.post(f"/models/{MODEL}/load").raise_for_status()
    for moment in moments[:WARM_UP]:
        client.post("/models/predict", json=single(moment)).raise_for_status()
    queue = iter(moments)
    return timed(lambda: client.post("/models/predict", json=single(next(queue))).raise_for_status(), len(moments))


def range_body(bars: pd.DatetimeIndex) -> dict[str, Any]:
    last = bars[-RANGE_BARS:]
    return {
        "model_name": MODEL,
        "symbol": SYMBOL,
        "timeframe": TIMEFRAME,
        "start_date": last[0].isoformat(),
        "end_date": last[-1].isoformat(),
    }


def range_in_process(registry: ModelRegistry, bars: pd.DatetimeIndex, rounds: int) -> list[float]:
    request = PredictRequest.model_validate(range_body(bars))

    def call() -> None:
        answer = registry.predict(request)
        assert isinstance(answer, RangePredictionAnswer) and answer.count == RANGE_BARS, answer

    call()  # warm-up
    return timed(call, rounds)


def range_over_http(client: httpx.Client, bars: pd.DatetimeIndex, rounds: int) -> list[float]:
    body = range_body(bars)

    def call() -> None:
        response = client.post("/models/predict", json=body)
        response.raise_for_status()
        assert response.json()["count"] == RANGE_BARS, response.text[:500]

    call()  # warm-up
    return timed(call, rounds)


def median_row(label: str, seconds: list[float]) -> list[object]:
    return [label, len(seconds), statistics.median(seconds) * 1000.0, min(seconds) * 1000.0, max(seconds) * 1000.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer predictions and rounds")
    parser.add_argument("--predictions", type=int, default=None, help="single-bar predictions per variant (200)")
    parser.add_argument("--rounds", type=int, default=None, help="1,000-bar range predictions per variant (7)")
    args = parser.parse_args()
    count = args.predictions or (50 if args.quick else 200)
    rounds = args.rounds or (3 if args.quick else 7)

    print(f"bench/predict.py: {machine()}, torch {torch.__version__}, {count} predictions, {rounds} range rounds")
    with tempfile.TemporaryDirectory(prefix="trainops-bench-") as scratch:
        home = Path(scratch)
        settings = Settings(home=home)  # data, models and SQLite under home: where the server looks too
        write_sample_data(settings.resolved_data_dir)
        started = time.perf_counter()
        registry = train_and_save(settings)
        print(f"trained and saved {MODEL} ({EPOCHS} epochs) in {time.perf_counter() - started:.1f} s")
        bars = usable_bars(registry)
        picker = random.Random(0)
        moments = [bars[picker.randrange(len(bars))].to_pydatetime() for _ in range(count)]

        in_process = single_in_process(registry, moments)
        range_local = range_in_process(registry, bars, rounds)
        with trainops_server(home) as server, httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as client:
            over_http = single_over_http(client, moments)
            range_http = range_over_http(client, bars, rounds)

    print(f"\nOne bar ({SYMBOL} {TIMEFRAME}, random bars of {len(bars):,}), model loaded: latency in ms")
    print(
        table(
            ["variant", "count", "p50", "p90", "p99", "max"],
            [
                latency_row("ModelRegistry.predict (in process)", in_process),
                latency_row("POST /models/predict (HTTP)", over_http),
            ],
        )
    )
    print(f"\nA range of the last {RANGE_BARS:,} bars: ms per request")
    print(
        table(
            ["variant", "runs", "median", "min", "max"],
            [
                median_row("ModelRegistry.predict (in process)", range_local),
                median_row("POST /models/predict (HTTP)", range_http),
            ],
        )
    )


if __name__ == "__main__":
    main()
