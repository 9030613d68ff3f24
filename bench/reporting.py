"""Reporting through a server outage: what a training loop pays, and how fast what it logged gets home.

A client training loop (``trainops.connect(url)``, ``ops.run(...)``: every epoch ``run.log(...)`` then
``run.should_stop()``, after a fixed pace of "training", a sleep of ``--pace`` seconds) reports to a real server
process (``python -m trainops.cli serve``, SQLite), four ways, alternating in each round:

* ``server up``: the server answers throughout. The baseline.
* ``killed, back after T s``: the server is SIGKILLed (its whole process group) at a fifth of the run and
  started again on the same port and database ``--outage`` seconds later; the loop goes on meanwhile.
* ``killed, never back``: the server is SIGKILLed at half the run and is down when the run ends. The run's end
  waits its bounded time (``run.flush_timeout`` = ``--end-wait``), then keeps what is unsent (the run's end
  included) in its spill file under ``$TRAINOPS_HOME/unsent``; then the server is started and ``trainops sync``
  (the CLI, a process of its own as a user runs it) delivers the file.
* ``down at the start, back after T s``: the server is SIGKILLed before the run begins, so ``ops.run`` cannot
  register the operation: the run begins offline under an id of its own, and the server is started again
  ``--outage`` seconds later; the run registers its operation then and sends what waited.

The loop runs in a thread of its own (the training thread); the benchmark's main thread kills and starts the
server and polls ``GET /operations/{id}`` every 50 ms to see when the backlog landed. Figures:

* epochs stored / epochs logged, the operation's final status, and exceptions that reached the loop (each
  trainops call is wrapped and counted; the figure must be 0);
* the time the training thread spends in trainops calls (``run.log`` + ``run.should_stop``) per epoch, median /
  p99 / max, while the server is up, while it is down, and while the backlog is being sent after its restart;
* the loop's time (its epochs only: ``loop s``) and wall time (first epoch to the run's end returning, the end's
  wait included: ``wall s``) against the baseline's;
* the time from the restarted server's first healthy answer until every epoch logged by then is stored;
* the run's end: its wait, what it spilled, and how long ``trainops sync`` took;
* for a run begun offline: what ``ops.run`` cost the script, and the time from the server's restart until the
  operation is registered and holds every epoch logged by then.

The server's start-up (imports and migrations, a few seconds on 2 cores) is part of an outage as a user sees it:
``outage`` in the table is from the kill to the restarted server's first healthy answer.

Run: ``.venv/bin/python bench/reporting.py`` (``--quick`` for a short run, ``--help`` for the sizes). Everything
lives in a temporary folder; the client's ``TRAINOPS_HOME`` (its spill files) too.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _report import machine, percentile, table
from _server_process import ServerProcess, clean_env

import trainops
from trainops.settings import get_settings

POLL = 0.05
"""Seconds between the main thread's polls of the server while it waits for the backlog."""


@dataclass
class Loop:
    """What the training thread saw: when each epoch's trainops calls began and how long they took."""

    epochs: int
    operation_id: str | None = None
    logged: int = 0
    calls: list[tuple[float, float]] = field(default_factory=list)
    """(monotonic time the epoch's trainops calls began, seconds they took), one per epoch."""
    exceptions: list[str] = field(default_factory=list)
    started: float = math.nan
    loop_ended: float = math.nan
    ended: float = math.nan
    unsent: str | None = None
    unsent_epochs: int = 0
    status: str | None = None
    begin: float = math.nan
    """Seconds ``ops.run(...)`` took (registering the operation, or finding the server away)."""

    @property
    def wall(self) -> float:
        """Seconds from the first epoch to the run's end returning (its end's wait included)."""
        return self.ended - self.started

    @property
    def end_wait(self) -> float:
        """Seconds the run's end took (flushing what was queued, telling the server how the run ended)."""
        return self.ended - self.loop_ended


