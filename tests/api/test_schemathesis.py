"""Schemathesis against a real server: every check, on every operation of the OpenAPI document.

The server runs on SQLite with a token (so the 401s are checked too) and no market data (so that no training
starts: POST /training/start answers 422 quickly); the exceptions, each with its reason, are in
``schemathesis.toml`` beside this file. Bounded in examples per operation and in time: about three minutes.

Part of ``make test``, on a fixed seed (``SCHEMATHESIS_SEED`` changes it; ``random`` draws one); alone:
``.venv/bin/pytest -m schemathesis tests/api/test_schemathesis.py``. Each gap it
found between the document and the server is pinned by a test of its own (``test_document_truth_api.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live_server import LiveServer
from trainops.settings import Settings

pytestmark = [pytest.mark.schemathesis, pytest.mark.timeout(400)]

TOKEN = "schemathesis-token-0123456789abcdef"
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261207")
"""The run's seed: fixed, so that a failure in CI comes back on the same cases; ``SCHEMATHESIS_SEED=random``
explores cases no run has tried (Schemathesis prints the seed it drew, to replay one that fails)."""


def test_the_api_keeps_its_openapi_contract(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'trainops.db'}",
        api_token=TOKEN,
        max_concurrent_jobs=1,
    )
    st = Path(sys.executable).with_name("st")
    with LiveServer(settings) as server:
        run = subprocess.run(
            [  # every check runs: Schemathesis 4's default (the exceptions are in the config file)
                str(st),
                "--config-file",
                str(CONFIG),
                "run",
                f"{server.url}/api/v1/openapi.json",
                # stateful testing follows OpenAPI links, which the document does not declare
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "10",
                "--max-time",
                "150",
                # one worker: Hypothesis reads its filters' source with ast.parse, which on Python 3.11.7 can fail
                # with "SystemError: AST constructor recursion depth mismatch" when two threads parse at once
                # (CPython gh-106905), a Runtime Error of the run and not of the API
                "--workers",
                "1",
                "--request-timeout",
                "20",
                "--generation-database",
                "none",
                "--no-color",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--report-dir",
                str(tmp_path / "report"),
                *([] if SEED == "random" else ["--seed", SEED]),
            ],
            capture_output=True,
            text=True,
            timeout=360,
            env={**os.environ, "NO_COLOR": "1"},
            cwd=tmp_path,  # st keeps a cache folder (.schemathesis) in its working directory
        )
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-4000:]
