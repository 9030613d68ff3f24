"""Settings: one pydantic-settings class read from ``TRAINOPS_*`` variables, reached through ``get_settings()``."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from trainops.errors import ConfigurationError

DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024
"""Largest request body the API accepts (8 MiB): about 40,000 epoch records in one batch."""

DEFAULT_MAX_ARTIFACT_BYTES = 512 * 1024 * 1024
"""Largest artifact file trainops stores (512 MiB): a checkpoint of a model of about 130 M float32 parameters."""


class Settings(BaseSettings):
    """trainops configuration. Every field reads ``TRAINOPS_<NAME>`` from the environment.

    Args:
        home: Where trainops keeps its SQLite database and artifacts (``TRAINOPS_HOME``, default ``~/.trainops``).
        database_url: SQLAlchemy URL of the store (``TRAINOPS_DATABASE_URL``); SQLite under ``home`` by default,
            ``postgresql+psycopg://user@host/db`` in production.
        url: A trainops server to talk to (``TRAINOPS_URL``); unset means in-process on the local database.
        api_token: Bearer token the server requires and the client sends (``TRAINOPS_API_TOKEN``).
        max_request_bytes: Request bodies above this get HTTP 413.
        data_dir: Market data files ``{SYMBOL}_{TIMEFRAME}.csv|.parquet`` (``TRAINOPS_DATA_DIR``, default
            ``home/data``).
        models_dir: The model registry's files (``TRAINOPS_MODELS_DIR``, default ``home/models``).
        artifacts_dir: Files logged to operations (``TRAINOPS_ARTIFACTS_DIR``, default ``home/artifacts``), one
            directory per operation.
        max_artifact_bytes: Artifact files above this get HTTP 413 (``TRAINOPS_MAX_ARTIFACT_BYTES``); the upload
            route streams to disk, so this limit, not ``max_request_bytes``, bounds it.
        strategies_dir: Strategy YAML files found by name (``TRAINOPS_STRATEGIES_DIR``; default ``./strategies``
            when the working directory has one, else ``home/strategies``).
        max_concurrent_jobs: Training jobs the server runs at once; more wait in a queue, pending.
        progress_interval: Seconds between stored progress updates of one operation (phase changes and epoch ends
            are always stored).
        max_step_points: The most points of the per-step (batch) series one run keeps (``TRAINOPS_MAX_STEP_POINTS``);
            a longer run keeps its whole span at an even spacing, its newest points and its latest step.
        history_cache_epochs: The most epochs of metric history the server keeps in memory over all runs
            (``TRAINOPS_HISTORY_CACHE_EPOCHS``, default 100,000, about 250-400 MiB): live runs are polled from
            memory; past the budget the least recently read runs are dropped and read from the database again when
            asked for.
        executor: Where the server runs trainings (``TRAINOPS_EXECUTOR``): ``local`` (worker processes of this
            machine, the default) or ``ray`` (Ray jobs on the cluster at ``ray_address``; needs ``trainops[ray]``).
        ray_address: The Ray cluster's job-submission (dashboard) address (``TRAINOPS_RAY_ADDRESS``), e.g.
            ``http://127.0.0.1:8265``; needed with ``executor=ray``.
        ray_runtime_env: The Ray ``runtime_env`` of every training job (``TRAINOPS_RAY_RUNTIME_ENV``, JSON), e.g.
            ``{"pip": ["trainops[train]"]}`` or ``{"env_vars": {"TRAINOPS_DATA_DIR": "/shared/data"}}``; trainops
            adds ``TRAINOPS_URL`` and ``TRAINOPS_API_TOKEN`` to its ``env_vars``.
        public_url: The URL at which workers on other machines (Ray nodes) reach this server
            (``TRAINOPS_PUBLIC_URL``, e.g. ``http://10.0.0.5:8000``): the address a server binds (``0.0.0.0``) is
            not one a node can dial. Needed with ``executor=ray``.
        allowed_hosts: Extra names the server answers for in the ``Host`` header (``TRAINOPS_ALLOWED_HOSTS``,
            comma-separated: ``trainops.example.com,*.internal.example.com``; ``*`` for any). ``trainops serve``
            answers only for the address it binds (``localhost``, ``127.0.0.1`` and ``[::1]`` on loopback; any name
            on ``0.0.0.0`` unless this is set) and the host of ``public_url``: a guard against DNS rebinding. Set
            it behind a proxy that forwards the public name.
        cancel_grace: Seconds a cancelled training gets to stop at its next batch before its executor stops it
            (Ray's ``stop_job``, or the local worker's process group terminated) and marks it cancelled.
        reaper_interval: Seconds between the server's sweeps for trainings whose worker or job died (and for
            cancels past their grace period); ``0`` turns the sweeps off.
        events_poll_interval: Seconds between an open events stream's looks for changes
            (``TRAINOPS_EVENTS_POLL_INTERVAL``, default 0.25; one indexed single-row read each): the latency of a
            new epoch on a dashboard, against the database reads of every open stream. The in-process
            ``TrainOps.events`` waits as long between its looks.
        events_keepalive: Seconds an events stream may stay silent before it sends a keep-alive comment
            (``TRAINOPS_EVENTS_KEEPALIVE``, default 15): keep it below the idle timeout of any proxy or load
            balancer in front of the server (commonly 30-60 s).
    """

    model_config = SettingsConfigDict(env_prefix="TRAINOPS_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".trainops")
    database_url: str | None = None
    url: str | None = None
    data_dir: Path | None = None
    models_dir: Path | None = None
    artifacts_dir: Path | None = None
    strategies_dir: Path | None = None
    max_concurrent_jobs: int = Field(1, ge=1, le=64)
    api_token: str | None = None
    max_request_bytes: int = Field(DEFAULT_MAX_REQUEST_BYTES, ge=1024)
    max_artifact_bytes: int = Field(DEFAULT_MAX_ARTIFACT_BYTES, ge=1)
    progress_interval: float = Field(0.5, ge=0.0)
    max_step_points: int = Field(1000, ge=2)
    history_cache_epochs: int = Field(100_000, ge=0)
    auto_migrate: bool = True
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    ray_runtime_env: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)
    public_url: str | None = None
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cancel_grace: float = Field(30.0, ge=0.0)
    reaper_interval: float = Field(10.0, ge=0.0)
    events_poll_interval: float = Field(0.25, gt=0.0, le=60.0)
    events_keepalive: float = Field(15.0, gt=0.0, le=3600.0)

    @field_validator("api_token")
    @classmethod
    def _token_strength(cls, token: str | None) -> str | None:
        if token is not None:
            token = token.strip()  # read from a file or a secret, with its line's end
            if not (token.isascii() and token.isprintable()):
                raise ValueError(
                    "TRAINOPS_API_TOKEN holds a character an HTTP header cannot carry (beyond ASCII, or a control "
                    "character); generate one with `openssl rand -hex 32`"
                )
        if token is not None and len(token) < 16:
            raise ValueError(
                "TRAINOPS_API_TOKEN must be at least 16 characters; generate one with `openssl rand -hex 32`"
            )
        return token or None

    @field_validator("database_url", "url", "ray_address", "public_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("ray_runtime_env", mode="before")
    @classmethod
    def _runtime_env_json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as error:
            raise ValueError(
                f'not valid JSON ({error}); write a JSON object, e.g. \'{{"pip": ["trainops[train]"]}}\''
            ) from None

    @field_validator("ray_runtime_env")
    @classmethod
    def _env_vars_mapping(cls, value: dict[str, Any]) -> dict[str, Any]:
        """``env_vars`` is a mapping of names to text, as Ray takes it (trainops adds its own to it)."""
        env_vars = value.get("env_vars")
        if env_vars is not None and not (
            isinstance(env_vars, dict) and all(isinstance(item, str | int | float) for item in env_vars.values())
        ):
            raise ValueError(
                f'env_vars must be an object of names to values, e.g. {{"env_vars": {{"OMP_NUM_THREADS": "1"}}}}, '
                f"got {json.dumps(env_vars)[:200]}"
            )
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [entry.strip() for entry in value.split(",") if entry.strip()]
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if "/" in host or any(character.isspace() for character in host):
                raise ValueError(
                    f"{host!r} is not a host name: list names (with an optional port), comma-separated, e.g. "
                    "trainops.example.com,10.0.0.5 (no scheme or path)"
                )
        return hosts

    @field_validator("public_url", "ray_address")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL; write it in full, e.g. http://10.0.0.5:8000")
        return value.rstrip("/") if value else value

    @property
    def resolved_data_dir(self) -> Path:
        return (self.data_dir or self.home / "data").expanduser()

    @property
    def resolved_models_dir(self) -> Path:
        return (self.models_dir or self.home / "models").expanduser()

    @property
    def resolved_artifacts_dir(self) -> Path:
        return (self.artifacts_dir or self.home / "artifacts").expanduser()

    @property
    def resolved_strategies_dir(self) -> Path:
        if self.strategies_dir is not None:
            return self.strategies_dir.expanduser()
        local = Path.cwd() / "strategies"
        return local if local.is_dir() else self.home.expanduser() / "strategies"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home.expanduser() / 'trainops.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once; tests call ``get_settings.cache_clear()`` after changing the env.

    Raises:
        ConfigurationError: a ``TRAINOPS_*`` variable holds a value that cannot work, named in the message.
    """
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"TRAINOPS_{'_'.join(str(part) for part in item['loc']).upper()}: "
            + item["msg"].removeprefix("Value error, ")
            for item in error.errors()
        )
        raise ConfigurationError(f"invalid trainops settings: {problems}") from None
