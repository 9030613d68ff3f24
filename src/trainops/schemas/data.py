"""Wire types of market data: the files a server or a local machine can train on."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict


class DataFile(BaseModel):
    """One market data file and what it holds (``bars`` is 0 and ``start``/``end`` are None for an empty file)."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    timeframe: str
    path: Path
    format: Literal["csv", "parquet"]
    bars: int
    start: datetime | None
    end: datetime | None

    @property
    def name(self) -> str:
        """``SYMBOL_TIMEFRAME``, the way users name a data set."""
        return f"{self.symbol}_{self.timeframe}"
