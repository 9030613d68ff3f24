"""The quickstart (the demo's main job) trains for real and leaves a diagnosed run behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import trainops
from trainops.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_trains_reports_and_diagnoses(tmp_path: Path) -> None:
    env = {**os.environ, "TRAINOPS_HOME": str(tmp_path), "COLUMNS": "120"}
    env.pop("TRAINOPS_URL", None)
    env.pop("TRAINOPS_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--epochs", "4", "--train-size", "150"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "diagnosis" in done.stdout
    assert "recommendation" in done.stdout

    ops = trainops.connect(settings=Settings(home=tmp_path))
    (operation,) = ops.list_operations().items
    assert operation.status is trainops.OperationStatus.COMPLETED
    assert operation.operation_id in done.stdout
    metrics = ops.get_metrics(operation.operation_id).metrics
    assert [record.epoch for record in metrics.epochs] == [0, 1, 2, 3]
    first = metrics.epochs[0]
    assert first.train_loss is not None and first.val_accuracy is not None and first.duration is not None
    assert operation.result is not None and operation.result["restored_best"] is True
    ops.close()
