"""Real trainings the model tests start from: the strategy pipeline's mean reversion on the sample data, two
epochs (a few seconds), run in the test's own process."""

from __future__ import annotations

from pathlib import Path

from trainops.client.local import LocalTrainOps
from trainops.core.operation import Operation, OperationStatus
from trainops.executors.jobs import run_training
from trainops.pipeline.strategy import StrategyConfig, load_strategy
from trainops.service.training import apply_overrides, create_training
from trainops.settings import Settings

STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"


def mean_reversion() -> StrategyConfig:
    """``strategies/mean_reversion.yaml`` (EURUSD 1h) cut to two epochs."""
    return apply_overrides(load_strategy(STRATEGIES / "mean_reversion.yaml"), epochs=2)


def finished_training(
    local: LocalTrainOps,
    settings: Settings,
    config: StrategyConfig | None = None,
    *,
    models_dir: Path | None = None,
    device: str | None = "cpu",
    worker: str | None = None,
) -> Operation:
    """A completed training of ``config`` (:func:`mean_reversion` by default), its model version written to
    ``models_dir`` (the settings' models directory by default)."""
    operation = create_training(local.service, config or mean_reversion(), device=device, worker=worker)
    ended = run_training(
        local, operation, data_dir=settings.resolved_data_dir, models_dir=models_dir or settings.resolved_models_dir
    )
    assert ended.status is OperationStatus.COMPLETED, ended.error
    return ended
