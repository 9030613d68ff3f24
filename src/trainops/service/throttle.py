"""Progress throttling: store at most one update per interval per operation, but never drop a milestone."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from trainops.core.progress import ProgressState


@dataclass(slots=True)
class _Last:
    at: float
    phase: str | None
    epoch: int | None


class ProgressThrottle:
    """Decides which progress updates are worth a database write.

    An update always gets through when it is the first for its operation, changes phase, moves to another epoch
    or reaches 100%; otherwise only when ``interval`` seconds have passed since the last stored one.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, _Last] = {}
        self._lock = threading.Lock()

    def admit(self, operation_id: str, state: ProgressState, now: float) -> bool:
        with self._lock:
            last = self._last.get(operation_id)
            milestone = (
                last is None
                or state.phase != last.phase
                or state.epoch != last.epoch
                or state.percentage >= 100.0
                or now - last.at >= self.interval
            )
            if milestone:
                self._last[operation_id] = _Last(now, state.phase, state.epoch)
            return milestone

    def forget(self, operation_id: str) -> None:
        with self._lock:
            self._last.pop(operation_id, None)
