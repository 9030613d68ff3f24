"""The pure helpers behind the API's protocol rules: ``If-None-Match`` matching, JSON media types, and server paths
kept out of error answers (table-tested; their docstring examples run too)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from trainops.api.deps import is_json_media_type
from trainops.api.etags import if_none_match_matches
from trainops.api.server_paths import ServerPaths
from trainops.settings import Settings


@pytest.mark.parametrize("name", ["trainops.api.etags", "trainops.api.hosts", "trainops.api.server_paths"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize(
    ("header", "etag", "matches"),
    [
        ('"abc"', '"abc"', True),
        ('W/"abc"', '"abc"', True),
        ('"abc"', 'W/"abc"', True),
        ('"x", W/"abc"', '"abc"', True),
        ('"x",W/"abc"', '"abc"', True),
        ("*", '"abc"', True),
        (" * ", '"abc"', True),
        ('"x", "y"', '"abc"', False),
        ('"abcd"', '"abc"', False),
        ("abc", '"abc"', False),  # unquoted: not an entity tag
        ('w/"abc"', '"abc"', False),  # the weakness prefix is case-sensitive
        ('"a,b", "abc"', '"abc"', True),  # a comma inside a quoted tag is part of it (RFC 9110 etagc), no separator
        ('"a,b"', '"b"', False),
        ('garbage "abc"', '"abc"', False),
        ("", '"abc"', False),
        (None, '"abc"', False),
    ],
)
def test_if_none_match_compares_weakly(header: str | None, etag: str, matches: bool) -> None:
    assert if_none_match_matches(header, etag) is matches


@pytest.mark.parametrize(
    ("content_type", "json"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("APPLICATION/JSON", True),
        ("application/merge-patch+json", True),
        ("application/vnd.api+json; charset=utf-8", True),
        ("text/plain", False),
        ("text/json", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
        ("application/jsonp", False),
        ("", False),
    ],
)
def test_json_media_types(content_type: str, json: bool) -> None:
    assert is_json_media_type(content_type) is json


def test_server_paths_name_files_in_their_folders(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, data_dir=tmp_path / "market", strategies_dir=tmp_path / "strategies")
    paths = ServerPaths.of(settings)
    data = settings.resolved_data_dir

    assert paths.redact(f"no market data for GBPUSD_1h in {data}; available: EURUSD_1h") == (
        "no market data for GBPUSD_1h in the data folder (TRAINOPS_DATA_DIR); available: EURUSD_1h"
    )
    assert paths.redact(f"cannot read {data}/sub/EURUSD_1h.csv: no bars") == (
        "cannot read sub/EURUSD_1h.csv in the data folder (TRAINOPS_DATA_DIR): no bars"
    )
    assert paths.redact(f"model version {home}/models/m/v1 does not exist") == (
        "model version m/v1 in the models folder (TRAINOPS_MODELS_DIR) does not exist"
    )
    assert paths.redact(f"strategy file '{tmp_path}/strategies/x.yaml' does not exist") == (
        "strategy file 'x.yaml in the strategies folder (TRAINOPS_STRATEGIES_DIR)' does not exist"
    )
    assert paths.redact(f"{home}/cache is full") == "cache in the trainops home folder (TRAINOPS_HOME) is full"
    # a sibling that starts alike is no file of the folder
    assert paths.redact(f"{tmp_path}/market2/x.csv") == f"{tmp_path}/market2/x.csv"
    assert paths.redact_details({"path": f"{data}/a.csv", "paths": [str(data)], "rows": 3}) == {
        "path": "a.csv in the data folder (TRAINOPS_DATA_DIR)",
        "paths": ["the data folder (TRAINOPS_DATA_DIR)"],
        "rows": 3,
    }
