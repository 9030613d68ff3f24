"""What the agent tests share: waiting until a run has heard of the stop an agent asked for."""

from __future__ import annotations

import time

from trainops.callbacks import TrainingCallbacks


def until_the_run_hears_of_the_stop(tracker: TrainingCallbacks, timeout: float = 30.0) -> None:
    """Wait until the run's buffer has heard of the stop (it comes with the next heartbeat, about a second after
    the cancel), reading the run's own view so the callback's decision stays with trainops' hook under test."""
    deadline = time.monotonic() + timeout
    while tracker.run is None or tracker.run.should_stop() is None:
        assert time.monotonic() < deadline, "the run never heard of the stop"
        time.sleep(0.05)
