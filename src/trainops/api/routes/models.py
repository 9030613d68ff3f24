"""``/models``: save a finished training's model under a name, list, load, predict with and delete models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from trainops.api.deps import call_blocking
from trainops.api.responses import flat_envelope
from trainops.api.train_deps import RegistryDep
from trainops.schemas.models import (
    LoadedModel,
    ModelList,
    ModelSummary,
    PredictionAnswer,
    PredictRequest,
    RangePredictionAnswer,
    SavedModel,
    SaveModelRequest,
)

router = APIRouter(prefix="/models", tags=["models"])

# ``:path`` so that a name holding an encoded slash (``..%2F..%2Fetc``) still reaches the route and is refused
# with the naming rule, instead of matching no route at all.
ModelName = Annotated[str, Path(max_length=256, description="the model's name")]


@router.post("/save", response_model=SavedModel)
async def save_model(body: SaveModelRequest, registry: RegistryDep) -> Response:
    """Name the model a finished training wrote. Names match ``^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$``; a taken name
    is a 409 unless ``"overwrite": true``; an unfinished or failed task is a 409 that says why."""
    return flat_envelope(await call_blocking(lambda: registry.save(body)))


@router.get("", response_model=ModelList)
async def list_models(
    registry: RegistryDep,
    symbol: Annotated[str | None, Query(max_length=256)] = None,
    timeframe: Annotated[str | None, Query(max_length=64)] = None,
    strategy: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Named models, newest first: id, name, strategy, symbol, timeframe, created_at, training and test accuracy,
    description."""
    models = await call_blocking(lambda: registry.list_models(symbol=symbol, timeframe=timeframe, strategy=strategy))
    return flat_envelope(ModelList(models=models, count=len(models)))


@router.post("/predict", response_model=PredictionAnswer | RangePredictionAnswer)
async def predict(body: PredictRequest, registry: RegistryDep) -> Response:
    """A signal (buy, hold, sell) with its confidence, probabilities, fuzzy memberships and the indicator values
    behind it, for the last bar at or before ``test_date``, computed from bars up to it only; or, with
    ``start_date`` and ``end_date``, the signal series of the range. A date before the indicators' warm-up or
    outside the data is a 422 naming the valid range."""
    return flat_envelope(await call_blocking(lambda: registry.predict(body)))


@router.get("/{model_name:path}", response_model=ModelSummary)
async def get_model(model_name: ModelName, registry: RegistryDep) -> Response:
    """One named model."""
    return flat_envelope(await call_blocking(lambda: registry.get(model_name)))


@router.post("/{model_name:path}/load", response_model=LoadedModel)
async def load_model(model_name: ModelName, registry: RegistryDep) -> Response:
    """Load the model into memory (every file checked; a damaged one is a 409 naming it) and describe it."""
    return flat_envelope(await call_blocking(lambda: registry.load(model_name)))


@router.delete("/{model_name:path}", response_model=ModelSummary)
async def delete_model(model_name: ModelName, registry: RegistryDep) -> Response:
    """Forget the model; its files are removed unless another name points at the same version."""
    return flat_envelope(await call_blocking(lambda: registry.delete(model_name)))
