"""``trainops models list | show | save | load | predict | delete`` as a user runs them: on the local database and
against a live server, as tables and as ``--json``; errors as one-line messages; ``delete`` asks first.

The models are real: ``strategies/mean_reversion.yaml`` trained for 2 epochs on the sample data in this process,
into a temporary models directory.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.live_server import LiveServer
from tests.trainings import STRATEGIES, finished_training
from trainops.cli.main import app
from trainops.client.local import LocalTrainOps
from trainops.core.operation import Operation
from trainops.pipeline.strategy import load_strategy
from trainops.schemas.models import MODEL_NAME_PATTERN
from trainops.service.bootstrap import open_service
from trainops.service.training import apply_overrides, create_training
from trainops.settings import Settings

SIGNAL_LINE = re.compile(
    r"^(buy|hold|sell) at 2018-01-15 23:00 \(EURUSD 1h\): confidence [\d.]+%, strength [+-][\d.]+ "
    r"\(buy [\d.]+%, hold [\d.]+%, sell [\d.]+%\)$"
)
PREDICT = ["--symbol", "EURUSD", "--timeframe", "1h"]

runner = CliRunner()


@pytest.fixture
def settings(training_settings: Settings) -> Settings:
    return training_settings


def invoke(*args: str, answer: str | None = None) -> tuple[int, str, str]:
    """``trainops models ARGS``; wide columns, so a message is one line because it is one, not by wrapping."""
    result = runner.invoke(app, ["models", *args], input=answer, catch_exceptions=False, env={"COLUMNS": "300"})
    return result.exit_code, result.stdout, result.stderr


def one_line_error(code: int, out: str, err: str) -> str:
    assert code == 1, (out, err)
    assert err.startswith("Error: "), err
    assert err.strip().count("\n") == 0, err
    assert "Traceback" not in out + err
    return err.strip()


@pytest.fixture
def local(settings: Settings) -> Iterator[LocalTrainOps]:
    ops = LocalTrainOps(open_service(settings), settings=settings)
    yield ops
    ops.close()


@pytest.fixture
def train(local: LocalTrainOps, settings: Settings) -> Callable[[], Operation]:
    """``train()``: a finished 2-epoch mean reversion training whose model version is in the models directory."""

    def run() -> Operation:
        return finished_training(local, settings)

    return run


def names(local: LocalTrainOps) -> list[str]:
    return [model.model_name for model in local.list_models()]


def parsed(code: int, out: str, err: str) -> Any:
    assert code == 0, err
    return json.loads(out)


# -- the flow --------------------------------------------------------------------------------------------------


def test_save_list_show_load_predict_delete(
    train: Callable[[], Operation], local: LocalTrainOps, settings: Settings
) -> None:
    code, out, _ = invoke("list")
    assert code == 0 and "No models yet" in out and "trainops models save TASK_ID NAME" in out

    task_id = train().operation_id
    code, out, err = invoke("save", task_id, "eurusd-mr", "--description", "hourly mean reversion")
    assert code == 0, err
    assert re.match(rf"Saved eurusd-mr \(id \d+, [\d.]+ MB\) from {task_id}\.", out), out
    assert "Predict with: trainops models predict eurusd-mr --symbol EURUSD --timeframe 1h --date YYYY-MM-DD" in out
    assert names(local) == ["eurusd-mr"]
    architecture = local.get_model("eurusd-mr").architecture
    assert architecture

    code, out, _ = invoke("list")
    [row] = [line for line in out.splitlines() if "eurusd-mr" in line]
    cells = row.replace("│", " ").split()
    assert cells[:5] == ["eurusd-mr", "mean_reversion", "EURUSD", "1h", architecture]
    assert all(cell.endswith("%") for cell in cells[5:7])
    assert [line for line in invoke("list", "--symbol", "GOOG")[1].splitlines() if "eurusd-mr" in line] == []

    code, out, _ = invoke("show", "eurusd-mr")
    assert code == 0
    for label, value in (
        ("strategy", "mean_reversion"),
        ("trained by", task_id),
        ("description", "hourly mean reversion"),
        ("files", str(settings.resolved_models_dir)),
    ):
        assert re.search(rf"{label}\s+{re.escape(value)}", out), (label, out)

    code, out, _ = invoke("load", "eurusd-mr")
    assert code == 0
    assert re.match(rf"Loaded eurusd-mr: {architecture}, \d+ features, mean_reversion on EURUSD 1h, test accuracy", out)

    code, out, err = invoke("predict", "eurusd-mr", *PREDICT, "--date", "2018-01-15")
    assert code == 0, err
    signal, fuzzy, inputs = out.splitlines()
    assert SIGNAL_LINE.match(signal), signal
    assert fuzzy.startswith("fuzzy: ") and inputs.startswith("inputs: rsi_14 ")

    code, out, _ = invoke("predict", "eurusd-mr", *PREDICT, "--start", "2018-01-11", "--end", "2018-01-11")
    assert code == 0
    bars = re.findall(r"2018-01-11 \d\d:00 +. (buy|hold|sell) ", out)
    assert len(bars) == 24  # every hour of the day
    counts = {name: bars.count(name) for name in ("buy", "hold", "sell")}
    assert f"24 bars: buy {counts['buy']}, hold {counts['hold']}, sell {counts['sell']}" in out

    code, out, _ = invoke("delete", "eurusd-mr", answer="n\n")
    assert code == 1
    assert "Delete model 'eurusd-mr' and its files? [y/N]: n" in out
    assert names(local) == ["eurusd-mr"]

    model_path = Path(local.get_model("eurusd-mr").model_path)
    code, out, _ = invoke("delete", "eurusd-mr", answer="y\n")
    assert code == 0 and "Deleted eurusd-mr." in out
    assert names(local) == [] and not model_path.exists()
    assert "no model named 'eurusd-mr'" in one_line_error(*invoke("load", "eurusd-mr"))


def test_json_output_parses(train: Callable[[], Operation], local: LocalTrainOps) -> None:
    task_id = train().operation_id
    saved = parsed(*invoke("save", task_id, "eurusd-mr", "--json"))
    assert saved["success"] is True and saved["task_id"] == task_id and saved["model_name"] == "eurusd-mr"
    assert {"model_id", "model_path", "saved_at", "model_size_mb"} <= set(saved)

    [listed] = parsed(*invoke("list", "--json"))
    assert listed["model_id"] == saved["model_id"]
    assert (listed["symbol"], listed["timeframe"], listed["strategy"]) == ("EURUSD", "1h", "mean_reversion")
    assert parsed(*invoke("list", "--timeframe", "4h", "--json")) == []
    assert parsed(*invoke("show", "eurusd-mr", "--json")) == listed

    loaded = parsed(*invoke("load", "eurusd-mr", "--json"))
    assert loaded["model_loaded"] is True and loaded["model_info"]["symbol"] == "EURUSD"

    single = parsed(*invoke("predict", "eurusd-mr", *PREDICT, "--date", "2018-01-15 10:00", "--json"))
    assert single["test_date"].startswith("2018-01-15T10:00:00")
    assert single["prediction"]["signal"] in ("buy", "hold", "sell")
    assert single["input_features"]
    series = parsed(*invoke("predict", "eurusd-mr", *PREDICT, "--start", "2018-01-10", "--end", "2018-01-12", "--json"))
    assert series["count"] == len(series["predictions"]) > 0
    assert sum(series["signal_counts"].values()) == series["count"]

    deleted = parsed(*invoke("delete", "eurusd-mr", "--yes", "--json"))
    assert deleted["model_name"] == "eurusd-mr"
    assert names(local) == []


# -- errors ----------------------------------------------------------------------------------------------------


def test_errors_are_one_line_messages(train: Callable[[], Operation], local: LocalTrainOps) -> None:
    task_id = train().operation_id
    invoke("save", task_id, "eurusd-mr")
    pending = create_training(local.service, load_strategy(STRATEGIES / "mean_reversion.yaml"), device="cpu")
    for args, says in (
        (["save", task_id, "../../etc"], f"model name '../../etc' is invalid: it must match {MODEL_NAME_PATTERN}"),
        (["show", "../../etc"], "is invalid: it must match"),
        (["load", ".."], "is invalid: it must match"),
        (["delete", "a/b", "--yes"], "is invalid: it must match"),
        (["save", task_id, "eurusd-mr"], "a model named 'eurusd-mr' already exists"),
        (["save", pending.operation_id, "too-early"], "is still pending"),
        (["save", "op_training_nope", "ghost"], "no operation 'op_training_nope'"),
        (["show", "ghost"], "no model named 'ghost'"),
        (["load", "ghost"], "no model named 'ghost'"),
        (["delete", "ghost", "--yes"], "no model named 'ghost'"),
        (["predict", "ghost", *PREDICT, "--date", "2018-01-15"], "no model named 'ghost'"),
        (["predict", "eurusd-mr", *PREDICT, "--date", "2017-04-19"], "before the first bar with complete features"),
        (["predict", "eurusd-mr", *PREDICT, "--date", "2018-03-01"], "is after the last bar of the data"),
        (["predict", "eurusd-mr", *PREDICT, "--start", "2018-01-01", "--end", "2019-01-01"], "after the last bar"),
        (["predict", "eurusd-mr", *PREDICT, "--start", "2018-01-12", "--end", "2018-01-10"], "is after --end"),
        (["predict", "eurusd-mr", *PREDICT], "give either --date (one bar) or --start and --end (a range)"),
        (["predict", "eurusd-mr", *PREDICT, "--start", "2018-01-12"], "a range needs both --start and --end"),
        (["predict", "eurusd-mr", "--symbol", "EURUSD", "--timeframe", "4h", "--date", "2018-01-15"], "on 1h bars"),
    ):
        message = one_line_error(*invoke(*args))
        assert says in message, (args, message)
        if "predictions are possible" in message:
            assert re.search(r"predictions are possible from 2017-04-2\dT\d\d:00:00 to 2018-02-07T15:00:00$", message)
    assert names(local) == ["eurusd-mr"]


def assert_speaks_options(message: str) -> None:
    """No JSON field, no JSON syntax, no pydantic link: what a user of the CLI cannot type."""
    for json_word in ('"', "send ", "_date", "task_id", "model_name", "errors.pydantic.dev"):
        assert json_word not in message, (json_word, message)


def test_errors_name_the_options_not_the_json_fields(train: Callable[[], Operation], local: LocalTrainOps) -> None:
    task_id = train().operation_id
    invoke("save", task_id, "eurusd-mr", "--description", "first")
    for args, says in (
        (
            ["save", task_id, "eurusd-mr"],
            "a model named 'eurusd-mr' already exists; choose another name or pass --overwrite",
        ),
        (["save", "op_" + "x" * 70, "m"], "TASK_ID: String should have at most 64 characters"),
        (["save", task_id, "m", "--description", "x" * 4001], "--description: String should have at most 4000"),
        (["predict", "eurusd-mr", "--symbol", "X" * 33, "--timeframe", "1h", "--date", "2018-01-15"], "--symbol: "),
        (["predict", "eurusd-mr", *PREDICT, "--start", "2018-01-12", "--end", "2018-01-10"], "--start 2018-01-12"),
    ):
        message = one_line_error(*invoke(*args))
        assert says in message, (args, message)
        assert_speaks_options(message)
    # and the option it names does what the message says
    code, _, err = invoke("save", task_id, "eurusd-mr", "--overwrite", "--description", "second")
    assert code == 0, err
    assert local.get_model("eurusd-mr").description == "second"


def test_an_unreadable_date_names_the_option_and_the_forms(train: Callable[[], Operation]) -> None:
    invoke("save", train().operation_id, "eurusd-mr")
    for args, option in (
        (["--date", "2018-13-45"], "--date"),
        (["--start", "2018-13-45", "--end", "2018-01-12"], "--start"),
        (["--start", "2018-01-10", "--end", "2018-13-45"], "--end"),
    ):
        # the request reads the dates, as the API reads them, and its message speaks of the option
        message = one_line_error(*invoke("predict", "eurusd-mr", *PREDICT, *args))
        assert f"{option}: '2018-13-45' is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM" in message, message
        assert_speaks_options(message)


def predicted_bars(*args: str) -> list[str]:
    """The bars ``trainops models predict eurusd-mr ... ARGS --json`` predicted, as ``YYYY-MM-DDTHH:MM``."""
    answer = parsed(*invoke("predict", "eurusd-mr", *PREDICT, *args, "--json"))
    stamps = [answer["test_date"]] if "test_date" in answer else [item["timestamp"] for item in answer["predictions"]]
    return [str(stamp)[:16] for stamp in stamps]


def test_a_time_is_an_instant_even_at_midnight_and_a_date_the_whole_day(
    train: Callable[[], Operation], settings: Settings
) -> None:
    """What the user typed decides, as the API reads the same string: ``2018-01-15T00:00`` is the midnight bar,
    ``2018-01-15`` that day's last bar (or, for a range, all its bars)."""
    invoke("save", train().operation_id, "eurusd-mr")
    whole_day = [f"2018-01-15T{hour:02d}:00" for hour in range(24)]
    with LiveServer(settings) as server:
        for where in ([], ["--url", server.url]):
            for args, bars in (
                (["--date", "2018-01-15T00:00"], ["2018-01-15T00:00"]),
                (["--date", "2018-01-15 00:00"], ["2018-01-15T00:00"]),
                (["--date", "2018-01-15T02:00+02:00"], ["2018-01-15T00:00"]),  # a zone, as the API reads it
                (["--date", "2018-01-15T14:00"], ["2018-01-15T14:00"]),
                (["--date", "2018-01-15"], ["2018-01-15T23:00"]),
                (["--start", "2018-01-15T00:00", "--end", "2018-01-15T00:00"], ["2018-01-15T00:00"]),
                (["--start", "2018-01-15T00:00", "--end", "2018-01-15T02:00"], whole_day[:3]),
                (["--start", "2018-01-15", "--end", "2018-01-15"], whole_day),
            ):
                assert predicted_bars(*args, *where) == bars, (args, where)


