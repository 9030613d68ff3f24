"""Strategy files: the shipped examples, the messages users read when a file is wrong, and the aliases."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from trainops.core.yaml_text import safe_load
from trainops.errors import StrategyError
from trainops.pipeline.data_files import load_ohlcv, write_sample_data
from trainops.pipeline.fuzzy import fuzzify
from trainops.pipeline.indicators import compute_indicator, output_column
from trainops.pipeline.labels import class_balance, zigzag_labels
from trainops.pipeline.strategy import (
    MAX_STRATEGY_BYTES,
    StrategyConfig,
    load_strategy,
    parse_strategy,
    strategy_from_yaml,
)

STRATEGIES_DIR = Path(__file__).resolve().parents[2] / "strategies"
SHIPPED = sorted(STRATEGIES_DIR.glob("*.yaml"))

MIN_ACTIVE_SHARE = 0.02
"""A shipped fuzzy set must be the main description (membership > 0.5) of at least this share of bars."""
MIN_MOVE_SHARE = 0.15
"""BUY and SELL must each be at least this share of a shipped strategy's labelled bars."""

_TRIANGLE = "triangular"

VALID: dict[str, Any] = {
    "name": "test_strategy",
    "training_data": {
        "symbols": {"mode": "single", "symbol": "EURUSD"},
        "timeframes": {"mode": "single", "timeframe": "1h"},
    },
    "indicators": [
        {"name": "rsi", "feature_id": "rsi_14", "period": 14},
        {"name": "macd", "feature_id": "macd"},
    ],
    "fuzzy_sets": {
        "rsi_14": {
            "oversold": {"type": _TRIANGLE, "parameters": [0, 20, 40]},
            "overbought": {"type": _TRIANGLE, "parameters": [60, 80, 100]},
        },
        "macd": {
            "output": "histogram",
            "negative": {"type": "gaussian", "parameters": [-0.001, 0.0005]},
            "positive": {"type": "gaussian", "parameters": [0.001, 0.0005]},
        },
    },
    "model": {
        "architecture": {"hidden_layers": [8]},
        "training": {"epochs": 2, "early_stopping": {"monitor": "val_loss", "patience": 1}},
    },
    "training": {"labels": {"zigzag_threshold": 0.01}},
}
"""A small valid strategy; each error case below changes one thing in it."""

DELETE = object()
"""A change that removes the key instead of setting it."""


