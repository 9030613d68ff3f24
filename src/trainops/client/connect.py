"""``trainops.connect()``: the one entry point of the Python client."""

from __future__ import annotations

from trainops.client.base import TrainOps
from trainops.client.http import HttpTrainOps
from trainops.settings import Settings, get_settings


def connect(url: str | None = None, token: str | None = None, *, settings: Settings | None = None) -> TrainOps:
    """Open trainops: in-process on the local database, or a server when a URL is given.

    Args:
        url: A trainops server (``http://host:8000``); defaults to ``TRAINOPS_URL``. Without one, trainops runs
            in this process on ``TRAINOPS_DATABASE_URL`` (SQLite under ``TRAINOPS_HOME`` by default).
        token: Bearer token for the server; defaults to ``TRAINOPS_API_TOKEN``.
        settings: Explicit settings instead of the environment.

    Example:
        >>> import trainops
        >>> with trainops.connect() as ops:  # doctest: +SKIP
        ...     print(ops.list_operations(active_only=True).total)
    """
    settings = settings or get_settings()
    url = url or settings.url
    if url:
        return HttpTrainOps(url, token=token or settings.api_token)
    # In-process: the store and the services load here, so a script that reports to a server never imports them.
    from trainops.client.local import LocalTrainOps
    from trainops.service.bootstrap import open_service

    return LocalTrainOps(open_service(settings), settings=settings)
