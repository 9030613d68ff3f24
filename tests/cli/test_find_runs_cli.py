"""Runs people can find again from the terminal: ``trainops train --name/--tag``, ``trainops ops rename`` and
``trainops ops tag``, and ``trainops ops list`` with its filters, sorts, cursor and columns (in 120 columns), on the
local database and against a live server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import trainops
from tests.live_server import LiveServer
from trainops.cli.main import app
from trainops.core import EpochRecord, OperationStatus
from trainops.settings import Settings

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def invoke(*args: str, columns: int = 120) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": str(columns)})
    return result.exit_code, result.stdout, result.stderr


def listed_json(*args: str) -> dict[str, Any]:
    code, out, err = invoke("ops", "list", "--json", *args)
    assert code == 0, err
    page: dict[str, Any] = json.loads(out)
    return page


def seed(settings: Settings) -> dict[str, str]:
    """Three finished runs and a pending one, by role."""
    runs: dict[str, str] = {}
    with trainops.connect(settings=settings) as ops:
        specs = {
            "best": ([0.9, 0.25], {"strategy": "mean_reversion"}, ["baseline", "cifar"]),
            "worse": ([0.8, 0.5], {"strategy": "momentum", "symbol": "EURUSD"}, ["cifar"]),
            "detector": ([0.7], {"task": "object_detection"}, []),
        }
        for role, (losses, metadata, tags) in specs.items():
            operation = ops.create_operation(
                name=f"{role} run with a rather long descriptive name",
                tags=tags,
                metadata=metadata,
                total_epochs=10,
            )
            ops.add_epochs(
                operation.operation_id,
                [
                    EpochRecord(epoch=epoch, val_loss=loss, metrics={"mAP50": 1 - loss})
                    for epoch, loss in enumerate(losses)
                ],
            )
            ops.finish_operation(operation.operation_id)
            runs[role] = operation.operation_id
        runs["pending"] = ops.create_operation(name="pending").operation_id
    return runs


def test_list_shows_name_strategy_best_epochs_and_duration_in_120_columns(settings: Settings) -> None:
    runs = seed(settings)
    code, out, err = invoke("ops", "list")
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 120, out
    header = next(line for line in lines if line.startswith("id "))
    assert header.split() == ["id", "name", "status", "strategy/task", "best", "epochs", "took", "created"]
    rows = {line.split()[0]: line for line in lines if line.startswith("op_")}
    assert set(rows) == set(runs.values())  # every id whole
    assert "0.2500 val_loss" in rows[runs["best"]] and " mean_reversion " in rows[runs["best"]]
    assert "2/10" in rows[runs["best"]] and " best run with a… " in rows[runs["best"]]  # the longer text is cut
    assert "30.0% mAP50" in rows[runs["detector"]] and " object_detection " in rows[runs["detector"]]  # a percent
    assert " - " in rows[runs["pending"]] and "pending" in rows[runs["pending"]]


@pytest.mark.parametrize("columns", [200, 100])
def test_list_shows_names_and_strategies_whole_where_they_fit(settings: Settings, columns: int) -> None:
    """The strategy column was cut to 13 characters (``mean_reversi…``) whatever the terminal's width."""
    with trainops.connect(settings=settings) as ops:
        run = ops.create_operation(
            name="a run with a rather long descriptive name", metadata={"strategy": "mean_reversion_with_volume"}
        ).operation_id
    code, out, err = invoke("ops", "list", columns=columns)
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= columns, out
    [row] = [line for line in lines if line.startswith(run)]  # the id whole
    if columns == 200:
        assert " a run with a rather long descriptive name " in row and " mean_reversion_with_volume " in row
    else:  # room for neither: both cut to the same width
        assert " a run with … pending mean_revers… " in row, row


def test_list_filters_sorts_and_pages(settings: Settings) -> None:
    runs = seed(settings)

    def ids(*args: str) -> list[str]:
        return [item["operation_id"] for item in listed_json(*args)["items"]]

    assert ids("--tag", "cifar") == [runs["worse"], runs["best"]]
    assert ids("--tag", "cifar", "--tag", "baseline") == [runs["best"]]
    assert ids("--strategy", "momentum") == [runs["worse"]]
    assert ids("--symbol", "EURUSD", "--status", "completed") == [runs["worse"]]
    assert ids("-q", "DETECTOR") == [runs["detector"]]
    assert ids("--name", "PENDING") == [runs["pending"]]
    assert ids("--since", "1d", "--type", "training") == [
        runs["pending"],
        runs["detector"],
        runs["worse"],
        runs["best"],
    ]
    assert ids("--until", "2020-01-01") == []
    assert ids("--sort", "best:val_loss") == [runs["best"], runs["worse"], runs["detector"], runs["pending"]]
    assert ids("--sort", "best:val_loss", "--order", "desc")[:3] == [runs["detector"], runs["worse"], runs["best"]]
    assert ids("--sort", "best:mAP50") == [runs["best"], runs["worse"], runs["detector"], runs["pending"]]

    page = listed_json("--limit", "2", "--sort", "best:val_loss")
    assert {"name", "tags", "notes", "best"} <= page["items"][0].keys() and page["next_cursor"]
    assert page["items"][0]["best"]["metric"] == "val_loss"
    rest = listed_json("--limit", "2", "--sort", "best:val_loss", "--cursor", page["next_cursor"])
    assert [item["operation_id"] for item in rest["items"]] == [runs["detector"], runs["pending"]]
    assert rest["next_cursor"] is None
    code, out, _ = invoke("ops", "list", "--limit", "1")
    assert code == 0 and "More: add --cursor " in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sort", "newest"), "sort 'newest' is not one trainops knows"),
        (("--since", "last week"), "--since 'last week' is not a time"),
        (("--tag", "no spaces"), "tag 'no spaces' is invalid"),
        (("--cursor", "bogus"), "cursor is not one this list handed out"),
    ],
)
def test_list_refuses_bad_filters_with_one_line(settings: Settings, args: tuple[str, ...], message: str) -> None:
    code, out, err = invoke("ops", "list", *args)
    assert code == 1 and message in err and "Traceback" not in err + out