def edited(changes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of :data:`VALID` with each ``"dotted.path": value`` set (list items by index: ``indicators.1``)."""
    data = copy.deepcopy(VALID)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = copy.deepcopy(value)
    return data


def problem_message(data: Any) -> str:
    with pytest.raises(StrategyError) as raised:
        parse_strategy(data)
    return raised.value.message


# -- the shipped examples ---------------------------------------------------------------------------------------


def test_the_examples_are_shipped() -> None:
    # Guards the parametrized tests below, which would otherwise pass vacuously over an empty glob.
    assert {"mean_reversion", "multi_timeframe", "trend_following"} <= {path.stem for path in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_shipped_strategy_loads_and_round_trips(path: Path) -> None:
    config = load_strategy(path)

    assert config.name == path.stem
    assert parse_strategy(config.to_dict()) == config
    assert strategy_from_yaml(yaml.safe_dump(config.to_dict())) == config


def test_valid_strategy_round_trips_with_defaults_filled_in() -> None:
    config = parse_strategy(VALID)
    dumped = config.to_dict()

    assert dumped["indicators"][1] == {
        "name": "macd",
        "feature_id": "macd",
        "fast_period": 12,
        "slow_period": 26,
        "signal_period": 9,
        "source": "close",
    }
    assert dumped["fuzzy_sets"]["macd"]["output"] == "histogram"
    assert "sets" not in dumped["fuzzy_sets"]["rsi_14"]
    assert parse_strategy(dumped) == config


# -- errors: the path in the file, what is wrong, and the fix -----------------------------------------------------


def test_bad_fuzzy_set_names_the_set_and_the_numbers() -> None:
    data = edited({"fuzzy_sets.rsi_14.oversold": {"type": _TRIANGLE, "parameters": [30, 20]}})
    expected = "fuzzy_sets.rsi_14.oversold: triangular needs 3 numbers a <= b <= c, got [30, 20]"

    with pytest.raises(StrategyError, match=re.escape(expected)) as raised:
        parse_strategy(data, source="mine.yaml")

    assert raised.value.message.startswith("mine.yaml is not a valid strategy: ")
    assert raised.value.details["problems"] == [expected]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"model": DELETE}, ["model: is required"], id="missing-section"),
        pytest.param(
            {"model.training.learning_rat": 0.01},
            ["model.training.learning_rat: is not a known field (check its spelling"],
            id="unknown-key",
        ),
        pytest.param(
            {"training.data_split": {"train": 0.7, "validation": 0.2, "test": 0.2}},
            ["training.data_split: train + validation + test must sum to 1, got 0.7 + 0.2 + 0.2 = 1.1"],
            id="split-sum",
        ),
        pytest.param(
            {"training_data.symbols": {"mode": "single"}},
            ["training_data.symbols: mode single needs 'symbol', e.g. {mode: single, symbol: EURUSD}"],
            id="single-without-symbol",
        ),
        pytest.param(
            {"training_data.symbols": {"mode": "multi_symbol", "list": ["EURUSD", "GOOG", "eurusd"]}},
            ["training_data.symbols: list names a symbol twice"],
            id="duplicate-symbol",
        ),
        pytest.param(
            {"training_data.timeframes": {"mode": "multi_timeframe", "list": ["1h", "4h"], "base_timeframe": "4h"}},
            ["training_data.timeframes: base_timeframe 4h must be the shortest timeframe in the list (1h)"],
            id="base-not-shortest",
        ),
        pytest.param(
            {"training_data.timeframes.timeframe": "7x"},
            ["training_data.timeframes: unknown timeframe '7x'", "1m, 5m, 15m, 30m, 1h, 2h, 4h, 1d, 1w"],
            id="bad-timeframe",
        ),
        pytest.param(
            {"training_data.symbols.symbol": "../etc"},
            ["training_data.symbols: invalid symbol '../etc'", "(e.g. EURUSD, BRK.B)"],
            id="hostile-symbol",
        ),
        pytest.param(
            {"indicators.1.name": "rsx"},
            ["indicators[1]: unknown indicator 'rsx'; valid indicators are: rsi, sma, ema, macd, bbands"],
            id="unknown-indicator",
        ),
        pytest.param(
            {"indicators.1.feature_id": "rsi_14"},
            ["indicators: feature_id 'rsi_14' is used twice; give each its own"],
            id="duplicate-feature-id",
        ),
        pytest.param(
            {"fuzzy_sets.rsi_15": {"low": {"type": _TRIANGLE, "parameters": [0, 20, 40]}}},
            ["fuzzy_sets.rsi_15: no indicator has feature_id 'rsi_15'", "feature_ids are: rsi_14, macd"],
            id="sets-for-unknown-feature",
        ),
        pytest.param(
            {"fuzzy_sets.macd": DELETE},
            ["indicator macd has no fuzzy_sets", "add sets under fuzzy_sets or remove them"],
            id="indicator-without-sets",
        ),
        pytest.param(
            {"fuzzy_sets.rsi_14.output": "signal"},
            ["fuzzy_sets.rsi_14.output: rsi has no output 'signal'; its outputs are: value"],
            id="output-the-indicator-lacks",
        ),
        pytest.param(
            {"training_data.start_date": "2018-01-01", "training_data.end_date": "2017-01-01"},
            ["training_data: start_date 2018-01-01 is after end_date 2017-01-01"],
            id="start-after-end",
        ),
        pytest.param(
            {"model.training.early_stopping.monitor": "val_acc"},
            ["model.training.early_stopping.monitor: ", "'val_acc' is not a metric the trainer reports", "val_loss"],
            id="unreported-monitor",
        ),
        pytest.param(
            {"training.labels.zigzag_threshold": 5},
            ["training.labels.zigzag_threshold: zigzag_threshold is a fraction of price (0.02 = 2%), got 5"],
            id="zigzag-threshold-not-a-fraction",
        ),
        pytest.param(
            {"fuzzy_sets.rsi_14.sets": {"type": _TRIANGLE, "parameters": [30, 20]}},
            ["fuzzy_sets.rsi_14.sets: triangular needs 3 numbers"],
            id="set-named-sets",
        ),
        pytest.param(
            {
                "indicators.0.feature_id": "sets",
                "fuzzy_sets.rsi_14": DELETE,
                "fuzzy_sets.sets": {"low": {"type": _TRIANGLE, "parameters": [30, 20]}},
            },
            ["fuzzy_sets.sets.low: triangular needs 3 numbers"],
            id="feature-named-sets",
        ),
    ],
)
def test_invalid_strategy_names_path_and_fix(changes: dict[str, Any], expected: list[str]) -> None:
    message = problem_message(edited(changes))

    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(StrategyError) as raised:
        parse_strategy(edited({"model": DELETE, "training.labels.label_lookahed": 5}))

    assert raised.value.details["problems"] == [
        "model: is required",
        "training.labels.label_lookahed: is not a known field (check its spelling and indentation)",
    ]


# -- files and YAML ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("name: x\nindicators: [rsi\n", 3, id="unclosed-list"),
        pytest.param("name: x\n  model: 1\n", 2, id="bad-indentation"),
        pytest.param("name: x\nmodel: {a: 1\ntraining: 2\n", 3, id="unclosed-mapping"),
        pytest.param("name: x\nmodel:\n\t- 1\n", 3, id="tab"),
        # values PyYAML parses but cannot read as their tag: Python's ValueError or KeyError without a mark
        pytest.param("name: x\ntraining_data:\n  start_date: 2001-13-45\n", 3, id="impossible-date"),
        pytest.param("name: x\nmodel: {epochs: !!int ten}\n", 2, id="tagged-int"),
        pytest.param("name: x\nmodel: {shuffle: !!bool maybe}\n", 2, id="tagged-bool"),
        pytest.param("name: x\nmodel: " + "[" * 2000 + "]" * 2000 + "\n", None, id="nested-too-deep"),
    ],
)
def test_malformed_yaml_names_the_line(tmp_path: Path, text: str, line: int | None) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    where = rf" at line {line}, column \d+" if line is not None else ""

    with pytest.raises(StrategyError, match=rf"^{re.escape(str(path))} is not valid YAML{where}: "):
        load_strategy(path)


def test_top_level_list_is_refused() -> None:
    with pytest.raises(StrategyError, match=r"a strategy is a mapping of sections .*got list"):
        strategy_from_yaml("- name: x\n- model: {}\n")


def test_missing_file_says_it_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match=r"strategy file '.*nope\.yaml' does not exist"):
        load_strategy(tmp_path / "nope.yaml")


def test_directory_is_not_a_strategy_file(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match=r"is a directory, not a strategy file: give the path of a \.yaml file"):
        load_strategy(tmp_path)


def test_a_key_written_twice_is_refused_at_its_line(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys silently: a fuzzy set written twice vanished without a word."""
    path = tmp_path / "twice.yaml"
    path.write_text(yaml.safe_dump(VALID, sort_keys=False) + "name: other\n", encoding="utf-8")
    lines = path.read_text(encoding="utf-8").splitlines()
    first, last = lines.index(f"name: {VALID['name']}") + 1, len(lines)

    twice = rf"at line {last}, .*the key 'name' is written twice \(first on line {first}\)"
    with pytest.raises(StrategyError, match=twice):
        load_strategy(path)
    # keys merged in from an anchor may still be overridden, as YAML means them to be
    assert safe_load("defaults: &d {x: 1, y: 1}\nmerged: {<<: *d, x: 2}\n")["merged"] == {"x": 2, "y": 1}


def test_a_number_in_exponent_form_without_a_dot_is_a_number() -> None:
    """YAML 1.2 and everyone read 1e-3 as a number; PyYAML alone read it as text, refused as a learning rate."""
    text = yaml.safe_dump(VALID).replace("  training:\n", "  training:\n    learning_rate: 1e-3\n", 1)
    assert "learning_rate: 1e-3" in text
    assert strategy_from_yaml(text).model.training.learning_rate == 0.001


def test_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    text = yaml.safe_dump(VALID)
    path.write_text(text + "#" * (MAX_STRATEGY_BYTES + 1 - len(text.encode())), encoding="utf-8")
    assert path.stat().st_size == MAX_STRATEGY_BYTES + 1

    with pytest.raises(StrategyError, match=r"is larger than 1,048,576 bytes"):
        load_strategy(path)


def test_file_at_the_limit_loads(tmp_path: Path) -> None:
    path = tmp_path / "padded.yaml"
    text = yaml.safe_dump(VALID)
    path.write_text(text + "#" * (MAX_STRATEGY_BYTES - len(text.encode())), encoding="utf-8")

    assert load_strategy(path) == parse_strategy(VALID)


# -- aliases and normalisation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "listed",
    [
        pytest.param(["4h", "1h", "1d"], id="unsorted"),
        pytest.param(["H4", "60m", "Daily"], id="aliases"),
    ],
)
def test_timeframe_list_is_normalised_shortest_first(listed: list[str]) -> None:
    config = parse_strategy(edited({"training_data.timeframes": {"mode": "multi_timeframe", "list": listed}}))

    assert config.timeframes == ["1h", "4h", "1d"]
    assert config.training_data.timeframes.base == "1h"
    assert config.training_data.timeframes.base_timeframe == "1h"
    assert config.training_data.timeframes.is_multi


