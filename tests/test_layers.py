"""The tree shows the architecture: imports point downward only (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import trainops

PACKAGE = Path(trainops.__file__).parent

# What each layer may import from trainops (besides itself). Third-party limits are checked for core below.
ALLOWED: dict[str, set[str]] = {
    "core": {"errors"},
    # the wire types sit beside core: pydantic models of requests and answers, no I/O
    "schemas": {"core", "errors"},
    # the artifact store returns ArtifactInfo and checks names with the rule the clients share
    "store": {"core", "errors", "schemas"},
    "pipeline": {"core", "errors", "schemas"},
    "service": {"core", "errors", "schemas", "store", "settings", "pipeline", "extras", "version"},
    # executors run jobs that report through the facade's Run, so they sit just above the client
    "executors": {"core", "errors", "schemas", "store", "settings", "pipeline", "service", "client", "extras"},
    # producers of other people's loops: framework callbacks report through the facade
    "callbacks": {"core", "errors", "schemas", "client", "settings"},
    # framework callbacks (Lightning, Transformers, Keras) drive TrainingCallbacks: producers, like callbacks/
    "integrations": {"callbacks", "core", "errors", "schemas", "client", "settings"},
    # the client never imports the pipeline or the registry: a training script imports it (see test_light_import)
    "client": {"core", "errors", "schemas", "service", "settings", "extras"},
    "api": {
        "core",
        "errors",
        "schemas",
        "service",
        "settings",
        "store",
        "pipeline",
        "executors",
        "extras",
        "version",
        "dashboard",
    },
    # static files and their paths only
    "dashboard": set(),
    "mcp": {"core", "errors", "schemas", "client"},
    "cli": {
        "core",
        "errors",
        "schemas",
        "service",
        "settings",
        "store",
        "client",
        "api",
        "pipeline",
        "executors",
        "mcp",
        "extras",
        "version",
    },
}

CORE_FORBIDDEN = ("fastapi", "sqlalchemy", "torch", "httpx", "uvicorn", "typer", "rich", "alembic", "starlette")


def imports_of(path: Path, *, runtime_only: bool = False) -> set[str]:
    """Every module ``path`` imports, function-local imports included; with ``runtime_only``, leaving out the
    ``if TYPE_CHECKING:`` blocks (annotations only: nothing is loaded)."""
    tree = ast.parse(path.read_text())
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}:
                node.body = []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_downward_only(layer: str) -> None:
    offending = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in imports_of(path):
            parts = name.split(".")
            if parts[0] != "trainops" or len(parts) < 2:
                continue
            target = parts[1]
            if target != layer and target not in ALLOWED[layer]:
                offending.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offending == []


def test_the_client_imports_neither_the_pipeline_nor_the_training_services() -> None:
    # a training script imports the client: the registry and the training service bring torch and TA-Lib, and
    # are opened through service/bootstrap.py when first used
    offending = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / "client").rglob("*.py"))
        for name in imports_of(path, runtime_only=True)
        if name.startswith(("trainops.pipeline", "trainops.service.registry", "trainops.service.training"))
    ]
    assert offending == []


def test_core_is_pure() -> None:
    offending = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / "core").rglob("*.py"))
        for name in imports_of(path)
        if name.split(".")[0] in CORE_FORBIDDEN
    ]
    assert offending == []


def test_public_names_are_exported_and_exist() -> None:
    assert sorted(trainops.__all__) == sorted(set(trainops.__all__))
    for name in trainops.__all__:
        assert getattr(trainops, name) is not None, name
    assert {"connect", "TrainOps", "EpochRecord", "MonitorPolicy", "analyze"} <= set(trainops.__all__)


def test_package_is_typed() -> None:
    assert (PACKAGE / "py.typed").exists()


def test_pipeline_knows_nothing_of_storage_or_transport() -> None:
    forbidden = ("fastapi", "sqlalchemy", "httpx", "uvicorn", "typer", "rich", "alembic", "starlette")
    offending = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / "pipeline").rglob("*.py"))
        for name in imports_of(path)
        if name.split(".")[0] in forbidden
    ]
    assert offending == []
