"""Startup time: ``import trainops`` and the quick CLI commands, each against the libraries it cannot do without.

Every figure is the wall time of a fresh process, as a user or a training script pays it, compared with a floor:
a process that imports only the libraries the command needs anyway, so the ratio shows what trainops adds.

* ``import trainops`` against floor A, ``import pydantic, httpx, sqlalchemy`` (the client's models, transport
  and the in-process store). Goal: <= 1.5x floor A, and none of torch, TA-Lib (``talib``), pandas, FastAPI,
  uvicorn or the MCP SDK (``mcp``) loaded.
* ``trainops --help``, ``trainops version`` and ``trainops ops list`` (in-process, on an empty database) against
  floor B, ``import pydantic, httpx, sqlalchemy, typer, rich`` (floor A plus the CLI's toolkit). Goal: <= 2x
  floor B.

The commands run the way users run them: the interpreter is this one (``sys.executable``, so the ``.venv``'s) and
the CLI is the ``trainops`` console script beside it. Each child gets ``TRAINOPS_HOME`` set to a fresh temporary
folder and no other ``TRAINOPS_*`` variable (so no ``TRAINOPS_URL``: ``ops list`` reads the local database). One
untimed warm-up round goes first: it writes the bytecode caches and lets the first ``ops list`` create and migrate
the empty database, so the timed ``ops list`` runs read an existing empty database, as a user's every call but
the first does. Then ``--rounds`` rounds run every command once each, in an order rotated each round, so machine
noise falls on every command alike; medians (and minimums) are compared.

Last, a child imports trainops and prints which heavy modules it loaded (and one more does the same for the CLI's
app, ``trainops.cli.main``).

It is a benchmark: it exits 0 whatever the figures, unless ``--check`` is given, which exits 1 when a goal is
missed (a ratio above its goal or a forbidden module loaded).

Run: ``.venv/bin/python bench/startup.py`` (``--rounds N``, ``--quick`` for 5 rounds, ``--check``). To measure
another source tree with the same environment: ``PYTHONPATH=/path/to/tree/src .venv/bin/python bench/startup.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from _report import machine, table

GOAL_IMPORT_RATIO = 1.5
GOAL_CLI_RATIO = 2.0
# What `import trainops` must not load (the goal), and what is reported beside them for information.
FORBIDDEN = ("torch", "talib", "pandas", "fastapi", "uvicorn", "mcp")
REPORTED = (*FORBIDDEN, "numpy")


@dataclass(frozen=True)
class Command:
    """One timed process: what it is called in the table, its argv, and the floor and goal it is judged by."""

    label: str
    argv: tuple[str, ...]
    floor: str | None = None  # the label of the Command it is compared with; None for a floor itself
    goal: float | None = None  # the most its median may be, as a multiple of its floor's median


@dataclass(frozen=True)
class Timing:
    command: Command
    seconds: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000.0

    @property
    def min_ms(self) -> float:
        return min(self.seconds) * 1000.0


def commands(python: str, cli: str) -> list[Command]:
    floor_a = "floor A: import pydantic, httpx, sqlalchemy"
    floor_b = "floor B: import pydantic, httpx, sqlalchemy, typer, rich"
    return [
        Command(floor_a, (python, "-c", "import pydantic, httpx, sqlalchemy")),
        Command("import trainops", (python, "-c", "import trainops"), floor_a, GOAL_IMPORT_RATIO),
        Command(floor_b, (python, "-c", "import pydantic, httpx, sqlalchemy, typer, rich")),
        Command("trainops --help", (cli, "--help"), floor_b, GOAL_CLI_RATIO),
        Command("trainops version", (cli, "version"), floor_b, GOAL_CLI_RATIO),
        Command("trainops ops list", (cli, "ops", "list"), floor_b, GOAL_CLI_RATIO),
    ]


def child_env(home: Path) -> dict[str, str]:
    """This environment without any ``TRAINOPS_*`` setting (a ``TRAINOPS_URL`` from the shell would send
    ``ops list`` to a server) and with a fresh home, hence a fresh SQLite database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRAINOPS_")}
    env["TRAINOPS_HOME"] = str(home)
    return env


