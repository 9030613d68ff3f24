"""``import trainops`` is light: a training script or a client pays for pydantic, httpx and SQLAlchemy, not for
torch, TA-Lib, pandas, the web server or the MCP SDK.

Each check runs in a fresh interpreter (this test process has long since imported everything), and a failure
names every heavy module that was loaded and the chain of imports that first pulled it in, from ``-X importtime``.
``bench/startup.py`` measures what the same imports cost in time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

# What neither `import trainops` nor any of its public names may load.
HEAVY = ("torch", "talib", "pandas", "fastapi", "uvicorn", "starlette", "mcp", "numpy", "pyarrow", "safetensors")
# What the CLI's app may not load: it imports the server and the training pipeline only when a command runs.
CLI_HEAVY = ("torch", "talib", "pandas", "fastapi", "uvicorn", "mcp")


def heavy_modules_loaded(code: str, watched: Iterable[str], cwd: Path) -> dict[str, str]:
    """Run ``code`` in a fresh interpreter; map each of the ``watched`` top-level modules it loaded to the import
    chain that first loaded it (``trainops -> trainops.client -> ... -> torch``)."""
    names = sorted(set(watched))
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted({{name.partition('.')[0] for name in sys.modules}} & {set(names)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"the probe failed in a fresh interpreter:\n{done.stderr[-5000:]}"
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: import_chain(done.stderr, name) for name in loaded}


def import_chain(importtime: str, top_level: str) -> str:
    """Who first imported ``top_level``, from ``-X importtime``'s report.

    The report lists each module when its import ends, after the modules it imported, one indent (two spaces)
    deeper than its importer; so a module's importer is the next line below it that is less indented.
    """
    entries: list[tuple[int, str]] = []
    for line in importtime.splitlines():
        if not line.startswith("import time:") or line.endswith("| imported package"):
            continue
        column = line.split("|")[-1]
        name = column.strip()
        entries.append(((len(column) - len(column.lstrip()) - 1) // 2, name))
    first = next((i for i, (_, name) in enumerate(entries) if name.partition(".")[0] == top_level), None)
    if first is None:
        return f"{top_level} (importer not found)"
    chain = [entries[first][1]]
    depth = entries[first][0]
    for level, name in entries[first + 1 :]:
        if level < depth:
            chain.append(name)
            depth = level
    # from the outermost import down to the first module of the heavy package
    path = list(reversed(chain))
    cut = next(i for i, name in enumerate(path) if name.partition(".")[0] == top_level)
    return " -> ".join(path[: cut + 1])


def describe(loaded: dict[str, str]) -> str:
    return "\n".join(f"  {name}: {chain}" for name, chain in sorted(loaded.items()))


def test_import_trainops_loads_no_heavy_module(tmp_path: Path) -> None:
    loaded = heavy_modules_loaded("import trainops", HEAVY, tmp_path)
    assert not loaded, f"`import trainops` loaded {', '.join(sorted(loaded))}; first imported by:\n{describe(loaded)}"


def test_every_public_name_is_reachable_without_heavy_modules(tmp_path: Path) -> None:
    # a lazily re-exported name (module __getattr__) must not pull them in either when it is first touched
    code = "import trainops\ntrainops.connect\nfor name in trainops.__all__:\n    getattr(trainops, name)"
    loaded = heavy_modules_loaded(code, HEAVY, tmp_path)
    assert not loaded, (
        f"reaching trainops.connect and every name of trainops.__all__ loaded {', '.join(sorted(loaded))}; "
        f"first imported by:\n{describe(loaded)}"
    )


def test_the_cli_app_loads_no_heavy_module(tmp_path: Path) -> None:
    loaded = heavy_modules_loaded("import trainops.cli.main", CLI_HEAVY, tmp_path)
    assert not loaded, (
        f"`import trainops.cli.main` loaded {', '.join(sorted(loaded))}; first imported by:\n{describe(loaded)}"
    )


def test_the_training_callbacks_load_no_heavy_module(tmp_path: Path) -> None:
    # imported inside other people's training scripts: whatever the framework, trainops adds no torch of its own
    loaded = heavy_modules_loaded("import trainops.callbacks", HEAVY, tmp_path)
    assert not loaded, (
        f"`import trainops.callbacks` loaded {', '.join(sorted(loaded))}; first imported by:\n{describe(loaded)}"
    )
