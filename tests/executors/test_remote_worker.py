"""The worker in remote mode: a process with its own ``TRAINOPS_HOME``, nothing of the server's disk and only
``TRAINOPS_URL`` and the token, as a Ray job on another node runs it. It gets the strategy from the operation, the
market data from the server, trains, reports, and sends its model version to the server's registry, after which
the server saves, loads and predicts with it as with a model it trained itself.

The trainings are real: ``mean_reversion`` for 2 epochs on the sample data.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import cast

import pytest
import torch

from tests.live_server import LiveServer
from tests.remote_worker import WORKER_TIMEOUT, remote_worker
from trainops.client import HttpTrainOps, LocalTrainOps, TrainOps
from trainops.core import OperationStatus
from trainops.core.operation import Operation
from trainops.errors import NotFoundError, ServiceUnavailableError
from trainops.executors import worker
from trainops.executors.jobs import run_training
from trainops.executors.placement import device_name, node_metadata
from trainops.executors.remote import (
    data_cache_dir,
    market_data_dir,
    patiently,
    send_model_version,
    worker_entrypoint,
)
from trainops.pipeline.strategy import StrategyConfig, load_strategy
from trainops.schemas.models import PredictionAnswer, PredictRequest, SaveModelRequest
from trainops.service.bootstrap import open_service
from trainops.service.operations import OperationsService
from trainops.service.training import apply_overrides, create_training
from trainops.service.workers import this_worker
from trainops.settings import Settings, get_settings

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
TOKEN = "remote-worker-test-token-0123456789"
EXPECTED_DEVICE = "cuda:0" if torch.cuda.is_available() else "cpu"


@pytest.fixture
def settings(training_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The server's settings: the sample data, a models directory of its own, and a token it requires."""
    monkeypatch.setenv("TRAINOPS_API_TOKEN", TOKEN)
    get_settings.cache_clear()
    return get_settings()


def mean_reversion(**overrides: object) -> StrategyConfig:
    return apply_overrides(load_strategy(STRATEGIES / "mean_reversion.yaml"), epochs=2, **overrides)  # type: ignore[arg-type]


def test_a_worker_without_the_servers_disk_trains_and_returns_its_model(
    settings: Settings, service: OperationsService, market_data: Path, tmp_path: Path
) -> None:
    # pending, recorded by this process until the worker takes it over: the server's executor never sees it
    operation = create_training(service, mean_reversion(), worker=this_worker())
    node = tmp_path / "node"
    with LiveServer(settings) as server:
        with remote_worker(operation.operation_id, url=server.url, token=TOKEN, home=node) as worker:
            code = worker.wait(WORKER_TIMEOUT)
            pid = worker.pid
        log = (node / "worker.log").read_text()
        assert code == 0, log
        assert f"reports to {server.url}" in log

        with HttpTrainOps(server.url, token=TOKEN) as ops:
            ended = ops.get_operation(operation.operation_id)
            assert ended.status is OperationStatus.COMPLETED, ended.error
            assert ended.metadata.worker == f"{socket.gethostname()}:{pid}"
            extra = ended.metadata.model_extra or {}
            assert extra["node"] == socket.gethostname()
            assert ended.metadata.device == EXPECTED_DEVICE

            metrics = ops.get_metrics(operation.operation_id).metrics
            assert [record.epoch for record in metrics.epochs] == [0, 1]
            assert metrics.total_epochs_completed == 2
            assert metrics.best_epoch is not None and metrics.recommendation.action

            result = ended.result or {}
            assert result["model_info"]["device"] == EXPECTED_DEVICE
            version = result["model_version"]
            assert version.startswith("mean_reversion/EURUSD_1h_v")
            assert result["model_info"]["model_path"] == str(settings.resolved_models_dir / version)
            assert (settings.resolved_models_dir / version / "model.safetensors").is_file()

            # the server uses the version exactly as one it trained itself
            saved = ops.save_model(SaveModelRequest(task_id=operation.operation_id, model_name="remote-mr"))
            assert saved.model_path == str(settings.resolved_models_dir / version)
            assert [model.model_name for model in ops.list_models()] == ["remote-mr"]
            assert ops.load_model("remote-mr").model_info.source_operation == operation.operation_id
            answer = ops.predict(
                PredictRequest(model_name="remote-mr", symbol="EURUSD", timeframe="1h", test_date="2018-01-15")  # type: ignore[arg-type]
            )
            assert isinstance(answer, PredictionAnswer)
            assert answer.prediction.signal in ("buy", "hold", "sell")

    # the worker trained on its own copy of the server's file, kept no model, and never opened a database
    cached = node / "cache" / "data" / "EURUSD_1h.csv"
    assert cached.read_bytes() == (market_data / "EURUSD_1h.csv").read_bytes()
    assert not list((node / "cache" / "models").rglob("*.safetensors"))
    assert not (node / "trainops.db").exists()