def test_symbols_and_single_timeframe_are_normalised() -> None:
    config = parse_strategy(
        edited(
            {
                "training_data.symbols": {"mode": "multi_symbol", "list": ["eurusd", " goog "]},
                "training_data.timeframes.timeframe": "H1",
            }
        )
    )

    assert config.symbols == ["EURUSD", "GOOG"]
    assert config.timeframes == ["1h"]


@pytest.mark.parametrize(
    ("written", "expected"),
    [("1.0", "1.0"), ("2", "2"), ("'1.0.3'", "1.0.3")],
)
def test_version_number_becomes_text(written: str, expected: str) -> None:
    text = yaml.safe_dump(VALID) + f"version: {written}\n"

    config: StrategyConfig = strategy_from_yaml(text)

    assert config.version == expected


@pytest.mark.parametrize(
    ("written", "canonical"),
    [("RSI", "rsi"), ("WILLR", "williams_r"), ("Bbands", "bbands"), ("MOM", "momentum")],
)
def test_talib_names_resolve(written: str, canonical: str) -> None:
    config = parse_strategy(edited({"indicators.0.name": written}))

    assert config.indicators[0].name == canonical
    assert config.to_dict()["indicators"][0]["name"] == canonical


# -- the shipped examples on the real sample data -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("sample_data")
    write_sample_data(data_dir)
    return data_dir


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_shipped_fuzzy_sets_are_all_active(sample_data: Path, path: Path) -> None:
    # Numbers that suit no real bar (a set above RSI 100, a ratio band nothing reaches) give the model a constant
    # input; check each set on each symbol and timeframe, since one indicator list serves every timeframe.
    config = load_strategy(path)
    indicators = {indicator.feature_id: indicator for indicator in config.indicators}
    dead = []
    for symbol in config.symbols:
        for timeframe in config.timeframes:
            ohlcv = load_ohlcv(
                sample_data, symbol, timeframe, config.training_data.start_date, config.training_data.end_date
            )
            for feature_id, fuzzy in config.fuzzy_sets.items():
                indicator = indicators[feature_id]
                values = compute_indicator(indicator, ohlcv)[output_column(indicator, fuzzy.output)]
                active = (fuzzify(values, fuzzy, feature_id, ohlcv).dropna() > 0.5).mean()
                dead += [
                    f"{symbol} {timeframe} {column}: {share:.1%}"
                    for column, share in active.items()
                    if share < MIN_ACTIVE_SHARE
                ]
    assert not dead, f"fuzzy sets with membership > 0.5 on under {MIN_ACTIVE_SHARE:.0%} of bars: {dead}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_shipped_labels_are_balanced(sample_data: Path, path: Path) -> None:
    config = load_strategy(path)
    for symbol in config.symbols:
        ohlcv = load_ohlcv(
            sample_data,
            symbol,
            config.training_data.timeframes.base,
            config.training_data.start_date,
            config.training_data.end_date,
        )
        balance = class_balance(zigzag_labels(ohlcv["close"], config.training.labels))

        for label in ("BUY", "SELL"):
            assert balance[label]["fraction"] >= MIN_MOVE_SHARE, f"{symbol} {label}: {balance}"
