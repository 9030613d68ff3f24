"""``core/redaction.py``: which names are secrets, and what a config keeps of them."""

from __future__ import annotations

import pytest

from trainops.core.redaction import REDACTED, is_secret_name, redacted, url_without_secrets


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "db_password",
        "DB_PASSWD",
        "passphrase",
        "client_secret",
        "clientSecret",
        "AWS_SECRET_ACCESS_KEY",
        "token",
        "hub_token",
        "hf_token",
        "accessToken",
        "auth_token",
        "api_key",
        "apiKey",
        "wandb_api_key",
        "private_key",
        "credentials",
        "X-Amz-Signature",
        "authorization",
    ],
)
def test_names_of_secrets(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "max_tokens",
        "max_new_tokens",
        "pad_token",
        "pad_token_id",
        "eos_token",
        "bos_token_id",
        "tokenizer",
        "tokenizer_name",
        "num_tokens",
        "key",  # a dictionary's, a sort's
        "sort_key",
        "monitor",
        "learning_rate",
        "passes",
        "secretary_count",  # a word that starts like one is not one
    ],
)
def test_names_of_hyperparameters_that_look_like_secrets(name: str) -> None:
    assert not is_secret_name(name)


def test_a_config_keeps_everything_but_its_secrets_values() -> None:
    config = {
        "lr": 0.01,
        "db": {"host": "db.internal", "password": "pw-1"},
        "callbacks": [{"name": "wandb", "api_key": "wk-2"}],
        "hub_token": None,  # nothing to hide: kept as it is
        "pad_token_id": 0,
        "tracking_uri": "https://user:pw-3@mlflow.example.com:5000/path?token=tk-4&experiment=7",
    }

    kept = redacted(config)

    assert kept == {
        "lr": 0.01,
        "db": {"host": "db.internal", "password": REDACTED},
        "callbacks": [{"name": "wandb", "api_key": REDACTED}],
        "hub_token": None,
        "pad_token_id": 0,
        "tracking_uri": "https://mlflow.example.com:5000/path?token=%3Credacted%3E&experiment=7",
    }
    assert config["db"] == {"host": "db.internal", "password": "pw-1"}  # the caller's config is not changed
    assert not any(secret in repr(kept) for secret in ("pw-1", "wk-2", "pw-3", "tk-4"))


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("file:///tmp/mlruns", "file:///tmp/mlruns"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("sqlite:////tmp/mlflow.db?token=t", "sqlite:////tmp/mlflow.db?token=%3Credacted%3E"),
        ("databricks", "databricks"),
        ("postgresql+psycopg://trainops:pw@db/trainops", "postgresql+psycopg://db/trainops"),
        ("http://[::1]:5000/?sig=1", "http://[::1]:5000/?sig=1"),
        (
            "s3://bucket/key?X-Amz-Signature=abc&X-Amz-Date=1",
            "s3://bucket/key?X-Amz-Signature=%3Credacted%3E&X-Amz-Date=1",
        ),
        ("http://host:99999/", "http://host:99999/"),  # not a URL after all: left as it is
    ],
)
def test_urls_lose_their_credentials_and_secret_parameters(url: str, kept: str) -> None:
    assert url_without_secrets(url) == kept
