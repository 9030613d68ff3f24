"""TrainingService: one way to start, read and validate strategy trainings, whoever asks."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from trainops.core.operation import Operation, OperationStatus
from trainops.errors import DataError, NotFoundError, ServiceUnavailableError
from trainops.schemas.training import ConfigOverrides, TrainingRequest
from trainops.service.bootstrap import open_training
from trainops.service.operations import OperationsService
from trainops.service.training import TrainingService, list_strategies
from trainops.settings import Settings

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"


@pytest.fixture
def settings(training_settings: Settings) -> Settings:
    return training_settings


@pytest.fixture
def training(settings: Settings, service: OperationsService) -> TrainingService:
    return open_training(settings, service)


def test_start_records_a_pending_training_and_hands_it_to_launch(training: TrainingService) -> None:
    launched: list[Operation] = []
    request = TrainingRequest(
        strategy="mean_reversion", config=ConfigOverrides(epochs=3), task_id="op_training_20261204_120000_ab12cd34"
    )

    started = training.start(request, launched.append, allow_paths=False, worker="host:1")

    assert (
        [operation.operation_id for operation in launched]
        == ["op_training_20261204_120000_ab12cd34"]
        == [started.task_id]
    )
    operation = training.operations.get(started.task_id)
    assert operation.status is OperationStatus.PENDING
    assert operation.total_epochs == 3
    assert training.strategy(operation).model.training.epochs == 3
    assert training.status(started.task_id).status == "pending"
    assert "trainops ops watch op_training_20261204_120000_ab12cd34" in started.message


def test_a_launch_that_fails_fails_the_operation_with_its_message(training: TrainingService) -> None:
    def broken(operation: Operation) -> None:
        raise ServiceUnavailableError("the worker process exited with code 3; its log is /tmp/x.log")

    with pytest.raises(ServiceUnavailableError):
        training.start(TrainingRequest(strategy="mean_reversion"), broken, allow_paths=False)

    (operation,) = training.operations.list_operations().items
    assert operation.status is OperationStatus.FAILED
    assert operation.error == "the worker process exited with code 3; its log is /tmp/x.log"


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        (TrainingRequest(strategy="no_such_strategy"), NotFoundError, "available: .*mean_reversion"),
        (TrainingRequest(strategy="mean_reversion", symbol="NOPE"), DataError, "no market data for NOPE_1h"),
        (
            TrainingRequest(strategy="mean_reversion", start_date=date(2030, 1, 1)),
            DataError,
            r"EURUSD_1h has bars from 2017-\d\d-\d\d to 2018-\d\d-\d\d; the training asks for 2030-01-01 to its end",
        ),
        (
            TrainingRequest(strategy="mean_reversion", end_date=date(1, 1, 2)),
            DataError,
            "asks for its start to 0001-01-02",
        ),
    ],
)
def test_a_request_that_cannot_train_records_nothing(
    training: TrainingService, request_: TrainingRequest, error: type[Exception], message: str
) -> None:
    launched: list[Operation] = []
    with pytest.raises(error, match=message):
        training.start(request_, launched.append, allow_paths=False)
    assert launched == []
    assert training.operations.list_operations().total == 0


@pytest.fixture
def own_data(settings: Settings, service: OperationsService, tmp_path: Path) -> tuple[TrainingService, Path]:
    """A training service on a data folder of its own: a copy of the sample's EURUSD 1h, to damage at will."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(settings.resolved_data_dir / "EURUSD_1h.csv", data_dir)
    return open_training(settings.model_copy(update={"data_dir": data_dir}), service), data_dir


def test_a_damaged_file_of_another_symbol_holds_no_training_back(own_data: tuple[TrainingService, Path]) -> None:
    """One unreadable data file had failed every training, whatever its symbol, and the listing with them."""
    training, data_dir = own_data
    damaged = data_dir / "XAUUSD_1h.csv"
    damaged.write_bytes(b"\xbf\x00 not a csv \xff")
    launched: list[Operation] = []

    training.start(TrainingRequest(strategy="mean_reversion"), launched.append, allow_paths=False)

    listed = {item.name: item for item in training.data()}
    assert len(launched) == 1 and listed["EURUSD_1h"].problem is None
    assert listed["XAUUSD_1h"].bars == 0 and f"cannot read {damaged}" in str(listed["XAUUSD_1h"].problem)
    with pytest.raises(DataError, match=f"cannot read {damaged}"):
        training.start(TrainingRequest(strategy="mean_reversion", symbol="XAUUSD"), launched.append, allow_paths=False)


def test_two_files_of_one_symbol_are_refused_whatever_the_dates(own_data: tuple[TrainingService, Path]) -> None:
    """With a CSV and a parquet file for one symbol, a date outside one of them had been blamed on that file."""
    training, data_dir = own_data
    (data_dir / "EURUSD_1h.parquet").write_bytes(b"PAR1")
    request = TrainingRequest(strategy="mean_reversion", start_date=date(2030, 1, 1))

    with pytest.raises(DataError, match=r"both EURUSD_1h\.csv and EURUSD_1h\.parquet exist .* keep one"):
        training.start(request, [].append, allow_paths=False)


def test_strategies_validation_and_data(training: TrainingService) -> None:
    names = {summary.name: summary for summary in training.strategies()}
    assert names["mean_reversion"].valid
    assert training.validate_named("mean_reversion", allow_paths=False).valid
    invalid = training.validate({"name": "x"})
    assert not invalid.valid and invalid.problems
    assert {(item.symbol, item.timeframe) for item in training.data()} >= {("EURUSD", "1h"), ("GOOG", "1d")}


def test_a_strategy_file_with_a_value_yaml_cannot_read_is_listed_as_invalid(tmp_path: Path) -> None:
    (tmp_path / "fine.yaml").write_text((STRATEGIES / "mean_reversion.yaml").read_text())
    (tmp_path / "bad_date.yaml").write_text("name: bad_date\ntraining_data:\n  start_date: 2001-13-45\n")
    (tmp_path / "folder.yaml").mkdir()  # a folder named like a strategy file is no strategy

    listed = {summary.name: summary for summary in list_strategies(tmp_path)}

    assert sorted(listed) == ["bad_date", "mean_reversion"]
    assert listed["mean_reversion"].valid and listed["mean_reversion"].error is None
    assert not listed["bad_date"].valid
    assert listed["bad_date"].error is not None
    assert "is not valid YAML at line 3, column 15: '2001-13-45' is not a valid timestamp" in listed["bad_date"].error
