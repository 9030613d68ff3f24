"""``trainops data``: the sample data and the listing, as a user sees them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainops.cli.main import app
from trainops.settings import get_settings

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["data", *args], catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TRAINOPS_HOME in a temporary directory, so the default data directory is ``home/data``."""
    monkeypatch.setenv("TRAINOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRAINOPS_DATA_DIR", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def test_sample_then_list(home: Path) -> None:
    code, out, _ = invoke("sample")
    assert code == 0
    assert f"Wrote 5 sample files to {home / 'data'}" in out
    assert "Train on it with: trainops train STRATEGY.yaml" in out
    assert (home / "data" / "EURUSD_1h.csv").is_file()

    code, out, _ = invoke("list")
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert [
        "EURUSD",
        "1h",
        "5000",
        "2017-04-19",
        "09:00",
        "2018-02-07",
        "15:00",
        str(home / "data" / "EURUSD_1h.csv"),
    ] in rows
    assert any(row[:3] == ["GOOG", "1d", "2148"] for row in rows)


def test_json_output_parses(tmp_path: Path) -> None:
    directory = tmp_path / "market"
    code, out, _ = invoke("sample", "--data-dir", str(directory), "--json")
    assert code == 0
    written = json.loads(out)
    assert [(f["symbol"], f["timeframe"]) for f in written] == [
        ("EURUSD", "1h"),
        ("EURUSD", "4h"),
        ("EURUSD", "1d"),
        ("GOOG", "1d"),
        ("GOOG", "1w"),
    ]

    listed = json.loads(invoke("list", "--data-dir", str(directory), "--json")[1])
    assert listed == written
    assert listed[0] == {
        "symbol": "EURUSD",
        "timeframe": "1h",
        "path": str(directory / "EURUSD_1h.csv"),
        "format": "csv",
        "bars": 5000,
        "start": "2017-04-19T09:00:00",
        "end": "2018-02-07T15:00:00",
        "problem": None,
    }


def test_explicit_data_dir_hints_how_training_finds_it(tmp_path: Path) -> None:
    code, out, _ = invoke("sample", "--data-dir", str(tmp_path))
    assert code == 0 and f"Train on it with: TRAINOPS_DATA_DIR={tmp_path} trainops train STRATEGY.yaml" in out


def test_empty_directory_says_to_write_the_sample(home: Path, tmp_path: Path) -> None:
    code, out, _ = invoke("list")
    assert code == 0
    assert f"No data files in {home / 'data'}" in out and "trainops data sample" in out

    assert json.loads(invoke("list", "--data-dir", str(tmp_path), "--json")[1]) == []
    code, out, _ = invoke("list", "--data-dir", str(tmp_path))
    assert f"trainops data sample --data-dir {tmp_path}" in out


@pytest.mark.parametrize("command", ["list", "sample"])
def test_bad_data_dir_is_a_one_line_error(tmp_path: Path, command: str) -> None:
    not_a_dir = tmp_path / "prices.csv"
    not_a_dir.write_text("x")

    code, out, err = invoke(command, "--data-dir", str(not_a_dir))

    assert code == 1
    assert err.startswith(f"Error: data directory {not_a_dir} is a file, not a directory")
    assert "Traceback" not in out + err


def test_an_unreadable_file_is_listed_with_its_problem_beside_the_others(tmp_path: Path) -> None:
    (tmp_path / "X_1h.csv").write_text("open,high,low,close,volume\n1,2,0.5,1,1\n")
    (tmp_path / "Y_1h.csv").write_text("timestamp,open,high,low,close,volume\n2020-01-01,1,2,0.5,1,1\n")

    code, out, err = invoke("list", "--data-dir", str(tmp_path))

    assert code == 0 and "Traceback" not in out + err
    rows = [line.split() for line in out.splitlines()]
    assert ["X", "1h", "unreadable", "-", "-", str(tmp_path / "X_1h.csv")] in rows
    assert any(row[:3] == ["Y", "1h", "1"] for row in rows)
    assert err.startswith("Error: X_1h.csv cannot be used: ") and "has no timestamp column" in err
    listed = json.loads(invoke("list", "--data-dir", str(tmp_path), "--json")[1])
    assert [item["bars"] for item in listed] == [0, 1] and "has no timestamp column" in listed[0]["problem"]


def test_sample_refuses_to_replace_a_users_file_unless_forced(tmp_path: Path) -> None:
    mine = tmp_path / "EURUSD_1h.csv"
    mine.write_text("timestamp,open,high,low,close,volume\n2020-01-01,1,1,1,1,1\n")

    code, out, err = invoke("sample", "--data-dir", str(tmp_path))

    assert code == 1 and "Traceback" not in out + err
    assert err.startswith(f"Error: EURUSD_1h.csv in {tmp_path} already hold(s) other data")
    assert "--force" in err and mine.read_text().startswith("timestamp,open")
    assert [p.name for p in tmp_path.iterdir()] == ["EURUSD_1h.csv"]

    code, out, _ = invoke("sample", "--data-dir", str(tmp_path), "--force")

    assert code == 0 and f"Wrote 5 sample files to {tmp_path}" in out
    assert len(mine.read_text().splitlines()) == 5001