def test_a_worker_whose_data_the_server_lacks_fails_the_operation_with_the_servers_message(
    settings: Settings, service: OperationsService, tmp_path: Path
) -> None:
    operation = create_training(service, mean_reversion(), worker=this_worker())
    (settings.resolved_data_dir / "EURUSD_1h.csv").rename(tmp_path / "moved.csv")  # gone after the start check
    try:
        with LiveServer(settings) as server:
            with remote_worker(operation.operation_id, url=server.url, token=TOKEN, home=tmp_path / "node") as worker:
                assert worker.wait(WORKER_TIMEOUT) == 1
            ended = service.get(operation.operation_id)
    finally:
        (tmp_path / "moved.csv").rename(settings.resolved_data_dir / "EURUSD_1h.csv")
    assert ended.status is OperationStatus.FAILED
    assert ended.error and "no market data for EURUSD 1h" in ended.error


def test_a_worker_with_a_wrong_token_does_not_start(
    settings: Settings, service: OperationsService, tmp_path: Path
) -> None:
    operation = create_training(service, mean_reversion(), worker=this_worker())
    with LiveServer(settings) as server:
        node = tmp_path / "node"
        with remote_worker(operation.operation_id, url=server.url, token="x" * 32, home=node) as worker:
            assert worker.wait(WORKER_TIMEOUT) == 1
    assert "did not complete" in (node / "worker.log").read_text()
    assert service.get(operation.operation_id).status is OperationStatus.PENDING


def test_a_local_worker_records_its_node_and_device(settings: Settings) -> None:
    with LocalTrainOps(open_service(settings), settings=settings) as ops:
        operation = create_training(ops.service, mean_reversion())
        ended = run_training(
            ops, operation, data_dir=settings.resolved_data_dir, models_dir=settings.resolved_models_dir
        )
    assert ended.status is OperationStatus.COMPLETED, ended.error
    assert (ended.metadata.model_extra or {})["node"] == socket.gethostname()
    assert ended.metadata.device == EXPECTED_DEVICE


class FakeServer:
    """Stands for the facade of a server holding only ``has`` (symbol, timeframe) pairs; records what is asked."""

    def __init__(self, has: set[tuple[str, str]]) -> None:
        self.has = has
        self.asked: list[tuple[str, str]] = []

    def download_data(self, symbol: str, timeframe: str, destination: Path) -> Path:
        self.asked.append((symbol, timeframe))
        if (symbol, timeframe) not in self.has:
            raise NotFoundError(f"no market data for {symbol} {timeframe}")
        target = Path(destination) / f"{symbol}_{timeframe}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("downloaded")
        return target


def test_a_shared_data_dir_holding_the_files_skips_the_download(settings: Settings, market_data: Path) -> None:
    remote = settings.model_copy(update={"data_dir": market_data, "home": settings.home / "node"})
    server = FakeServer({("EURUSD", "1h")})
    assert market_data_dir(cast(TrainOps, server), mean_reversion(), remote) == market_data
    assert server.asked == []


def test_without_the_files_a_worker_downloads_into_its_cache(settings: Settings, tmp_path: Path) -> None:
    """A higher timeframe the server has no file for is resampled from the base bars, as on the server: a stale
    cached copy of it is removed rather than trained on."""
    multi = apply_overrides(load_strategy(STRATEGIES / "multi_timeframe.yaml"), epochs=2)
    remote = settings.model_copy(update={"data_dir": tmp_path / "empty", "home": tmp_path / "node"})
    cache = data_cache_dir(remote)
    cache.mkdir(parents=True)
    stale = cache / "EURUSD_1d.csv"
    stale.write_text("timestamp,open,high,low,close,volume\n")
    server = FakeServer({("EURUSD", "1h"), ("EURUSD", "4h")})

    assert market_data_dir(cast(TrainOps, server), multi, remote) == cache
    assert server.asked == [("EURUSD", "1h"), ("EURUSD", "4h"), ("EURUSD", "1d")]
    assert sorted(path.name for path in cache.iterdir()) == ["EURUSD_1h.csv", "EURUSD_4h.csv"]