def training_loop(url: str, loop: Loop, pace: float, end_wait: float, ready: threading.Event) -> None:
    """The user's loop, as in the README: never raises (what reaches it is counted in ``loop.exceptions``)."""
    try:
        with trainops.connect(url) as ops:
            began = time.monotonic()
            run = ops.run(total_epochs=loop.epochs, metadata={"strategy": "bench-reporting"})
            loop.begin = time.monotonic() - began
            run.flush_timeout = end_wait
            loop.operation_id = run.operation_id
            ready.set()
            with run:
                loop.started = time.monotonic()
                for epoch in range(loop.epochs):
                    time.sleep(pace)  # the epoch's "training"
                    began = time.monotonic()
                    try:
                        loss = 1.0 / math.sqrt(epoch + 1)
                        run.log(epoch, train_loss=loss, val_loss=loss * 1.1, learning_rate=1e-3)
                        stop = run.should_stop()
                    except Exception as error:  # the figure is their count: it must stay 0
                        loop.exceptions.append(f"epoch {epoch}: {error!r}")
                        stop = None
                    loop.calls.append((began, time.monotonic() - began))
                    loop.logged += 1
                    if stop is not None:
                        break
                loop.loop_ended = time.monotonic()
            loop.ended = time.monotonic()
            loop.status = run.operation.status.value
            if run.unsent is not None:
                loop.unsent = run.unsent.message
                loop.unsent_epochs = run.unsent.epochs
    except BaseException as error:
        loop.exceptions.append(f"the run: {error!r}")
        if math.isnan(loop.ended):
            loop.ended = time.monotonic()
    finally:
        ready.set()


@dataclass
class Outcome:
    """One run of one scenario: the loop's view, what the server stored, and the outage's timeline."""

    scenario: str
    loop: Loop
    stored: int = 0
    status: str = "-"
    killed: float = math.nan
    healthy: float = math.nan
    """When the restarted server first answered its health check (``nan`` when it was not restarted in the run)."""
    delivered: float = math.nan
    """When every epoch logged before ``healthy`` was stored."""
    backlog: int = 0
    sync_seconds: float = math.nan

    @property
    def outage(self) -> float:
        return self.healthy - self.killed

    @property
    def to_delivered(self) -> float:
        return self.delivered - self.healthy

    def phase(self, at: float) -> str:
        """Which phase of the server's life an epoch whose trainops calls began ``at`` fell in."""
        if math.isnan(self.killed) or at < self.killed:
            return UP
        if math.isnan(self.healthy) or at < self.healthy:
            return DOWN
        if math.isnan(self.delivered) or at < self.delivered:
            return CATCHING_UP
        return UP


UP, DOWN, CATCHING_UP = "server up", "server down", "backlog being sent"
SCENARIOS = (
    "server up",
    "killed, back after {outage:g} s",
    "killed, never back",
    "down at the start, back after {outage:g} s",
)


def start_loop(url: str, epochs: int, pace: float, end_wait: float) -> tuple[Loop, threading.Thread]:
    """The training loop in a thread of its own, once its operation exists."""
    loop = Loop(epochs)
    ready = threading.Event()
    thread = threading.Thread(
        target=training_loop, args=(url, loop, pace, end_wait, ready), name="training", daemon=True
    )
    thread.start()
    if not ready.wait(60) or loop.operation_id is None:
        raise RuntimeError(f"the loop did not start its run: {loop.exceptions}")
    return loop, thread


def wait_logged(loop: Loop, count: int, thread: threading.Thread) -> None:
    while loop.logged < count and thread.is_alive():
        time.sleep(0.002)


def finish(thread: threading.Thread, timeout: float = 300.0) -> None:
    thread.join(timeout)
    if thread.is_alive():
        raise RuntimeError(f"the training loop did not end within {timeout:.0f} s")


def stored(api: httpx.Client, operation_id: str) -> tuple[int, str]:
    """Epoch rows the server holds for the operation (checked to be 0, 1, ... in order) and its status."""
    status = api.get(f"/operations/{operation_id}").json()["data"]["status"]
    epochs = api.get(f"/operations/{operation_id}/metrics").json()["data"]["metrics"]["epochs"]
    numbers = [epoch["epoch"] for epoch in epochs]
    if numbers != list(range(len(numbers))):
        raise RuntimeError(f"{operation_id}: the stored history has gaps: {numbers[:20]}...")
    return len(numbers), status


def epochs_completed(api: httpx.Client, operation_id: str) -> int:
    """Epochs the server counts for the operation; -1 while it is unreachable or does not know the operation."""
    try:
        answer = api.get(f"/operations/{operation_id}")
    except httpx.TransportError:
        return -1
    if answer.status_code == 404:  # a run begun offline has not registered it yet
        return -1
    done: int = answer.json()["data"]["epochs_completed"]
    return done


def server_up(server: ServerProcess, args: argparse.Namespace) -> Outcome:
    loop, thread = start_loop(server.url, args.epochs, args.pace, args.end_wait)
    finish(thread)
    return Outcome(SCENARIOS[0], loop)


