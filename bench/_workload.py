"""Synthetic training runs: epoch records shaped like a real run's, and the API calls that register them.

The curves matter: a flat history would make the diagnosis trivially cheap and compress unrealistically well.
Training loss falls, validation loss falls then rises (so the overfitting and trend rules have work to do), the
learning rate follows a cosine schedule, and every value carries noise so no two floats are alike.
"""

from __future__ import annotations

import math
import random
from typing import Any

import httpx

STANDARD_FIELDS: tuple[str, ...] = (
    "train_loss",
    "val_loss",
    "train_accuracy",
    "val_accuracy",
    "learning_rate",
    "duration",
)
"""The six values a training loop reports every epoch (the standard fields of ``EpochRecord``)."""


def epoch_record(epoch: int, total: int, *, seed: int = 0, custom_metrics: int = 0) -> dict[str, Any]:
    """The JSON of one epoch of a run ``total`` epochs long, deterministic for a given ``seed``.

    Args:
        epoch: 0-based epoch number.
        total: Length of the whole run (shapes the curves).
        seed: Varies the noise between runs.
        custom_metrics: How many extra metrics (``metric_0``, ...) to add beside the standard fields.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    progress = epoch / max(total - 1, 1)
    train_loss = 0.05 + 0.95 * math.exp(-4.0 * progress) + rng.gauss(0, 0.01)
    val_loss = 0.25 + 0.8 * math.exp(-5.0 * progress) + 0.3 * max(progress - 0.6, 0.0) ** 2 + rng.gauss(0, 0.015)
    record: dict[str, Any] = {
        "epoch": epoch,
        "train_loss": abs(train_loss),
        "val_loss": abs(val_loss),
        "train_accuracy": min(0.999, 0.5 + 0.45 * (1 - math.exp(-4.0 * progress)) + rng.gauss(0, 0.005)),
        "val_accuracy": min(0.999, 0.5 + 0.38 * (1 - math.exp(-5.0 * progress)) + rng.gauss(0, 0.008)),
        "learning_rate": 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * progress)),
        "duration": 1.2 + abs(rng.gauss(0, 0.05)),
    }
    for index in range(custom_metrics):
        record[f"metric_{index}"] = rng.random()
    return record


def create_operation(client: httpx.Client, total_epochs: int) -> str:
    """Register a training operation over the REST API; returns its id."""
    response = client.post("/api/v1/operations", json={"operation_type": "training", "total_epochs": total_epochs})
    response.raise_for_status()
    operation_id: str = response.json()["data"]["operation_id"]
    return operation_id


def post_epochs(client: httpx.Client, operation_id: str, records: list[dict[str, Any]], *, batch: int = 1000) -> None:
    """Store ``records`` in batches of ``batch`` (fast set-up of a history; not what is measured)."""
    for start in range(0, len(records), batch):
        response = client.post(
            f"/api/v1/operations/{operation_id}/metrics", json={"epochs": records[start : start + batch]}
        )
        response.raise_for_status()


def seeded_operation(client: httpx.Client, epochs: int, *, seed: int = 0, custom_metrics: int = 0) -> str:
    """A new operation already holding ``epochs`` epochs of a run twice that long (still running, mid-way)."""
    total = max(2 * epochs, 1)
    operation_id = create_operation(client, total)
    records = [epoch_record(e, total, seed=seed, custom_metrics=custom_metrics) for e in range(epochs)]
    post_epochs(client, operation_id, records)
    return operation_id
