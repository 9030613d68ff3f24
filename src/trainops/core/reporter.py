"""The Reporter protocol: the only way producers (pipelines, framework callbacks) talk to trainops.

A producer never imports a service, a database or HTTP. It calls a Reporter, which the caller chose:
``LocalReporter``-style in-process writes or an HTTP one for remote workers. Reporting is synchronous and cheap,
so training loops need no event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from trainops.core.cancellation import CancelRequest
from trainops.core.epoch import EpochRecord
from trainops.core.progress import ProgressState


@runtime_checkable
class Reporter(Protocol):
    def progress(self, state: ProgressState) -> None:
        """Where the job is now; may be throttled, phase changes and epoch ends always get through."""

    def epoch(self, record: EpochRecord) -> None:
        """One finished epoch; re-sending an epoch replaces it."""

    def batch(
        self,
        epoch: int,
        batch: int,
        total_batches: int | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> None:
        """A finished batch (1-based ``batch``); used for progress, downsampled before storage."""

    def artifact(self, name: str, path: str, kind: str = "file") -> None:
        """A file the job produced (weights, a report, ...)."""

    def should_stop(self) -> CancelRequest | None:
        """The stop request, if someone asked the job to stop; cheap enough to call every batch."""


class NullReporter:
    """A reporter that records nothing and never asks to stop: for running a producer on its own."""

    def progress(self, state: ProgressState) -> None:
        pass

    def epoch(self, record: EpochRecord) -> None:
        pass

    def batch(
        self,
        epoch: int,
        batch: int,
        total_batches: int | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> None:
        pass

    def artifact(self, name: str, path: str, kind: str = "file") -> None:
        pass

    def should_stop(self) -> CancelRequest | None:
        return None