def test_a_symbol_the_server_has_no_base_data_for_is_an_error(settings: Settings, tmp_path: Path) -> None:
    remote = settings.model_copy(update={"data_dir": None, "home": tmp_path / "node"})
    with pytest.raises(NotFoundError, match="no market data for EURUSD 1h"):
        market_data_dir(cast(TrainOps, FakeServer(set())), mean_reversion(), remote)


class Clock:
    """A clock that only sleeping moves: ``sleep`` records every wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def outage(failures: int) -> Callable[[], str]:
    """A call that finds the server down ``failures`` times, then answers."""
    left = [failures]

    def call() -> str:
        if left[0] > 0:
            left[0] -= 1
            raise ServiceUnavailableError("cannot reach the trainops server")
        return "answered"

    return call


def test_a_server_outage_is_waited_out_within_the_patience() -> None:
    clock = Clock()
    assert patiently(outage(3), "upload", 60, sleep=clock.sleep, clock=clock) == "answered"
    assert clock.slept == [1.0, 2.0, 4.0]

    clock = Clock()
    with pytest.raises(ServiceUnavailableError):
        patiently(outage(100), "upload", 20, sleep=clock.sleep, clock=clock)
    assert clock.slept == [1.0, 2.0, 4.0, 8.0]  # a 16 s wait would pass the 20 s: given up at 15 s

    clock = Clock()
    server = FakeServer(set())
    with pytest.raises(NotFoundError):  # a refusal is no outage: raised at once
        patiently(partial(server.download_data, "EURUSD", "1h", Path()), "x", 60, sleep=clock.sleep, clock=clock)
    assert clock.slept == [] and server.asked == [("EURUSD", "1h")]


def test_a_worker_started_while_the_api_restarts_waits_for_it(settings: Settings) -> None:
    """A job the cluster started during an API restart had failed at its first request, losing the training."""
    asked: list[str] = []

    class Restarting(HttpTrainOps):
        def get_operation(self, operation_id: str) -> Operation:
            asked.append(operation_id)
            if len(asked) < 3:
                raise ServiceUnavailableError("cannot reach the trainops server")
            raise NotFoundError("no operation")  # where the test stops: after the outage was waited out

    remote = settings.model_copy(update={"url": "http://127.0.0.1:9"})
    with pytest.raises(NotFoundError), Restarting("http://127.0.0.1:9") as ops:
        worker._train(ops, "op_training_20261207_013000_0123abcd", remote)
    assert asked == ["op_training_20261207_013000_0123abcd"] * 3


def test_a_version_that_cannot_be_sent_is_kept_and_its_place_named(tmp_path: Path) -> None:
    class DownServer:
        def upload_model_version(self, task_id: str, version_dir: Path) -> None:
            raise ServiceUnavailableError("cannot reach the trainops server at http://gone:8000")

    version = tmp_path / "mean_reversion" / "EURUSD_1h_v1"
    with pytest.raises(ServiceUnavailableError, match="the trained model version is kept at") as refused:
        send_model_version(cast(TrainOps, DownServer()), "op_training_20250610_123456_ab12cd34", version, patience=0)
    assert str(version) in refused.value.message
    assert refused.value.details["version_dir"] == str(version)


class FakeRay:
    """What the placement reads of a connected Ray: ``is_initialized`` and the runtime context's node id."""

    def __init__(self, initialized: bool) -> None:
        self.initialized = initialized

    def is_initialized(self) -> bool:
        return self.initialized

    def get_runtime_context(self) -> FakeRay:
        return self

    def get_node_id(self) -> str:
        return "a" * 56


def test_the_ray_node_is_recorded_only_where_ray_is_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    assert node_metadata() == {"node": socket.gethostname()}  # never imported just to ask
    assert "ray" not in sys.modules
    monkeypatch.setitem(sys.modules, "ray", FakeRay(initialized=False))
    assert node_metadata() == {"node": socket.gethostname()}
    monkeypatch.setitem(sys.modules, "ray", FakeRay(initialized=True))
    assert node_metadata() == {"node": socket.gethostname(), "ray_node_id": "a" * 56}


def test_a_device_is_named_with_its_index() -> None:
    assert device_name(torch.device("cpu")) == "cpu"
    assert device_name(torch.device("cuda", 1)) == "cuda:1"


def test_the_entrypoint_names_the_operation_and_nothing_secret() -> None:
    command = worker_entrypoint("op_training_20250610_123456_ab12cd34")
    assert command == "python -m trainops.executors.worker op_training_20250610_123456_ab12cd34"