def back_after(server: ServerProcess, args: argparse.Namespace) -> Outcome:
    loop, thread = start_loop(server.url, args.epochs, args.pace, args.end_wait)
    outcome = Outcome(SCENARIOS[1].format(outage=args.outage), loop)
    wait_logged(loop, args.epochs // 5, thread)
    outcome.killed = server.kill()
    time.sleep(args.outage)
    restart(server, outcome, thread)
    return outcome


def restart(server: ServerProcess, outcome: Outcome, thread: threading.Thread) -> None:
    """Start the server again, wait until every epoch logged by then is stored, and let the run end."""
    outcome.healthy = server.start()
    outcome.backlog = outcome.loop.logged
    assert outcome.loop.operation_id is not None
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=10) as api:
        deadline = time.monotonic() + 120
        while epochs_completed(api, outcome.loop.operation_id) < outcome.backlog:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the backlog of {outcome.backlog} epochs did not land within 120 s")
            time.sleep(POLL)
    outcome.delivered = time.monotonic()
    finish(thread)


def down_at_start(server: ServerProcess, args: argparse.Namespace) -> Outcome:
    killed = server.kill()
    loop, thread = start_loop(server.url, args.epochs, args.pace, args.end_wait)
    outcome = Outcome(SCENARIOS[3].format(outage=args.outage), loop, killed=killed)
    time.sleep(max(0.0, killed + args.outage - time.monotonic()))
    restart(server, outcome, thread)
    return outcome