# -- what to do next -------------------------------------------------------------------------------------------


def test_the_save_hint_names_the_models_symbol_and_base_timeframe_and_runs(
    local: LocalTrainOps, settings: Settings
) -> None:
    """A model trained on 1h bars in the context of 4h and 1d ones predicts on its base timeframe, 1h."""
    config = apply_overrides(load_strategy(STRATEGIES / "multi_timeframe.yaml"), epochs=2)
    task_id = finished_training(local, settings, config).operation_id
    with LiveServer(settings) as server:
        for name, where in (("mtf", []), ("mtf-remote", ["--url", server.url])):
            code, out, err = invoke("save", task_id, name, *where)
            assert code == 0, err
            hint = out.splitlines()[-1]
            expected = f"Predict with: trainops models predict {name} --symbol EURUSD --timeframe 1h --date YYYY-MM-DD"
            assert hint == expected, where
            command = shlex.split(hint.removeprefix("Predict with: trainops models "))
            code, out, err = invoke(*[arg.replace("YYYY-MM-DD", "2018-01-15") for arg in command], *where)
            assert code == 0, err
            assert out.startswith(("buy", "hold", "sell")), out


def test_an_empty_list_says_whether_no_model_exists_or_none_matches(
    local: LocalTrainOps, train: Callable[[], Operation]
) -> None:
    task_id = train().operation_id
    for name in ("eurusd-mr", "eurusd-mr-copy"):
        invoke("save", task_id, name)
    for args, says in (
        (["--symbol", "NOPE"], "No models match --symbol NOPE. List them all with: trainops models list"),
        (
            ["--timeframe", "4h", "--strategy", "mean reversion"],
            "No models match --timeframe 4h --strategy 'mean reversion'.",
        ),
    ):
        code, out, err = invoke("list", *args)
        assert code == 0, err
        assert out.startswith(says) and "No models yet" not in out, (args, out)

    # a page after the cursor that has nothing left (its models deleted since the page before)
    code, out, _ = invoke("list", "--symbol", "EURUSD", "--limit", "1")
    [cursor] = re.findall(r"More: add --cursor (\S+)", out)
    invoke("delete", "eurusd-mr", "--yes")
    code, out, err = invoke("list", "--symbol", "EURUSD", "--limit", "1", "--cursor", cursor)
    assert code == 0, err
    assert out.strip() == f"No more models matching --symbol EURUSD after --cursor {cursor}.", out
    assert names(local) == ["eurusd-mr-copy"]


