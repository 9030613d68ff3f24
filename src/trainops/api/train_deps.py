"""Dependencies of the routes that need the ``train`` extra: the strategy training service and the model registry.

Apart from :mod:`trainops.api.deps` so that a server installed without the extra imports none of the pipeline.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from trainops.service.registry import ModelRegistry
from trainops.service.training import TrainingService


async def get_training(request: Request) -> TrainingService:
    training: TrainingService = request.app.state.training
    return training


TrainingDep = Annotated[TrainingService, Depends(get_training)]


async def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
