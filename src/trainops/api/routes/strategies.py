"""``/strategies``: the strategy files the server can train, and validation without training."""

from __future__ import annotations

from fastapi import APIRouter, Response

from trainops.api.deps import SettingsDep, call_blocking
from trainops.api.responses import Envelope, envelope
from trainops.errors import InvalidInputError
from trainops.pipeline.strategy import load_strategy
from trainops.schemas.strategies import StrategySummary, StrategyValidation, ValidateRequest
from trainops.service.training import find_strategy, list_strategies, validate_strategy_input

router = APIRouter(prefix="/strategies", tags=["strategies"])


@router.get("", response_model=Envelope[list[StrategySummary]])
async def get_strategies(settings: SettingsDep) -> Response:
    """Every strategy in the server's strategies directory: symbols, timeframes, indicators, architecture; a
    broken file is listed with ``valid: false`` and its problem."""
    return envelope(await call_blocking(lambda: list_strategies(settings.resolved_strategies_dir)))


@router.post("/validate", response_model=Envelope[StrategyValidation])
async def validate(body: ValidateRequest, settings: SettingsDep) -> Response:
    """Check a strategy without training it: ``valid`` and every problem, each with its path in the file and
    the fix (e.g. ``fuzzy_sets.rsi_14.oversold: triangular needs 3 numbers a <= b <= c, got [30, 20]``)."""

    def check() -> StrategyValidation:
        if body.strategy is not None:
            path = find_strategy(body.strategy, settings.resolved_strategies_dir, allow_paths=False)
            return validate_strategy_input(load_strategy(path).to_dict(), path.name)
        if body.yaml is not None:
            return validate_strategy_input(body.yaml)
        if body.config is None:  # unreachable: the model requires one source
            raise InvalidInputError("send yaml, config or strategy")
        return validate_strategy_input(body.config)

    return envelope(await call_blocking(check))