def never_back(server: ServerProcess, args: argparse.Namespace, client_home: Path) -> Outcome:
    loop, thread = start_loop(server.url, args.epochs, args.pace, args.end_wait)
    outcome = Outcome(SCENARIOS[2], loop)
    wait_logged(loop, args.epochs // 2, thread)
    outcome.killed = server.kill()
    finish(thread)
    server.start()
    cli = Path(sys.executable).with_name("trainops")
    argv = [str(cli)] if cli.exists() else [sys.executable, "-m", "trainops.cli"]
    started = time.monotonic()
    synced = subprocess.run(
        [*argv, "sync"],
        env=clean_env(TRAINOPS_HOME=str(client_home)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outcome.sync_seconds = time.monotonic() - started
    if synced.returncode != 0:
        loop.exceptions.append(f"trainops sync exited {synced.returncode}: {synced.stderr[-2000:]}")
    return outcome


def one_round(server: ServerProcess, args: argparse.Namespace, client_home: Path, order: int) -> list[Outcome]:
    """The four scenarios, rotated by ``order`` so none always runs first on a machine that warms up."""
    scenarios = [
        lambda: server_up(server, args),
        lambda: back_after(server, args),
        lambda: never_back(server, args, client_home),
        lambda: down_at_start(server, args),
    ]
    outcomes: dict[int, Outcome] = {}
    for step in range(len(scenarios)):
        index = (step + order) % len(scenarios)
        outcome = outcomes[index] = scenarios[index]()
        assert outcome.loop.operation_id is not None
        with httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as api:
            outcome.stored, outcome.status = stored(api, outcome.loop.operation_id)
    return [outcomes[index] for index in range(len(scenarios))]


def summary_rows(outcomes: Sequence[Outcome], baseline_wall: float) -> list[list[object]]:
    rows: list[list[object]] = []
    for name in dict.fromkeys(outcome.scenario for outcome in outcomes):
        runs = [outcome for outcome in outcomes if outcome.scenario == name]
        wall = statistics.median(run.loop.wall for run in runs)
        looped = statistics.median(run.loop.loop_ended - run.loop.started for run in runs)
        rows.append(
            [
                name,
                f"{sum(run.stored for run in runs):,} / {sum(run.loop.logged for run in runs):,}",
                ", ".join(sorted({run.status for run in runs})),
                sum(len(run.loop.exceptions) for run in runs),
                looped,
                wall,
                f"{wall / baseline_wall:.3f}x",
                statistics.median(run.loop.end_wait for run in runs),
            ]
        )
    return rows


def phase_rows(outcomes: Sequence[Outcome]) -> list[list[object]]:
    """Per-epoch time in trainops calls by phase; the baseline's epochs apart from the outage runs' own."""
    groups: dict[str, list[float]] = {}
    for outcome in outcomes:
        for began, seconds in outcome.loop.calls:
            phase = outcome.phase(began)
            label = f"{phase} (baseline runs)" if outcome.scenario == SCENARIOS[0] else f"{phase} (outage runs)"
            groups.setdefault(label, []).append(seconds * 1000.0)
    order = [f"{UP} (baseline runs)", f"{UP} (outage runs)", f"{DOWN} (outage runs)", f"{CATCHING_UP} (outage runs)"]
    return [
        [label, len(values), statistics.median(values), percentile(values, 99), max(values)]
        for label in order
        if (values := groups.get(label))
    ]


def recovery_rows(outcomes: Sequence[Outcome]) -> list[list[object]]:
    back = [o for o in outcomes if not math.isnan(o.delivered) and o.scenario.startswith("killed")]
    offline = [o for o in outcomes if o.scenario.startswith("down at the start")]
    never = [outcome for outcome in outcomes if not math.isnan(outcome.sync_seconds)]
    rows: list[list[object]] = []
    if back:
        rows.append(["outage: kill to the restarted server's health answer", *_spread(o.outage for o in back)])
        rows.append(["backlog at the restart (epochs)", *_spread(o.backlog for o in back)])
        rows.append(["restart to the backlog stored", *_spread(o.to_delivered for o in back)])
    if never:
        rows.append(["server never back: the run's end waited", *_spread(o.loop.end_wait for o in never)])
        rows.append(["epochs kept in the spill file", *_spread(o.loop.unsent_epochs for o in never)])
        rows.append(["`trainops sync` (a process: start-up included)", *_spread(o.sync_seconds for o in never)])
    if offline:
        rows.append(["down at the start: `ops.run()` took", *_spread(o.loop.begin for o in offline)])
        rows.append(["server up: `ops.run()` took", *_spread(o.loop.begin for o in outcomes if o.scenario == UP)])
        rows.append(["down at the start: kill to the server's health answer", *_spread(o.outage for o in offline)])
        rows.append(["backlog at the restart (epochs)", *_spread(o.backlog for o in offline)])
        rows.append(["restart to registered, backlog stored", *_spread(o.to_delivered for o in offline)])
    return rows


def _spread(values: Iterable[float]) -> list[float]:
    ordered = sorted(values)
    return [statistics.median(ordered), ordered[0], ordered[-1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 500 epochs, a 2 s outage")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of the four scenarios (default 3)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 1,000)")
    parser.add_argument("--pace", type=float, default=0.02, help="seconds each epoch trains (default 0.02)")
    parser.add_argument("--outage", type=float, default=None, help="seconds the server stays dead (default 5)")
    parser.add_argument("--end-wait", type=float, default=5.0, help="run.flush_timeout, seconds (default 5)")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.epochs = args.epochs or (500 if args.quick else 1000)
    args.outage = args.outage if args.outage is not None else (2.0 if args.quick else 5.0)
    logging.getLogger("trainops").setLevel(logging.ERROR)  # the unsent-records warnings are expected here

    print(
        f"bench/reporting.py: {machine()}, {args.rounds} round(s) x 4 runs of {args.epochs:,} epochs at "
        f"{args.pace * 1000:g} ms each (floor {args.epochs * args.pace:.1f} s), outage {args.outage:g} s, "
        f"end wait {args.end_wait:g} s"
    )
    with tempfile.TemporaryDirectory(prefix="trainops-bench-") as scratch:
        client_home = Path(scratch) / "client"
        for key in [key for key in os.environ if key.startswith("TRAINOPS_")]:
            del os.environ[key]
        os.environ["TRAINOPS_HOME"] = str(client_home)  # the loop's spill files go here
        get_settings.cache_clear()
        outcomes: list[Outcome] = []
        with ServerProcess(Path(scratch) / "server") as server:
            for order in range(args.rounds):
                outcomes += one_round(server, args, client_home, order)
                print(f"  round {order + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        baseline = statistics.median(o.loop.wall for o in outcomes if o.scenario == SCENARIOS[0])
        print("\nRuns (medians over the rounds; stored/logged summed)")
        print(
            table(
                ["scenario", "epochs stored / logged", "status", "exceptions", "loop s", "wall s", "vs up", "end s"],
                summary_rows(outcomes, baseline),
            )
        )
        print("\nTime in trainops calls per epoch, training thread (run.log + run.should_stop)")
        print(table(["phase", "epochs", "median ms", "p99 ms", "max ms"], phase_rows(outcomes)))
        print("\nRecovery (seconds unless said)")
        print(table(["", "median", "min", "max"], recovery_rows(outcomes)))
        problems = [f"{o.scenario}: {error}" for o in outcomes for error in o.loop.exceptions]
        for problem in problems:
            print(f"EXCEPTION {problem}")


if __name__ == "__main__":
    main()
