"""Choosing the executor: ``TRAINOPS_EXECUTOR`` and the settings the Ray executor needs, refused at start with what
to set (no Ray head needed: these fail before one is reached)."""

from __future__ import annotations

import socket
import time

import pytest
from typer.testing import CliRunner

from trainops.cli.main import app
from trainops.errors import ConfigurationError
from trainops.settings import Settings, get_settings

runner = CliRunner()


def serve_with(monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[int, str]:
    for name, value in env.items():
        monkeypatch.setenv(f"TRAINOPS_{name.upper()}", value)
    get_settings.cache_clear()
    result = runner.invoke(app, ["serve", "--port", "1"], env={"COLUMNS": "300"})
    get_settings.cache_clear()
    return result.exit_code, result.stderr


def test_serve_with_an_unreachable_ray_cluster_is_a_one_line_error(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, err = serve_with(
        monkeypatch, executor="ray", ray_address="http://127.0.0.1:9", public_url="http://127.0.0.1:8000"
    )

    assert code == 1
    assert err.startswith("Error: cannot reach the Ray cluster at http://127.0.0.1:9 (TRAINOPS_RAY_ADDRESS)")
    assert err.strip().count("\n") == 0
    assert ".. " not in err  # Ray's reason ends with its own period: "...at address: http://127.0.0.1:9."


def test_serve_with_ray_and_no_public_url_says_what_to_set(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    code, err = serve_with(monkeypatch, executor="ray", ray_address="http://127.0.0.1:9")

    assert code == 1
    assert "TRAINOPS_EXECUTOR=ray needs TRAINOPS_PUBLIC_URL" in err


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TRAINOPS_EXECUTOR", "kubernetes", "TRAINOPS_EXECUTOR: Input should be 'local' or 'ray'"),
        ("TRAINOPS_PUBLIC_URL", "10.0.0.5:8000", "'10.0.0.5:8000' is not an http(s) URL"),
        ("TRAINOPS_RAY_RUNTIME_ENV", "pip: [trainops]", "TRAINOPS_RAY_RUNTIME_ENV: not valid JSON"),
        ("TRAINOPS_RAY_RUNTIME_ENV", '["pip"]', "TRAINOPS_RAY_RUNTIME_ENV: Input should be a valid dictionary"),
        # had passed the start, then answered every training start with a 500
        (
            "TRAINOPS_RAY_RUNTIME_ENV",
            '{"env_vars": ["A=1"]}',
            "TRAINOPS_RAY_RUNTIME_ENV: env_vars must be an object of names to values, e.g. ",
        ),
        ("TRAINOPS_CANCEL_GRACE", "-1", "TRAINOPS_CANCEL_GRACE: Input should be greater than or equal to 0"),
    ],
)
def test_executor_settings_that_cannot_work_are_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_a_ray_address_that_never_answers_is_refused_in_bounded_time(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainops.executors import ray
    from trainops.service.bootstrap import open_service

    monkeypatch.setattr(ray, "REQUEST_SECONDS", 0.5)
    with socket.socket() as silent:  # accepts connections (the backlog does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"http://127.0.0.1:{silent.getsockname()[1]}"
        service = open_service(settings)
        started = time.monotonic()
        try:
            with pytest.raises(ConfigurationError, match=f"cannot reach the Ray cluster at {address}"):
                ray.RayExecutor(
                    service, settings.model_copy(update={"ray_address": address, "public_url": "http://x:1"})
                )
        finally:
            service.store.engine.dispose()
    assert time.monotonic() - started < 10
