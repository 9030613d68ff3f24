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
    held: ProgressState | None = None  # the latest update not stored since


class ProgressThrottle:
    """Decides which progress updates are worth a database write.

    An update always gets through when it is the first for its operation, changes phase, moves to another epoch
    or reaches 100%; otherwise only when ``interval`` seconds have passed since the last stored one. The latest
    update held back is kept, so that a run ending (cancelled or failed where it was) stores where it really
    stopped: :meth:`release`.
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
            elif last is not None:  # always, when not a milestone
                last.held = state
            return milestone

    def release(self, operation_id: str) -> ProgressState | None:
        """Forget the operation, answering the latest update held back since the last stored one, if any."""
        with self._lock:
            last = self._last.pop(operation_id, None)
        return last.held if last is not None else None

    def forget(self, operation_id: str) -> None:
        with self._lock:
            self._last.pop(operation_id, None)
