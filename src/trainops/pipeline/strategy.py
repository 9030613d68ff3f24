"""Strategy files: the YAML that describes what to train on, how to make features and labels, and the model.

A strategy is validated as a whole before any data is read. Every problem is reported with its path in the
file and how to fix it, e.g. ``fuzzy_sets.rsi_14.oversold: triangular needs 3 numbers a <= b <= c, got [30, 20]``.
The sections each belong to the engine that uses them (indicators, fuzzy sets, labels, model, trainer); this
module only puts them together and checks that they agree with each other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trainops.core.yaml_text import safe_load
from trainops.errors import StrategyError, TrainOpsError
from trainops.pipeline.data import normalize_symbol, parse_timeframe, timeframe_delta
from trainops.pipeline.fuzzy import FuzzyFeatureConfig
from trainops.pipeline.indicators import IndicatorConfig, output_column
from trainops.pipeline.labels import LabelConfig
from trainops.pipeline.model import ArchitectureConfig
from trainops.pipeline.trainer import TrainingConfig

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_STRATEGY_BYTES = 1024 * 1024
"""Largest strategy file read (1 MiB): real ones are a few kilobytes."""


class SymbolsConfig(BaseModel):
    """``{mode: single, symbol: EURUSD}`` or ``{mode: multi_symbol, list: [EURUSD, GBPUSD]}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mode: Literal["single", "multi_symbol"] = "single"
    symbol: str | None = None
    symbols: list[str] | None = Field(None, alias="list", min_length=1, max_length=100)

    @model_validator(mode="after")
    def _check(self) -> SymbolsConfig:
        if self.mode == "single":
            if self.symbol is None:
                raise ValueError("mode single needs 'symbol', e.g. {mode: single, symbol: EURUSD}")
            self.symbol = _symbol(self.symbol)
            self.symbols = None
        else:
            if not self.symbols:
                raise ValueError("mode multi_symbol needs 'list', e.g. {mode: multi_symbol, list: [EURUSD, GOOG]}")
            symbols = [_symbol(symbol) for symbol in self.symbols]
            if len(set(symbols)) != len(symbols):
                raise ValueError(f"list names a symbol twice: {symbols}")
            self.symbols = symbols
            self.symbol = None
        return self

    @property
    def all(self) -> list[str]:
        return [self.symbol] if self.symbol else list(self.symbols or [])


class TimeframesConfig(BaseModel):
    """``{mode: single, timeframe: 1h}`` or ``{mode: multi_timeframe, list: [1h, 4h, 1d], base_timeframe: 1h}``.

    With several timeframes the model sees one row per bar of the base timeframe; the other timeframes'
    features are those of their last bar that had closed by then.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    mode: Literal["single", "multi_timeframe"] = "single"
    timeframe: str | None = None
    timeframes: list[str] | None = Field(None, alias="list", min_length=1, max_length=10)
    base_timeframe: str | None = None

    @model_validator(mode="after")
    def _check(self) -> TimeframesConfig:
        if self.mode == "single":
            if self.timeframe is None:
                raise ValueError("mode single needs 'timeframe', e.g. {mode: single, timeframe: 1h}")
            self.timeframe = _timeframe(self.timeframe)
            self.timeframes, self.base_timeframe = None, None
            return self
        if not self.timeframes:
            raise ValueError(
                "mode multi_timeframe needs 'list', e.g. {mode: multi_timeframe, list: [1h, 4h], base_timeframe: 1h}"
            )
        timeframes = sorted({_timeframe(item) for item in self.timeframes}, key=timeframe_delta)
        if len(timeframes) != len(self.timeframes):
            raise ValueError(f"list names a timeframe twice: {self.timeframes}")
        base = _timeframe(self.base_timeframe) if self.base_timeframe else timeframes[0]
        if base != timeframes[0]:
            raise ValueError(
                f"base_timeframe {base} must be the shortest timeframe in the list ({timeframes[0]}): the model "
                "gets one row per base bar and the longer timeframes are aligned onto it"
            )
        self.timeframes, self.base_timeframe, self.timeframe = timeframes, base, None
        return self

    @property
    def all(self) -> list[str]:
        """Every timeframe, shortest (the base) first."""
        return [self.timeframe] if self.timeframe else list(self.timeframes or [])

    @property
    def base(self) -> str:
        return self.all[0]

    @property
    def is_multi(self) -> bool:
        return len(self.all) > 1


class TrainingDataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbols: SymbolsConfig
    timeframes: TimeframesConfig
    start_date: date | None = None
    end_date: date | None = None

    @model_validator(mode="after")
    def _dates(self) -> TrainingDataConfig:
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ValueError(f"start_date {self.start_date} is after end_date {self.end_date}")
        return self


class FeaturesConfig(BaseModel):
    """``lookback_periods``: also give the model each feature's values of that many previous bars."""

    model_config = ConfigDict(extra="forbid")

    lookback_periods: int = Field(0, ge=0, le=100)
    scale_features: bool = True


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["mlp"] = "mlp"
    architecture: ArchitectureConfig
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)