def test_rename_and_tag_locally_and_against_a_server(settings: Settings) -> None:
    runs = seed(settings)
    operation_id = runs["worse"]
    code, out, err = invoke("ops", "rename", operation_id, "lr sweep #2")
    assert code == 0, err
    assert f"{operation_id} is named 'lr sweep #2'" in out
    code, out, err = invoke("ops", "tag", operation_id, "keep", "lr=3e-4", "--remove", "cifar")
    assert code == 0, err
    assert f"{operation_id} tags: keep, lr=3e-4" in out

    with LiveServer(settings) as server:
        code, out, err = invoke("ops", "tag", operation_id, "remote", "--url", server.url)
        assert code == 0, err
        assert "tags: keep, lr=3e-4, remote" in out
        code, out, err = invoke("ops", "rename", operation_id, "", "--url", server.url, "--json")
        assert code == 0, err
        assert json.loads(out)["name"] is None
        code, out, err = invoke("ops", "list", "--tag", "remote", "--json", "--url", server.url)
        assert [item["operation_id"] for item in json.loads(out)["items"]] == [operation_id]
        code, _, err = invoke("ops", "tag", operation_id, "bad tag", "--url", server.url)
        assert code == 1 and "tag 'bad tag' is invalid" in err

    code, _, err = invoke("ops", "tag", operation_id)
    assert code == 1 and "name the tags to add" in err
    code, _, err = invoke("ops", "rename", operation_id, "line\nbreak")
    assert code == 1 and "control character" in err
    with trainops.connect(settings=settings) as ops:
        operation = ops.get_operation(operation_id)
    assert (operation.name, operation.tags, operation.status) == (
        None,
        ["keep", "lr=3e-4", "remote"],
        OperationStatus.COMPLETED,
    )


def test_train_names_and_tags_the_run(training_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    code, _, err = invoke(
        "train",
        "strategies/mean_reversion.yaml",
        "--epochs",
        "1",
        "--name",
        "mr quick",
        "--tag",
        "smoke",
        "--tag",
        "cli",
        "--notes",
        "from the test",
        columns=300,
    )
    assert code == 0, err
    [item] = listed_json("--tag", "smoke")["items"]
    assert (item["name"], item["tags"], item["notes"], item["status"]) == (
        "mr quick",
        ["smoke", "cli"],
        "from the test",
        "completed",
    )
    code, _, err = invoke("train", "strategies/mean_reversion.yaml", "--tag", "bad tag")
    assert code == 1 and "--tag" in err and "invalid" in err


def test_text_a_user_wrote_prints_as_written_even_where_it_reads_as_markup(settings: Settings) -> None:
    """Rich reads "[/x]" as a closing tag: printed as markup, it failed the command that showed it (every time)."""
    with trainops.connect(settings=settings) as ops:
        operation_id = ops.create_operation(metadata={"strategy": "[/s] [bold]"}).operation_id
    hostile = "[/x] [red]lr[/red]"

    renamed = invoke("ops", "rename", operation_id, hostile)
    cancelled = invoke("ops", "cancel", operation_id, "--reason", hostile)
    shown = invoke("ops", "show", operation_id, columns=200)
    listed = invoke("ops", "list", columns=200)

    for code, _out, err in (renamed, cancelled, shown, listed):
        assert code == 0, err
    assert hostile in renamed[1]
    assert f": {hostile}" in shown[1] and "strategy=[/s] [bold]" in shown[1]
    assert "[/x] [red]" in listed[1]


def test_a_list_that_filters_every_run_out_says_so(settings: Settings) -> None:
    seed(settings)

    code, out, err = invoke("ops", "list", "--tag", "nowhere")

    assert code == 0, err
    assert "No run matches; `trainops ops list` alone lists every run." in out and "Nothing yet" not in out
