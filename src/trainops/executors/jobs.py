"""The job every executor runs: train the strategy recorded in a training operation, reporting into it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trainops.client.base import TrainOps
from trainops.client.run import Run
from trainops.core.operation import Operation, OperationStatus
from trainops.errors import OperationCancelledError
from trainops.pipeline.artifacts import write_model_version
from trainops.pipeline.training import StrategyTrainingJob, TrainedStrategy
from trainops.service.training import strategy_of

REPORT_INTERVAL = 0.5
"""Seconds between background sends of epochs and progress when the transport has no interval of its own: the
training thread only queues them (measured: synchronous in-process writes cost ~9% of a small strategy's wall
time, queued ones under the noise)."""


def run_training(
    ops: TrainOps,
    operation: Operation,
    *,
    data_dir: Path,
    models_dir: Path | None = None,
    worker: str | None = None,
    on_trained: Callable[[TrainedStrategy], None] | None = None,
) -> Operation:
    """Train ``operation``'s strategy and end the operation completed, failed or cancelled.

    A stop request during training ends it ``cancelled`` with its history, best weights and test scores in the
    result; during preprocessing, ``cancelled`` without results. Any error fails the operation with its message
    and is raised again.

    Args:
        ops: Where to report (in-process or a server).
        operation: A pending (or already started) training operation.
        data_dir: The market data directory.
        models_dir: Where the trained model is written as a new version (also when cancelled during training:
            its best weights); ``None`` keeps it in memory only.
        worker: ``host:pid`` recorded as the process running it.
        on_trained: Called with the trained model and its data before the operation ends (the model registry
            saves it here).
    """
    if operation.status is OperationStatus.PENDING:
        operation = ops.start_operation(operation.operation_id, worker=worker)
    try:
        with Run(ops, operation, flush_interval=ops.default_flush_interval or REPORT_INTERVAL) as run:
            config = strategy_of(operation)
            device = operation.metadata.parameters.get("device")
            job = StrategyTrainingJob(config, data_dir=data_dir, reporter=run, device=device)
            trained = job.run()
            result = trained.result()
            run.result = result.model_dump(mode="json")  # kept if writing the model version fails
            if models_dir is not None:
                path = write_model_version(trained, models_dir, operation_id=operation.operation_id)
                result.model_version = str(path.relative_to(models_dir))
                result.model_info.model_path = str(path)
                run.result = result.model_dump(mode="json")
            if on_trained is not None:
                on_trained(trained)
    except OperationCancelledError:
        pass  # stopped before training began; the run ended the operation cancelled
    return ops.get_operation(operation.operation_id)
