"""Wire types of market data: the files a server or a local machine can train on."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DataFormat = Literal["csv", "parquet"]

DATA_MEDIA_TYPES: dict[DataFormat, str] = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
"""The media type ``GET /data/{symbol}/{timeframe}`` answers for each format of data file; a client names the file
it writes (``EURUSD_1h.csv``) after it, so a worker's cache holds what the server's data directory holds."""


def data_format_of(media_type: str) -> DataFormat | None:
    """The data file format a download's ``Content-Type`` names (parameters such as ``; charset=utf-8`` ignored)."""
    base = media_type.split(";", 1)[0].strip().lower()
    return next((fmt for fmt, known in DATA_MEDIA_TYPES.items() if known == base), None)


class DataFile(BaseModel):
    """One market data file and what it holds (``bars`` is 0 and ``start``/``end`` are None for an empty file)."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    timeframe: str
    path: Path
    format: DataFormat
    bars: int
    start: datetime | None
    end: datetime | None
    problem: str | None = Field(
        None, description="why the file cannot be read (bars 0, no dates): it is listed, and the others are usable"
    )

    @property
    def name(self) -> str:
        """``SYMBOL_TIMEFRAME``, the way users name a data set."""
        return f"{self.symbol}_{self.timeframe}"