def run_once(command: Command, env: Mapping[str, str], cwd: Path) -> float:
    """Seconds from start to exit of one process; a failing command stops the benchmark with its output."""
    t0 = time.perf_counter()
    done = subprocess.run(command.argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace")[-3000:]
        raise SystemExit(f"`{' '.join(command.argv)}` exited with code {done.returncode}:\n{output}")
    return elapsed


def time_all(cmds: Sequence[Command], rounds: int, env: Mapping[str, str], cwd: Path) -> list[Timing]:
    """One untimed warm-up round, then ``rounds`` rounds of every command, the order rotated by one each round."""
    for command in cmds:
        run_once(command, env, cwd)
    seconds: dict[str, list[float]] = {command.label: [] for command in cmds}
    for round_index in range(rounds):
        shift = round_index % len(cmds)
        for command in [*cmds[shift:], *cmds[:shift]]:
            seconds[command.label].append(run_once(command, env, cwd))
    return [Timing(command, tuple(seconds[command.label])) for command in cmds]


def loaded_heavy_modules(python: str, module: str, env: Mapping[str, str], cwd: Path) -> list[str]:
    """The top-level names of :data:`REPORTED` that importing ``module`` in a fresh interpreter loads."""
    code = (
        f"import sys, {module}\n"
        f"print(' '.join(sorted({{name.partition('.')[0] for name in sys.modules}} & {set(REPORTED)!r})))"
    )
    done = subprocess.run([python, "-c", code], env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"`import {module}` failed in a fresh interpreter:\n{done.stderr[-3000:]}")
    return done.stdout.split()


def report(timings: Sequence[Timing]) -> tuple[list[list[object]], bool]:
    """The table's rows, and whether every goal was met."""
    by_label = {timing.command.label: timing for timing in timings}
    rows: list[list[object]] = []
    all_met = True
    for timing in timings:
        command = timing.command
        if command.floor is None or command.goal is None:
            rows.append([command.label, timing.median_ms, timing.min_ms, "", "floor", ""])
            continue
        ratio = timing.median_ms / by_label[command.floor].median_ms
        met = ratio <= command.goal
        all_met = all_met and met
        floor_name = command.floor.partition(":")[0]
        rows.append(
            [
                command.label,
                timing.median_ms,
                timing.min_ms,
                f"{ratio:.2f}x {floor_name}",
                f"<= {command.goal:g}x",
                "met" if met else "NOT MET",
            ]
        )
    return rows, all_met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds of every command (default 15)")
    parser.add_argument("--quick", action="store_true", help="5 rounds")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 15)

    python = sys.executable
    cli = Path(python).parent / "trainops"
    if not cli.is_file():
        raise SystemExit(f"no trainops console script beside {python}; install the project first: make install")

    print(f"bench/startup.py: {machine()}, Python {platform.python_version()} ({python})")
    with tempfile.TemporaryDirectory(prefix="trainops-bench-") as scratch:
        home = Path(scratch)
        env = child_env(home)
        cmds = commands(python, str(cli))
        print(
            f"{rounds} rounds of fresh processes after one untimed warm-up round (bytecode caches written; the "
            f"first `ops list` created and migrated the empty database that the timed ones read); "
            f"TRAINOPS_HOME={home}, TRAINOPS_URL unset\n"
        )
        timings = time_all(cmds, rounds, env, home)
        rows, goals_met = report(timings)
        print(table(["command", "median ms", "min ms", "vs floor", "goal", "result"], rows))

        print()
        light = True
        for module in ("trainops", "trainops.cli.main"):
            loaded = loaded_heavy_modules(python, module, env, home)
            forbidden = sorted(set(loaded) & set(FORBIDDEN))
            light = light and (module != "trainops" or not forbidden)
            print(f"`import {module}` loads: {', '.join(loaded) or 'none'} (of {', '.join(REPORTED)})")
        print(
            f"goal, `import trainops` loads none of {', '.join(FORBIDDEN)}: {'met' if light else 'NOT MET'}",
        )

    if args.check and not (goals_met and light):
        sys.exit(1)


if __name__ == "__main__":
    main()
