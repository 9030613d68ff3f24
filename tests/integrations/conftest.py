"""The frameworks' settings for every test here, set before any of them is imported: Keras on the torch backend
(TensorFlow is not installed), Hugging Face offline (tiny models are built from a config, nothing is downloaded),
and no tokenizer threads."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.live_server import LiveServer
from trainops.client import HttpTrainOps, LocalTrainOps, TrainOps
from trainops.service.bootstrap import open_service
from trainops.settings import Settings

os.environ["KERAS_BACKEND"] = "torch"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


@pytest.fixture
def local_ops(settings: Settings) -> Iterator[TrainOps]:
    """The in-process facade on the test database (SQLite and PostgreSQL, through ``database_url``)."""
    client = LocalTrainOps(open_service(settings))
    yield client
    client.close()


@pytest.fixture
def http_ops(settings: Settings) -> Iterator[TrainOps]:
    """The HTTP facade against a live server on the test database."""
    with LiveServer(settings) as server, HttpTrainOps(server.url, retries=0) as client:
        yield client


@pytest.fixture
def server_ops(live_server: LiveServer) -> Iterator[TrainOps]:
    """The API of ``live_server`` (which a training in a process of its own reports to), as the test (a person,
    an agent) reaches it."""
    with HttpTrainOps(live_server.url, retries=0) as client:
        yield client
