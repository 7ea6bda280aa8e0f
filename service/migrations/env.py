"""Alembic environment: runs on the connection `service.db.migrate` hands over."""

from __future__ import annotations

from alembic import context
from boundsweep.service.db._migrate import VERSION_TABLE
from boundsweep.service.db._tables import Base


def _only_service_tables(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001
    # Optuna's tables live in the same database; autogenerate must not propose dropping them.
    return type_ != "table" or name.startswith("bs_")


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through service.db.migrate(url)")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_object=_only_service_tables,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_run_online()
