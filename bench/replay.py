"""How long a replay takes: a policy's recommendation at every epoch of a stored history (``POST
/operations/{id}/diagnose``, the MCP ``replay_diagnosis`` tool, ``trainops ops diagnose --replay``).

A replay is :func:`trainops.core.analyze` on every prefix of the history, so it grows with the square of its length.
With the projection's confirmation (``confirm_epochs``) it projected each prefix's earlier evaluations again, up to
``confirm_epochs - 1`` of them: cubic, up to the 1,000 the policy allows. It now judges each prefix's projection once
and reads the earlier ones back. This benchmark times :func:`trainops.core.replay` against that plain loop (analyze
on each prefix alone, what a replay was) on the same histories, in the same process, and checks that both give the
same steps:

- a converging run with noise and a decaying learning rate (the projection says continue for most of it);
- a flat, noisy run (every prefix says stop: ``confirm`` reads all ``confirm_epochs - 1`` earlier verdicts).

    .venv/bin/python bench/replay.py           # ~1 min on 2 cores
    .venv/bin/python bench/replay.py --quick   # the short histories only (~10 s)
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from _report import machine, table

from trainops.core import EpochRecord, MonitorPolicy, analyze, replay
from trainops.core.replay import ReplayStep

T = TypeVar("T")


def converging(epochs: int, seed: int = 0) -> list[EpochRecord]:
    rng = random.Random(seed)
    scale = epochs / 5
    return [
        EpochRecord(
            epoch=e,
            train_loss=0.1 + math.exp(-e / scale) * (1 + rng.gauss(0.0, 0.01)),
            val_loss=0.2 + math.exp(-e / scale) * (1 + rng.gauss(0.0, 0.02)),
            learning_rate=0.1 * 0.999**e,
        )
        for e in range(epochs)
    ]


def flat(epochs: int, seed: int = 0) -> list[EpochRecord]:
    rng = random.Random(seed)
    return [
        EpochRecord(epoch=e, train_loss=0.3 * (1 + rng.gauss(0.0, 0.01)), val_loss=0.3 * (1 + rng.gauss(0.0, 0.01)))
        for e in range(epochs)
    ]


def plain_loop(history: Sequence[EpochRecord], policy: MonitorPolicy, planned: int) -> list[tuple[object, ...]]:
    """What a replay was: analyze on each prefix alone."""
    steps = []
    for end in range(1, len(history) + 1):
        recommendation = analyze(
            history[:end], policy, total_epochs_planned=planned, with_forecast=False
        ).recommendation
        steps.append((history[end - 1].epoch, recommendation.action, recommendation.reason))
    return steps


def as_tuples(steps: Sequence[ReplayStep]) -> list[tuple[object, ...]]:
    return [(step.epoch, step.action, step.reason) for step in steps]


def timed(work: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[float, T]:
    started = time.perf_counter()
    result = work(*args, **kwargs)
    return time.perf_counter() - started, result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the short histories only")
    args = parser.parse_args(argv)

    print(f"replay against analyze on each prefix alone ({machine()})")
    cases = [
        ("converging", 500, 3),
        ("converging", 1000, 3),
        ("flat", 300, 100),
        ("flat", 300, 1000),
    ]
    if not args.quick:
        cases += [("converging", 2000, 3), ("flat", 600, 1000)]
    rows = []
    for kind, epochs, confirm in cases:
        history = (converging if kind == "converging" else flat)(epochs)
        policy = MonitorPolicy(confirm_epochs=confirm)
        plain_s, plain = timed(plain_loop, history, policy, 2 * epochs)
        replay_s, replayed = timed(replay, history, policy, total_epochs_planned=2 * epochs)
        same = "yes" if as_tuples(replayed.steps) == plain else "NO"
        rows.append(
            (kind, epochs, confirm, f"{plain_s:.2f} s", f"{replay_s:.2f} s", f"{plain_s / replay_s:.1f}x", same)
        )
    headers = ["history", "epochs", "confirm_epochs", "analyze each prefix", "replay", "speed-up", "same steps"]
    print(table(headers, rows))

    if not args.quick:
        longest = []
        for epochs in (4000, 5000):
            history = converging(epochs)
            seconds, _ = timed(replay, history, total_epochs_planned=epochs)
            longest.append(("converging", epochs, 3, f"{seconds:.1f} s"))
        flat_long = flat(5000)
        seconds, _ = timed(replay, flat_long, MonitorPolicy(confirm_epochs=1000), total_epochs_planned=10_000)
        longest.append(("flat", 5000, 1000, f"{seconds:.1f} s"))
        print()
        print("replay alone, up to the 5,000 epochs a replay is allowed (MAX_REPLAY_EPOCHS)")
        print(table(["history", "epochs", "confirm_epochs", "replay"], longest))


if __name__ == "__main__":
    main()
