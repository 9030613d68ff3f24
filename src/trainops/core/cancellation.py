"""Cooperative cancellation for training loops."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from trainops.errors import OperationCancelledError

INTERRUPTED = "interrupted from the terminal (Ctrl-C)"
"""The reason of a run a person stopped with Ctrl-C (a ``KeyboardInterrupt``): it ends cancelled, not failed."""


class CancelRequest(BaseModel):
    """Someone asked an operation to stop: why, who, and when."""

    model_config = ConfigDict(frozen=True)

    reason: str
    requested_by: str = "user"
    requested_at: datetime


class CancellationToken:
    """A thread-safe flag a training loop checks between batches.

    The first request wins: later calls to :meth:`cancel` keep the original reason, so the history says why the
    run really stopped.

    >>> token = CancellationToken()
    >>> token.cancel("val_loss rising", requested_by="agent")
    >>> token.is_cancelled, token.request.reason
    (True, 'val_loss rising')
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._request: CancelRequest | None = None

    def cancel(self, reason: str, *, requested_by: str = "user") -> None:
        with self._lock:
            if self._request is None:
                self._request = CancelRequest(reason=reason, requested_by=requested_by, requested_at=datetime.now(UTC))
            self._event.set()

    @property
    def is_cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def request(self) -> CancelRequest | None:
        return self._request

    def raise_if_cancelled(self) -> None:
        """Raise :class:`OperationCancelledError` with the recorded reason if a stop was requested."""
        request = self._request
        if request is not None:
            raise OperationCancelledError(f"Operation cancelled by {request.requested_by}: {request.reason}")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` seconds pass; returns whether it was cancelled."""
        return self._event.wait(timeout)
