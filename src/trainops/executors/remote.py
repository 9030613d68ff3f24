"""A worker away from the server's disk: market data from the server, cached; the model version back to it.

A worker started with ``TRAINOPS_URL`` (a Ray job on another node, or any machine that reaches the API) reports
through :class:`~trainops.client.http.HttpTrainOps` and needs nothing of the server's but the operation id:

- the strategy is recorded in the operation;
- the market data comes from ``GET /api/v1/data/{symbol}/{timeframe}`` into ``$TRAINOPS_HOME/cache/data``, which
  later trainings on the node revalidate (a 304 while the server's file is unchanged) instead of downloading
  again; a ``TRAINOPS_DATA_DIR`` that already holds the files (a shared disk) is read in place;
- the trained model version is written to ``$TRAINOPS_HOME/cache/models`` and sent to the server's registry
  (``POST /api/v1/models/versions``), whose answer names it in the operation's result; the local copy goes.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from trainops.client.base import TrainOps
from trainops.errors import NotFoundError, ServiceUnavailableError
from trainops.pipeline.strategy import StrategyConfig
from trainops.schemas.models import StoredModelVersion
from trainops.settings import Settings

logger = logging.getLogger("trainops.executors")

T = TypeVar("T")

PATIENCE = 300.0
"""Seconds a remote worker keeps trying to reach a server that is down (a restart, a network blip) before it
gives up a download or the model upload: a trained model must not be lost to an outage of a few minutes."""

WORKER_MODULE = "trainops.executors.worker"
"""``python -m`` this to run one training operation (its id the only argument)."""

WORKER_ENVIRONMENT = ("TRAINOPS_URL", "TRAINOPS_API_TOKEN")
"""What a remote worker needs in its environment (never on its command line, where ``ps`` shows it)."""


def worker_entrypoint(operation_id: str, *, python: str = "python") -> str:
    """The shell command that runs ``operation_id``'s training in a worker: a Ray job's ``entrypoint``.

    The server's URL and token go in the job's environment (:func:`remote_worker_environment`), never here.
    """
    return shlex.join([python, "-m", WORKER_MODULE, operation_id])


def remote_worker_environment(url: str, token: str | None) -> dict[str, str]:
    """The environment variables that make a worker report to the server at ``url`` (a Ray job's
    ``runtime_env["env_vars"]``); nothing of the server's disk (database, data or models directory) is named."""
    env = {"TRAINOPS_URL": url}
    if token:
        env["TRAINOPS_API_TOKEN"] = token
    return env


def data_cache_dir(settings: Settings) -> Path:
    """Where a remote worker keeps the market data it downloaded: ``$TRAINOPS_HOME/cache/data``."""
    return settings.home.expanduser() / "cache" / "data"


def models_scratch_dir(settings: Settings) -> Path:
    """Where a remote worker writes a model version before sending it: ``$TRAINOPS_HOME/cache/models``."""
    return settings.home.expanduser() / "cache" / "models"


def market_data_dir(ops: TrainOps, config: StrategyConfig, settings: Settings) -> Path:
    """The directory this worker reads ``config``'s market data from, made ready.

    ``TRAINOPS_DATA_DIR`` when it is set and holds the base timeframe of every symbol (a disk shared with the
    server: nothing is downloaded); else the cache (:func:`data_cache_dir`), with every file the strategy reads
    downloaded or revalidated. A higher timeframe the server has no file for is resampled from the base bars, as
    on the server, so a stale cached copy of it is removed rather than trained on.

    Raises:
        NotFoundError: the server has no data for a symbol's base timeframe (the message lists what it has).
        ServiceUnavailableError: the server cannot be reached.
    """
    base, higher = config.timeframes[0], config.timeframes[1:]
    shared = settings.data_dir.expanduser() if settings.data_dir is not None else None
    if shared is not None and all(_holds(shared, symbol, base) for symbol in config.symbols):
        return shared
    cache = data_cache_dir(settings)
    for symbol in config.symbols:
        patiently(partial(ops.download_data, symbol, base, cache), f"download {symbol} {base}")
        for timeframe in higher:
            try:
                patiently(partial(ops.download_data, symbol, timeframe, cache), f"download {symbol} {timeframe}")
            except NotFoundError:
                for suffix in (".csv", ".parquet"):
                    (cache / f"{symbol}_{timeframe}{suffix}").unlink(missing_ok=True)
    return cache


def _holds(directory: Path, symbol: str, timeframe: str) -> bool:
    return any((directory / f"{symbol}_{timeframe}{suffix}").is_file() for suffix in (".csv", ".parquet"))


def send_model_version(
    ops: TrainOps, operation_id: str, version_dir: Path, *, patience: float = PATIENCE
) -> StoredModelVersion:
    """Upload the version a training wrote here to the server's registry, through outages of up to ``patience``
    seconds.

    Raises:
        ServiceUnavailableError: the server stayed unreachable; the message says where the version is kept (the
            caller leaves it there), so it can be sent later with ``TrainOps.upload_model_version``.
        InvalidInputError, ConflictError: the server refused the version (see
            :meth:`~trainops.client.base.TrainOps.upload_model_version`).
    """
    try:
        upload = partial(ops.upload_model_version, operation_id, version_dir)
        return patiently(upload, f"upload the model of {operation_id}", patience)
    except ServiceUnavailableError as error:
        raise ServiceUnavailableError(
            f"{error.message}; the trained model version is kept at {version_dir}: send it with "
            f"TrainOps.upload_model_version({operation_id!r}, {str(version_dir)!r})",
            details={**error.details, "version_dir": str(version_dir)},
        ) from None


def patiently(
    call: Callable[[], T],
    what: str,
    patience: float = PATIENCE,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``call()``, tried again while the server is unreachable (:class:`ServiceUnavailableError`: the client's own
    quick retries are spent), waiting 1, 2, 4 ... 30 seconds between tries, for at most ``patience`` seconds. Any
    other error is raised at once.
    """
    deadline = clock() + patience
    delay = 1.0
    while True:
        try:
            return call()
        except ServiceUnavailableError as error:
            if clock() + delay > deadline:
                raise
            logger.warning("cannot %s yet (%s); trying again in %.0f s", what, error.message, delay)
            sleep(delay)
            delay = min(delay * 2, 30.0)
