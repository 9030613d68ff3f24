"""``/data``: the market data files the server can train and predict on."""

from __future__ import annotations

from fastapi import APIRouter, Response

from trainops.api.deps import SettingsDep, call_blocking
from trainops.api.responses import Envelope, envelope
from trainops.pipeline.data_files import available_data
from trainops.schemas.data import DataFile

router = APIRouter(prefix="/data", tags=["data"])


@router.get("", response_model=Envelope[list[DataFile]])
async def list_data(settings: SettingsDep) -> Response:
    """Every ``{SYMBOL}_{TIMEFRAME}`` file in the data directory: symbol, timeframe, format, bars, first and
    last bar. Empty until someone runs ``trainops data sample`` (or copies data there)."""
    return envelope(await call_blocking(lambda: available_data(settings.resolved_data_dir)))
