"""The job every executor runs: train the strategy recorded in a training operation, reporting into it."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from trainops.client.base import TrainOps
from trainops.client.run import Run
from trainops.core.operation import Operation, OperationStatus
from trainops.errors import OperationCancelledError, ServiceUnavailableError, TrainOpsError
from trainops.executors.placement import device_name, node_metadata
from trainops.executors.remote import send_model_version
from trainops.pipeline.artifacts import write_model_version
from trainops.pipeline.strategy import StrategyConfig
from trainops.pipeline.training import StrategyTrainingJob, TrainedStrategy
from trainops.service.training import strategy_of

REPORT_INTERVAL = 0.5
"""Seconds between background sends of epochs and progress when the transport has no interval of its own: the
training thread only queues them (measured: synchronous in-process writes cost ~9% of a small strategy's wall
time, queued ones under the noise)."""

logger = logging.getLogger("trainops.executors")

DataSource = Path | Callable[[StrategyConfig], Path]
"""The market data directory, or a function that makes one ready for the strategy (a remote worker downloads
into its cache): called once the operation has started, so a failure there fails the operation."""


def run_training(
    ops: TrainOps,
    operation: Operation,
    *,
    data_dir: DataSource,
    models_dir: Path | None = None,
    upload_model: bool = False,
    worker: str | None = None,
    on_trained: Callable[[TrainedStrategy], None] | None = None,
) -> Operation:
    """Train ``operation``'s strategy and end the operation completed, failed or cancelled.

    A stop request during training ends it ``cancelled`` with its history, best weights and test scores in the
    result; during preprocessing, ``cancelled`` without results. Any error fails the operation with its message
    and is raised again. Where it ran is recorded on the operation's metadata: ``node`` (and ``ray_node_id``
    inside Ray) and the ``device`` the trainer used (``cuda:0``, ``cpu``).

    Args:
        ops: Where to report (in-process or a server).
        operation: A pending (or already started) training operation.
        data_dir: The market data directory, or a function of the strategy that makes it ready
            (:data:`DataSource`).
        models_dir: Where the trained model is written as a new version (also when cancelled during training:
            its best weights); ``None`` keeps it in memory only.
        upload_model: Send the version written to ``models_dir`` to the registry ``ops`` talks to
            (:func:`~trainops.executors.remote.send_model_version`, through outages of a few minutes; a worker
            away from the server's disk), name the server's copy in the result and remove the local one (kept
            when it could not be sent).
        worker: ``host:pid`` recorded as the process running it.
        on_trained: Called with the trained model and its data before the operation ends (the model registry
            saves it here).
    """
    if operation.status is OperationStatus.PENDING:
        operation = ops.start_operation(operation.operation_id, worker=worker)
    operation_id = operation.operation_id
    run: Run | None = None
    try:
        with Run(ops, operation, flush_interval=ops.default_flush_interval or REPORT_INTERVAL) as run:
            config = strategy_of(operation)
            device = operation.metadata.parameters.get("device")
            data = data_dir(config) if callable(data_dir) else data_dir
            job = StrategyTrainingJob(config, data_dir=data, reporter=run, device=device)
            _record_placement(ops, operation_id, device_name(job.device))
            trained = job.run()
            result = trained.result()
            result.model_info.device = device_name(job.device)
            run.result = result.model_dump(mode="json")  # kept if writing the model version fails
            # a run stopped before its first epoch ended holds barely trained weights: no model to keep
            if models_dir is not None and result.training_metrics.epochs_completed > 0:
                path = write_model_version(trained, models_dir, operation_id=operation_id)
                if upload_model:
                    stored = send_model_version(ops, operation_id, path)  # kept here if it cannot be sent
                    shutil.rmtree(path, ignore_errors=True)
                    result.model_version, result.model_info.model_path = stored.model_version, stored.model_path
                else:
                    result.model_version = str(path.relative_to(models_dir))
                    result.model_info.model_path = str(path)
                run.result = result.model_dump(mode="json")
            if on_trained is not None:
                on_trained(trained)
    except OperationCancelledError:
        pass  # stopped before training began; the run ended the operation cancelled
    try:
        return ops.get_operation(operation_id)
    except ServiceUnavailableError:
        if run is None:
            raise
        return run.operation  # the server is away: the run's end waits in its spill file for `trainops sync`


def _record_placement(ops: TrainOps, operation_id: str, device: str) -> None:
    """Record where the training runs; a server that cannot take it now costs a warning, never the training."""
    try:
        ops.update_metadata(operation_id, {**node_metadata(), "device": device})
    except TrainOpsError as error:
        logger.warning("could not record the node and device of %s: %s", operation_id, error.message)