class DataSplitConfig(BaseModel):
    """Fractions of the labelled bars, in time order on one time axis for every symbol: the oldest train, then
    validation, then the newest test. With several symbols, the boundaries are times (a bar of one symbol never
    tests a period another trains on), so a symbol whose data ends early may have no test bars. Rows whose label a
    later split's prices decide are purged at each boundary."""

    model_config = ConfigDict(extra="forbid")

    train: float = Field(0.7, gt=0.0, lt=1.0, allow_inf_nan=False)
    validation: float = Field(0.15, gt=0.0, lt=1.0, allow_inf_nan=False)
    test: float = Field(0.15, gt=0.0, lt=1.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _sums_to_one(self) -> DataSplitConfig:
        total = self.train + self.validation + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(
                f"train + validation + test must sum to 1, got {self.train} + {self.validation} + {self.test} = "
                f"{total:g}"
            )
        return self


class LabelingConfig(BaseModel):
    """The ``training`` section: how bars are labelled and split."""

    model_config = ConfigDict(extra="forbid")

    labels: LabelConfig
    data_split: DataSplitConfig = Field(default_factory=DataSplitConfig)


class StrategyConfig(BaseModel):
    """A whole strategy file. Load one with :func:`load_strategy`; everything is checked before data is read."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field("", max_length=4000)
    version: str = Field("1.0", max_length=32)
    training_data: TrainingDataConfig
    indicators: list[IndicatorConfig] = Field(min_length=1, max_length=200)
    fuzzy_sets: dict[str, FuzzyFeatureConfig] = Field(min_length=1)
    model: ModelConfig
    training: LabelingConfig

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _sections_agree(self) -> StrategyConfig:
        by_feature: dict[str, IndicatorConfig] = {}
        for indicator in self.indicators:
            if indicator.feature_id in by_feature:
                raise ValueError(f"indicators: feature_id {indicator.feature_id!r} is used twice; give each its own")
            by_feature[indicator.feature_id] = indicator
        for feature_id, fuzzy in self.fuzzy_sets.items():
            source = by_feature.get(feature_id)
            if source is None:
                raise ValueError(
                    f"fuzzy_sets.{feature_id}: no indicator has feature_id {feature_id!r}; "
                    f"the indicators' feature_ids are: {', '.join(by_feature)}"
                )
            try:
                output_column(source, fuzzy.output)
            except StrategyError as error:
                raise ValueError(f"fuzzy_sets.{feature_id}.output: {error.message}") from None
        unused = [feature_id for feature_id in by_feature if feature_id not in self.fuzzy_sets]
        if unused:
            which = f"indicator {unused[0]} has" if len(unused) == 1 else f"indicators {', '.join(unused)} have"
            raise ValueError(
                f"{which} no fuzzy_sets, so the model would never see them; add sets under fuzzy_sets or remove them"
            )
        return self

    @property
    def symbols(self) -> list[str]:
        return self.training_data.symbols.all

    @property
    def timeframes(self) -> list[str]:
        return self.training_data.timeframes.all

    def to_dict(self) -> dict[str, Any]:
        """The strategy as a plain mapping that :func:`parse_strategy` reads back to an equal strategy."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# -- loading ----------------------------------------------------------------------------------------------------


def parse_strategy(data: Any, source: str = "strategy") -> StrategyConfig:
    """Validate a strategy given as a mapping (parsed YAML or a JSON body).

    Raises:
        StrategyError: every problem found, each as ``path: what is wrong and how to fix it``.
    """
    if data is None:
        raise StrategyError(
            f"{source} is empty; a strategy needs name, training_data, indicators, fuzzy_sets, model, training"
        )
    if not isinstance(data, Mapping):
        raise StrategyError(
            f"{source}: a strategy is a mapping of sections (name, training_data, ...), got {type(data).__name__}"
        )
    try:
        return StrategyConfig.model_validate(data)
    except ValidationError as error:
        problems = [_problem(item) for item in error.errors()]
        raise StrategyError(
            f"{source} is not a valid strategy: " + "; ".join(problems),
            details={"problems": problems, "source": source},
        ) from None


def load_strategy(path: str | Path) -> StrategyConfig:
    """Read and validate a strategy YAML file.

    Raises:
        StrategyError: the file is missing, too large, not YAML, or not a valid strategy (with the problems).
    """
    file = Path(path).expanduser()
    if file.is_dir():
        raise StrategyError(f"{str(path)!r} is a directory, not a strategy file: give the path of a .yaml file in it")
    if not file.is_file():
        raise StrategyError(
            f"strategy file {str(path)!r} does not exist; list the shipped ones with "
            "`trainops strategies list` or give a path to a .yaml file"
        )
    if file.stat().st_size > MAX_STRATEGY_BYTES:
        raise StrategyError(f"strategy file {file} is larger than {MAX_STRATEGY_BYTES:,} bytes; is it a strategy?")
    text = file.read_text(encoding="utf-8", errors="replace")
    return parse_strategy(_yaml(text, str(file)), file.name)


def strategy_from_yaml(text: str, source: str = "strategy") -> StrategyConfig:
    """Validate a strategy given as YAML text (what ``POST /strategies/validate`` receives)."""
    return parse_strategy(_yaml(text, source), source)


def _yaml(text: str, source: str) -> Any:
    try:
        return safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise StrategyError(f"{source} is not valid YAML{where}: {problem}") from None


def _problem(item: Mapping[str, Any]) -> str:
    path = ""
    for position, part in enumerate(item["loc"]):
        # FuzzyFeatureConfig keeps its sets under one key (fuzzy_sets.<feature>.sets.<set>); the file has them
        # flat. Only that key is dropped: a feature or set the user named "sets" stays in the path.
        if position == 2 and part == "sets" and item["loc"][0] == "fuzzy_sets":
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    message = str(item["msg"]).removeprefix("Value error, ")
    if item.get("type") == "missing":
        message = "is required"
    elif item.get("type") == "extra_forbidden":
        message = "is not a known field (check its spelling and indentation)"
    return f"{path}: {message}" if path else message


def _symbol(symbol: str) -> str:
    try:
        return normalize_symbol(symbol)
    except TrainOpsError as error:
        raise ValueError(error.message) from None


def _timeframe(timeframe: str) -> str:
    try:
        return parse_timeframe(str(timeframe))
    except TrainOpsError as error:  # a message that lists the valid timeframes
        raise ValueError(error.message) from None
