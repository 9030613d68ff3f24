"""get_training_metrics carries a run's metric definitions and follows its task, as the facade does (in-process:
the MCP wire itself is tested in test_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trainops.client import LocalTrainOps, TrainOps
from trainops.core.epoch import EpochRecord
from trainops.mcp.server import TrainOpsTools, _Facade
from trainops.service.bootstrap import open_service
from trainops.settings import Settings


@pytest.fixture
def ops(settings: Settings) -> Iterator[TrainOps]:
    with LocalTrainOps(open_service(settings)) as local:
        yield local


@pytest.fixture
def tools(ops: TrainOps) -> TrainOpsTools:
    return TrainOpsTools(_Facade(lambda: ops), read_only=True)


def test_get_training_metrics_defines_each_metric_and_judges_a_detection_run_on_map50(
    ops: TrainOps, tools: TrainOpsTools
) -> None:
    operation = ops.create_operation(metadata={"task": "object_detection"}, total_epochs=30)
    m_aps = [0.2, 0.4, 0.6, 0.5, 0.45, 0.4]
    ops.add_epochs(
        operation.operation_id,
        [EpochRecord(epoch=e, val_loss=1 - 0.08 * e, metrics={"mAP50": m, "lr0": 0.01}) for e, m in enumerate(m_aps)],
    )

    metrics = tools.get_training_metrics(operation.operation_id)["metrics"]
    chosen = tools.get_training_metrics(operation.operation_id, monitor="val_loss")["metrics"]

    assert (metrics["monitor"], metrics["mode"], metrics["best_epoch"]) == ("mAP50", "max", 2)
    assert list(metrics["definitions"]) == ["mAP50", "val_loss", "lr0"]
    assert metrics["definitions"]["mAP50"]["tier"] == "primary"
    assert metrics["definitions"]["mAP50"]["format"] == "percent"
    assert metrics["definitions"]["lr0"]["tier"] == "custom"
    assert (chosen["monitor"], chosen["best_epoch"]) == ("val_loss", 5)
