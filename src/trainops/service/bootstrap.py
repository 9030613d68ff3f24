"""Opening the services on the configured database."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from trainops.schemas.health import Health
from trainops.service.operations import OperationsService, utcnow
from trainops.service.registry import ModelRegistry
from trainops.settings import Settings
from trainops.store import ModelStore, OperationStore, create_database_engine, current_revision, ensure_schema


def trainops_version() -> str:
    try:
        return version("trainops")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def open_service(settings: Settings) -> OperationsService:
    """An :class:`OperationsService` on ``settings``' database, with its schema made current.

    SQLite databases are migrated automatically; PostgreSQL ones must be upgraded with ``trainops db upgrade``
    (several servers may share one, and schema changes there deserve a deliberate step).
    """
    engine = create_database_engine(settings.resolved_database_url)
    auto = settings.auto_migrate and engine.dialect.name == "sqlite"
    ensure_schema(engine, auto_migrate=auto)
    return OperationsService(OperationStore(engine), progress_interval=settings.progress_interval)


def open_registry(settings: Settings, service: OperationsService) -> ModelRegistry:
    """The model registry on the same database as ``service``, over the configured models and data directories."""
    return ModelRegistry(
        ModelStore(service.store.engine),
        service,
        models_dir=settings.resolved_models_dir,
        data_dir=settings.resolved_data_dir,
    )


def check_health(service: OperationsService) -> Health:
    engine = service.store.engine
    return Health(
        status="ok",
        version=trainops_version(),
        database=engine.dialect.name,
        schema_revision=current_revision(engine),
        time=utcnow(),
    )
