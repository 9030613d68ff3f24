"""``/data``: the market data files the server can train and predict on."""

from __future__ import annotations

from fastapi import APIRouter, Response

from trainops.api.deps import call_blocking
from trainops.api.responses import Envelope, envelope
from trainops.api.train_deps import TrainingDep
from trainops.schemas.data import DataFile

router = APIRouter(prefix="/data", tags=["data"])


@router.get("", response_model=Envelope[list[DataFile]])
async def list_data(training: TrainingDep) -> Response:
    """Every ``{SYMBOL}_{TIMEFRAME}`` file in the data directory: symbol, timeframe, format, bars, first and
    last bar. Empty until someone runs ``trainops data sample`` (or copies data there)."""
    return envelope(await call_blocking(training.data))
