"""``/training``: start a strategy training, follow it, read its performance. ``task_id`` is the operation id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from trainops.api.deps import ExecutorDep, ServiceDep, SettingsDep, call_blocking
from trainops.api.responses import flat_envelope
from trainops.schemas.training import TrainingPerformance, TrainingRequest, TrainingStarted, TrainingStatus
from trainops.service.training import (
    check_data,
    create_training,
    resolve_request,
    started_answer,
    strategy_of,
    training_performance,
    training_status,
)
from trainops.service.workers import this_worker

router = APIRouter(prefix="/training", tags=["training"])

TaskId = Annotated[str, Path(max_length=64, description="the operation id returned by /training/start")]


@router.post("/start", response_model=TrainingStarted)
async def start_training(
    body: TrainingRequest, service: ServiceDep, settings: SettingsDep, executor: ExecutorDep
) -> Response:
    """Start training a strategy (by name from the server's strategies directory) on one symbol and timeframe,
    or on all the strategy names, with optional ``config`` overrides. Returns at once with ``task_id``; the
    training waits in a queue while ``TRAINOPS_MAX_CONCURRENT_JOBS`` others run."""

    def start() -> TrainingStarted:
        config = resolve_request(body, settings.resolved_strategies_dir, allow_paths=False)
        check_data(config, settings.resolved_data_dir)
        operation = create_training(service, config, device=body.device, worker=this_worker(), task_id=body.task_id)
        executor.submit(operation.operation_id)
        return started_answer(operation, config, settings.resolved_data_dir)

    return flat_envelope(await call_blocking(start))


@router.get("/{task_id}", response_model=TrainingStatus)
async def get_training_status(task_id: TaskId, service: ServiceDep) -> Response:
    """Status (pending, training, completed, failed, cancelled), progress, current epoch of total, start time,
    estimated completion, the last epoch's metrics and any error."""

    def status() -> TrainingStatus:
        operation = service.get(task_id)
        strategy_of(operation)
        history = service.metrics(task_id).metrics.epochs
        return training_status(operation, history[-1] if history else None)

    return flat_envelope(await call_blocking(status))


@router.get("/{task_id}/performance", response_model=TrainingPerformance)
async def get_training_performance(task_id: TaskId, service: ServiceDep) -> Response:
    """A finished training's figures: training metrics, test metrics (loss, accuracy, precision, recall, F1)
    and model info (size, parameters, architecture). 409 while it runs."""
    return flat_envelope(await call_blocking(lambda: training_performance(service.get(task_id))))
