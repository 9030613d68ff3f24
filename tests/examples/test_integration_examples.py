"""The framework examples (examples/integrations/) train for real and leave a completed, diagnosed run behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import trainops
from trainops.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "integrations"


@pytest.mark.parametrize(
    ("framework", "task"),
    [
        ("lightning", "tabular_classification"),
        ("transformers", "text_classification"),
        ("keras", "tabular_classification"),
    ],
)
def test_the_example_reports_every_epoch(framework: str, task: str, tmp_path: Path) -> None:
    env = {**os.environ, "TRAINOPS_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for name in ("TRAINOPS_URL", "TRAINOPS_DATABASE_URL", "KERAS_BACKEND"):
        env.pop(name, None)  # the example chooses Keras' backend itself
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{framework}_example.py"), "--epochs", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-5000:]

    with trainops.connect(settings=Settings(home=tmp_path)) as ops:
        (operation,) = ops.list_operations().items
        assert operation.status is trainops.OperationStatus.COMPLETED
        assert f"trainops: {operation.operation_id} ended" in done.stdout
        metrics = ops.get_metrics(operation.operation_id).metrics
        assert [record.epoch for record in metrics.epochs] == [0, 1]
        assert all(record.train_loss is not None and record.val_loss is not None for record in metrics.epochs)
        assert all(record.val_accuracy is not None for record in metrics.epochs)
        assert metrics.best_epoch is not None
        assert operation.metadata.task == task
