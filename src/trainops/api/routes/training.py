"""``/training``: start a strategy training, follow it, read its performance. ``task_id`` is the operation id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from trainops.api.deps import ExecutorDep, call_blocking
from trainops.api.openapi import DATABASE_ERRORS, errors
from trainops.api.responses import flat_envelope
from trainops.api.train_deps import TrainingDep
from trainops.schemas.training import TrainingPerformance, TrainingRequest, TrainingStarted, TrainingStatus
from trainops.service.workers import this_worker

router = APIRouter(prefix="/training", tags=["training"], responses=DATABASE_ERRORS)

TaskId = Annotated[str, Path(max_length=64, description="the operation id returned by /training/start")]


@router.post(
    "/start",
    response_model=TrainingStarted,
    responses=errors(
        404,
        409,
        500,
        503,
        s404="no strategy of that name (the message lists those there are)",
        s409="an operation with the task_id asked for exists (an earlier try of this request, or another run), or "
        "the server is shutting down",
        s500="the models directory (TRAINOPS_MODELS_DIR) is a file or cannot be created; nothing was recorded",
        s503="the database is busy or unreachable (nothing was recorded: try again), or the Ray cluster did not "
        "take the training (it is recorded as failed, with the reason)",
    ),
)
async def start_training(body: TrainingRequest, training: TrainingDep, executor: ExecutorDep) -> Response:
    """Start training a strategy (by name from the server's strategies directory) on one symbol and timeframe,
    or on all the strategy names, with optional ``config`` overrides. Returns at once with ``task_id``; the
    training waits in a queue while ``TRAINOPS_MAX_CONCURRENT_JOBS`` others run (on Ray: until the cluster has
    the ``resources`` it asks for, ``{"cpus": 1, "gpus": 1}``)."""

    def start() -> TrainingStarted:
        executor.check(body.resources)  # before anything is recorded
        return training.start(
            body,
            lambda operation: executor.submit(operation.operation_id, body.resources),
            allow_paths=False,
            worker=this_worker(),
            executor=executor.name,
        )

    return flat_envelope(await call_blocking(start))


@router.get("/{task_id}", response_model=TrainingStatus)
async def get_training_status(task_id: TaskId, training: TrainingDep) -> Response:
    """Status (pending, training, completed, failed, cancelled), progress, current epoch of total, start time,
    estimated completion, the last epoch's metrics and any error."""
    return flat_envelope(await call_blocking(lambda: training.status(task_id)))


@router.get(
    "/{task_id}/performance",
    response_model=TrainingPerformance,
    responses=errors(
        409, s409="the training is still pending or running, or it ended without results (it failed before evaluating)"
    ),
)
async def get_training_performance(task_id: TaskId, training: TrainingDep) -> Response:
    """A finished training's figures: training metrics, test metrics (loss, accuracy, precision, recall, F1)
    and model info (size, parameters, architecture). 409 while it runs."""
    return flat_envelope(await call_blocking(lambda: training.performance(task_id)))
