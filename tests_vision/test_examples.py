"""The Ultralytics and timm examples (examples/integrations/) train for real and leave a completed run behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ultralytics.utils import USER_CONFIG_DIR

import trainops
from trainops.core.metric_definitions import TaskType
from trainops.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "integrations"


@pytest.mark.parametrize(
    ("framework", "epochs", "task", "primary"),
    [
        ("ultralytics", [1, 2], TaskType.OBJECT_DETECTION, "mAP50"),
        ("timm", [0, 1], TaskType.IMAGE_CLASSIFICATION, "top5_accuracy"),
    ],
)
def test_the_example_reports_every_epoch(
    framework: str, epochs: list[int], task: TaskType, primary: str, tmp_path: Path
) -> None:
    config = tmp_path / "ultralytics-config"  # offline: the font Ultralytics checks for is already there
    shutil.copytree(USER_CONFIG_DIR, config / USER_CONFIG_DIR.name)
    env = {**os.environ, "TRAINOPS_HOME": str(tmp_path / "home"), "YOLO_CONFIG_DIR": str(config)}
    for name in ("TRAINOPS_URL", "TRAINOPS_DATABASE_URL"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{framework}_example.py"), "--epochs", "2"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert "Downloading" not in done.stderr + done.stdout

    with trainops.connect(settings=Settings(home=tmp_path / "home")) as ops:
        (operation,) = ops.list_operations().items
        assert operation.status is trainops.OperationStatus.COMPLETED
        assert f"trainops: {operation.operation_id} ended" in done.stdout
        assert operation.metadata.task is task
        metrics = ops.get_metrics(operation.operation_id).metrics
        assert [record.epoch for record in metrics.epochs] == epochs
        assert all(primary in record.metrics for record in metrics.epochs)
        assert metrics.best_epoch is not None
