"""ProgressThrottle: at most one stored update per interval, but never a dropped milestone."""

from __future__ import annotations

import threading

import pytest

from trainops.core import ProgressState
from trainops.service.throttle import ProgressThrottle

INTERVAL = 1.0


def state(percentage: float = 10.0, phase: str | None = "training", epoch: int | None = 1) -> ProgressState:
    return ProgressState(percentage=percentage, phase=phase, epoch=epoch)


Step = tuple[float, ProgressState, bool]
"""(now, update, admitted?)"""


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param([(0.0, state(), True)], id="first-update"),
        pytest.param([(100.0, state(), True), (100.5, state(11), False)], id="same-epoch-within-interval"),
        pytest.param([(0.0, state(), True), (0.999, state(11), False), (1.0, state(12), True)], id="at-interval"),
        pytest.param([(0.0, state(), True), (5.0, state(11), True)], id="after-interval"),
        pytest.param(
            [(0.0, state(phase="preprocessing", epoch=None), True), (0.1, state(phase="training", epoch=None), True)],
            id="phase-change",
        ),
        pytest.param([(0.0, state(phase=None), True), (0.1, state(phase="training"), True)], id="phase-from-none"),
        pytest.param([(0.0, state(epoch=1), True), (0.1, state(epoch=2), True)], id="epoch-change"),
        pytest.param([(0.0, state(epoch=1), True), (0.1, state(epoch=None), True)], id="epoch-to-none"),
        pytest.param([(0.0, state(99), True), (0.1, state(100), True), (0.2, state(100), True)], id="100-always"),
        pytest.param(
            [(0.0, state(10), True), (0.6, state(11), False), (1.0, state(12), True), (1.5, state(13), False)],
            id="dropped-updates-do-not-restart-the-clock",
        ),
        pytest.param(
            [(0.0, state(epoch=1), True), (0.5, state(epoch=2), True), (1.2, state(epoch=2), False)],
            id="milestone-restarts-the-clock",
        ),
    ],
)
def test_admit(steps: list[Step]) -> None:
    throttle = ProgressThrottle(INTERVAL)

    admitted = [throttle.admit("op_1", update, now) for now, update, _ in steps]

    assert admitted == [expected for _, _, expected in steps]


def test_operations_are_throttled_independently() -> None:
    throttle = ProgressThrottle(INTERVAL)

    assert throttle.admit("op_a", state(10), 0.0) is True
    assert throttle.admit("op_b", state(10), 0.1) is True
    assert throttle.admit("op_a", state(11), 0.2) is False
    assert throttle.admit("op_b", state(11), 0.3) is False


def test_forget_makes_the_next_update_a_first_one() -> None:
    throttle = ProgressThrottle(INTERVAL)
    throttle.admit("op_1", state(10), 0.0)

    throttle.forget("op_1")
    throttle.forget("never_seen")

    assert throttle.admit("op_1", state(11), 0.1) is True


def test_zero_interval_admits_everything() -> None:
    throttle = ProgressThrottle(0.0)

    assert [throttle.admit("op_1", state(10 + i), 0.0) for i in range(3)] == [True, True, True]


def test_concurrent_updates_at_the_same_instant_admit_exactly_one() -> None:
    throttle = ProgressThrottle(INTERVAL)
    threads_count = 16
    barrier = threading.Barrier(threads_count)
    results: list[bool] = []

    def report() -> None:
        barrier.wait()
        results.append(throttle.admit("op_1", state(10), 0.0))

    threads = [threading.Thread(target=report) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert sorted(results) == [False] * (threads_count - 1) + [True]


def test_release_answers_the_latest_update_held_back_and_forgets() -> None:
    throttle = ProgressThrottle(INTERVAL)
    throttle.admit("op_1", state(10), 0.0)
    throttle.admit("op_1", state(11), 0.1)
    throttle.admit("op_1", state(12), 0.2)

    assert throttle.release("op_1") == state(12)
    assert throttle.release("op_1") is None  # forgotten
    assert throttle.admit("op_1", state(13), 0.3) is True  # a first update again


def test_release_holds_nothing_once_a_later_update_was_stored() -> None:
    throttle = ProgressThrottle(INTERVAL)
    throttle.admit("op_1", state(10), 0.0)
    throttle.admit("op_1", state(11), 0.1)
    throttle.admit("op_1", state(12, epoch=2), 0.2)  # a milestone: stored

    assert throttle.release("op_1") is None
    assert throttle.release("never_seen") is None
