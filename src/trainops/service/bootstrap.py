"""Opening the services on the configured database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainops import extras
from trainops.schemas.health import DatabaseStatus, DatabaseUpgrade, Health
from trainops.service.operations import OperationsService, utcnow
from trainops.settings import Settings
from trainops.store import (
    ModelStore,
    OperationStore,
    create_database_engine,
    current_revision,
    ensure_schema,
    head_revision,
    migrate,
)
from trainops.version import trainops_version

if TYPE_CHECKING:  # the train extra's services: imported when opened, so the base install works without them
    from trainops.service.registry import ModelRegistry
    from trainops.service.training import TrainingService


def open_service(settings: Settings) -> OperationsService:
    """An :class:`OperationsService` on ``settings``' database, with its schema made current.

    SQLite databases are migrated automatically; PostgreSQL ones must be upgraded with ``trainops db upgrade``
    (several servers may share one, and schema changes there deserve a deliberate step).
    """
    engine = create_database_engine(settings.resolved_database_url)
    auto = settings.auto_migrate and engine.dialect.name == "sqlite"
    ensure_schema(engine, auto_migrate=auto)
    return OperationsService(
        OperationStore(engine),
        progress_interval=settings.progress_interval,
        max_step_points=settings.max_step_points,
        history_cache_epochs=settings.history_cache_epochs,
    )


def open_registry(settings: Settings, service: OperationsService) -> ModelRegistry:
    """The model registry on the same database as ``service``, over the configured models and data directories.

    Raises:
        MissingExtraError: the ``train`` extra (torch, TA-Lib, pandas) is not installed.
    """
    extras.require("train", "the model registry")
    from trainops.service.registry import ModelRegistry  # the train extra, imported on demand

    return ModelRegistry(
        ModelStore(service.store.engine),
        service,
        models_dir=settings.resolved_models_dir,
        data_dir=settings.resolved_data_dir,
    )


def open_training(settings: Settings, service: OperationsService) -> TrainingService:
    """The strategy training service on ``service``, over the configured strategies, data and models directories.

    Raises:
        MissingExtraError: the ``train`` extra (torch, TA-Lib, pandas) is not installed.
    """
    extras.require("train", "strategy training")
    from trainops.service.training import TrainingService  # the train extra, imported on demand

    return TrainingService(
        service,
        strategies_dir=settings.resolved_strategies_dir,
        data_dir=settings.resolved_data_dir,
        models_dir=settings.resolved_models_dir,
    )


def check_health(service: OperationsService) -> Health:
    engine = service.store.engine
    return Health(
        status="ok",
        version=trainops_version(),
        database=engine.dialect.name,
        schema_revision=current_revision(engine, serving=True),
        time=utcnow(),
    )


def database_status(settings: Settings) -> DatabaseStatus:
    """The schema revision of ``settings``' database and the one this trainops needs; nothing is changed.

    Raises:
        ConfigurationError: the database URL is malformed or names a database trainops does not run on.
    """
    engine = create_database_engine(settings.resolved_database_url)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    return DatabaseStatus(revision=revision, required=head_revision())


def upgrade_database(settings: Settings, revision: str = "head") -> DatabaseUpgrade:
    """Migrate the schema of ``settings``' database to ``revision`` (the newest by default).

    SQLite databases are migrated when a service opens them; PostgreSQL ones need this deliberate step (see
    :func:`open_service`). Upgrading a current database does nothing and says so (``from_revision ==
    to_revision``).

    Raises:
        ConfigurationError: the database URL is malformed or names a database trainops does not run on.
        InvalidInputError: ``revision`` names no migration (the message lists them).
    """
    engine = create_database_engine(settings.resolved_database_url)
    try:
        before, after = migrate(engine, revision)
    finally:
        engine.dispose()
    shown = engine.url.render_as_string(hide_password=True)
    return DatabaseUpgrade(database=shown, from_revision=before, to_revision=after)