# -- against a server ------------------------------------------------------------------------------------------


def test_the_same_flow_against_a_server(train: Callable[[], Operation], settings: Settings) -> None:
    task_id = train().operation_id
    with LiveServer(settings) as server:
        url = ["--url", server.url]
        assert parsed(*invoke("save", task_id, "eurusd-mr", *url, "--json"))["task_id"] == task_id
        assert [model["model_name"] for model in parsed(*invoke("list", *url, "--json"))] == ["eurusd-mr"]
        assert parsed(*invoke("load", "eurusd-mr", *url, "--json"))["model_loaded"] is True
        code, out, _ = invoke("predict", "eurusd-mr", *PREDICT, "--date", "2018-01-15", *url)
        assert code == 0 and SIGNAL_LINE.match(out.splitlines()[0]), out
        message = one_line_error(*invoke("predict", "eurusd-mr", *PREDICT, "--date", "2018-03-01", *url))
        assert "is after the last bar of the data; predictions are possible from" in message
        message = one_line_error(*invoke("save", task_id, "../../etc", *url))
        assert f"it must match {MODEL_NAME_PATTERN}" in message
        message = one_line_error(*invoke("save", task_id, "eurusd-mr", *url))
        assert message.endswith("already exists; choose another name or pass --overwrite"), message
        assert_speaks_options(message)
        code, out, _ = invoke("delete", "eurusd-mr", *url, answer="n\n")
        assert code == 1 and parsed(*invoke("show", "eurusd-mr", *url, "--json"))["model_name"] == "eurusd-mr"
        assert invoke("delete", "eurusd-mr", "--yes", *url)[0] == 0
        assert "no model named 'eurusd-mr'" in one_line_error(*invoke("show", "eurusd-mr", *url))


def test_hostile_names_in_paths_state_the_rule_against_a_server(settings: Settings) -> None:
    with LiveServer(settings) as server:
        for command in ("show", "load"):
            message = one_line_error(*invoke(command, "../../etc", "--url", server.url))
            assert f"it must match {MODEL_NAME_PATTERN}" in message, (command, message)
