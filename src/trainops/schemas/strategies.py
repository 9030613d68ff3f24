"""Wire types of strategies: how ``GET /strategies`` lists them and ``POST /strategies/validate`` checks them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trainops.core.json_types import JsonTyped


class StrategySummary(BaseModel):
    """One strategy file as ``GET /strategies`` lists it; ``valid`` is false with the problem when it is broken."""

    name: str
    path: str
    valid: bool
    description: str = ""
    version: str | None = None
    symbols: list[str] = Field(default_factory=list)
    timeframes: list[str] = Field(default_factory=list)
    indicators: list[str] = Field(default_factory=list)
    architecture: list[int] = Field(default_factory=list)
    epochs: int | None = None
    error: str | None = None


class StrategyValidation(BaseModel):
    """The answer to ``POST /strategies/validate``."""

    valid: bool
    problems: list[str] = Field(default_factory=list)
    message: str
    strategy: StrategySummary | None = None


class ValidateRequest(JsonTyped):
    """One of: ``yaml`` (the file's text), ``config`` (the parsed mapping), ``strategy`` (a name on the server)."""

    model_config = ConfigDict(extra="forbid")

    # well under the body limit (8 MiB) even with every character escaped as \uXXXX: too long is a 422 saying so
    yaml: str | None = Field(None, max_length=256_000)
    config: dict[str, Any] | None = None
    strategy: str | None = Field(None, max_length=256)

    @model_validator(mode="after")
    def _one_source(self) -> ValidateRequest:
        given = [name for name in ("yaml", "config", "strategy") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"send exactly one of yaml, config or strategy (got {', '.join(given) or 'none'})")
        return self
