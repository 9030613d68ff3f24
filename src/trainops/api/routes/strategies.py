"""``/strategies``: the strategy files the server can train, and validation without training."""

from __future__ import annotations

from fastapi import APIRouter, Response

from trainops.api.deps import call_blocking
from trainops.api.openapi import errors
from trainops.api.responses import Envelope, envelope
from trainops.api.train_deps import TrainingDep
from trainops.errors import InvalidInputError
from trainops.schemas.strategies import StrategySummary, StrategyValidation, ValidateRequest

router = APIRouter(prefix="/strategies", tags=["strategies"])


@router.get("", response_model=Envelope[list[StrategySummary]])
async def get_strategies(training: TrainingDep) -> Response:
    """Every strategy in the server's strategies directory: symbols, timeframes, indicators, architecture; a
    broken file is listed with ``valid: false`` and its problem."""
    return envelope(await call_blocking(training.strategies))


@router.post(
    "/validate",
    response_model=Envelope[StrategyValidation],
    responses=errors(404, s404="no strategy of that name in the server's strategies folder (the message lists them)"),
)
async def validate(body: ValidateRequest, training: TrainingDep) -> Response:
    """Check a strategy without training it: ``valid`` and every problem, each with its path in the file and
    the fix (e.g. ``fuzzy_sets.rsi_14.oversold: triangular needs 3 numbers a <= b <= c, got [30, 20]``)."""

    def check() -> StrategyValidation:
        if body.strategy is not None:
            return training.validate_named(body.strategy, allow_paths=False)
        if body.yaml is not None:
            return training.validate(body.yaml)
        if body.config is None:  # unreachable: the model requires one source
            raise InvalidInputError("send yaml, config or strategy")
        return training.validate(body.config)

    return envelope(await call_blocking(check))
