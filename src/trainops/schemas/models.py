"""Wire types of the model registry: saving, listing, loading and asking a model for signals."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from trainops.core.json_types import JsonTyped
from trainops.errors import InvalidInputError

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


_MODEL_NAME = re.compile(MODEL_NAME_PATTERN.removeprefix("^").removesuffix("$"))  # fullmatch: "$" allows a "\n"
MODEL_NAME_SCHEMA: JsonDict = {"pattern": MODEL_NAME_PATTERN, "not": {"pattern": "[.][.]"}}
"""The rule of :func:`check_model_name` as the OpenAPI document states it."""


def check_model_name(name: str) -> str:
    """``name`` when it is a safe model name.

    Raises:
        InvalidInputError: the name breaks the rule (a hostile ``../../etc`` included); the message states it.
    """
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name) or ".." in name:
        shown = name if not isinstance(name, str) or len(name) <= 100 else f"{name[:100]}..."
        raise InvalidInputError(
            f"model name {shown!r} is invalid: it must match {MODEL_NAME_PATTERN} (start with a letter or digit; "
            "then letters, digits, '_', '.', '-'; at most 64 characters; no '..')",
            details={"model_name": shown, "pattern": MODEL_NAME_PATTERN},
        )
    return name


class SaveModelRequest(JsonTyped):
    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(max_length=64, description="the training operation whose model to save")
    model_name: str = Field(json_schema_extra=MODEL_NAME_SCHEMA)  # check_model_name bounds it, saying the rule
    description: str = Field("", max_length=4000)
    overwrite: bool = False


class SavedModel(BaseModel):
    success: bool = True
    model_id: int
    model_name: str
    model_path: str
    task_id: str
    saved_at: datetime
    model_size_mb: float


class StoredModelVersion(BaseModel):
    """The answer to ``POST /models/versions``: where the server's registry keeps a version a worker uploaded.

    ``model_version`` and ``model_path`` are what a training's result names (``result.model_version``,
    ``result.model_info.model_path``), so ``models save`` finds it as it finds a locally written one.
    """

    success: bool = True
    task_id: str = Field(description="the training operation that wrote the version")
    model_version: str = Field(description="the version's directory relative to the models directory")
    model_path: str = Field(description="the version's directory on the server")
    size_bytes: int
    created: bool = Field(
        description="false when the server already held this training's version (a retried upload): nothing "
        "was written and the stored version is named"
    )


class ModelSummary(BaseModel):
    """A model as ``GET /models`` lists it."""

    model_id: int
    model_name: str
    strategy: str
    symbol: str
    timeframe: str
    created_at: datetime
    saved_at: datetime
    training_accuracy: float | None
    test_accuracy: float | None
    f1_score: float | None = None
    architecture: str | None = None
    description: str | None
    source_operation: str | None = Field(description="the training operation the model was saved from")
    source_deleted: bool = Field(
        False,
        description="true when that operation was deleted since (DELETE /operations/{id}?purge=true): the model "
        "stays, source_operation keeps its id, but its history and artifacts are gone",
    )
    model_path: str
    model_size_mb: float


class ModelInfo(BaseModel):
    created_at: datetime
    symbol: str
    timeframe: str
    strategy: str
    architecture: str | None
    training_accuracy: float | None
    test_accuracy: float | None
    input_size: int
    features: list[str]
    source_operation: str | None


class LoadedModel(BaseModel):
    success: bool = True
    model_name: str
    model_loaded: Literal[True] = True
    model_info: ModelInfo


def _moment(value: Any) -> Any:
    """``"2018-01-10"`` is a date (that whole day); ``"2018-01-10T00:00"`` an instant, even at midnight."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return value


Moment = Annotated[date | datetime, BeforeValidator(_moment)]


class PredictRequest(JsonTyped):
    """One bar (``test_date``) or a range (``start_date`` and ``end_date``)."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(json_schema_extra=MODEL_NAME_SCHEMA)  # check_model_name bounds it, saying the rule
    symbol: str = Field(max_length=32)
    timeframe: str = Field(max_length=16)
    test_date: Moment | None = None
    start_date: Moment | None = None
    end_date: Moment | None = None

    @model_validator(mode="after")
    def _one_form(self) -> PredictRequest:
        single = self.test_date is not None
        ranged = self.start_date is not None or self.end_date is not None
        if single == ranged:
            said = "not both" if single else "got neither"
            raise ValueError(f"send either test_date (one bar) or start_date and end_date (a range): {said}")
        if ranged and (self.start_date is None or self.end_date is None):
            raise ValueError("a range needs both start_date and end_date")
        return self


Signal = Literal["buy", "hold", "sell"]


class Prediction(BaseModel):
    """The model's call on one bar."""

    timestamp: datetime
    signal: Signal
    confidence: float = Field(description="the probability of the chosen signal")
    signal_strength: float = Field(description="P(buy) - P(sell): from -1 (surely sell) to 1 (surely buy)")
    probabilities: dict[str, float]
    fuzzy_outputs: dict[str, float] = Field(description="the fuzzy memberships of the bar itself (no lags)")


class ModelList(BaseModel):
    models: list[ModelSummary]
    count: int = Field(description="models in this answer")
    next_cursor: str | None = Field(
        None, description="with limit: pass as cursor (same filters) for the next page; null on the last"
    )


class PredictionAnswer(BaseModel):
    success: bool = True
    model_name: str
    symbol: str
    timeframe: str
    test_date: datetime = Field(description="the bar predicted: the last one at or before the date asked")
    prediction: Prediction
    input_features: dict[str, float]
    bar: dict[str, float]


class RangePredictionAnswer(BaseModel):
    success: bool = True
    model_name: str
    symbol: str
    timeframe: str
    start_date: datetime
    end_date: datetime
    count: int
    predictions: list[Prediction]
    signal_counts: dict[str, int]
    skipped: int = Field(
        0,
        description="bars of the range without a prediction: their features are incomplete (an indicator undefined "
        "over a flat or gapped stretch of the data)",
    )
    skipped_bars: list[datetime] = Field(default_factory=list, description="the first 20 of the bars skipped")
