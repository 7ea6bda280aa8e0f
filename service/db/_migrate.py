"""Bring the service tables to the latest revision, from code, safely from several processes.

alembic is imported by ``migrate`` itself: only the commands that migrate (``serve``,
``scheduler``, ``submit``, ``demo``) pay for it, not every ``boundsweep`` command that
imports the service tables (``status``, ``report``, ``--version``, ``--help``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from boundsweep.service.db._engine import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["VERSION_TABLE", "migrate"]

# Optuna keeps its own revisions in `alembic_version`; ours must never touch that table.
VERSION_TABLE = "bs_alembic_version"
_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# Any constant works; it only has to be the same in every process migrating this database.
_PG_LOCK_KEY = 0x62730001


def _alembic_config(connection: sa.Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _serialising_engine(url: str) -> sa.Engine:
    """An engine whose transactions exclude every other migrating process from the start."""
    engine = make_engine(url, poolclass=sa.NullPool)
    if engine.dialect.name == "sqlite":
        # pysqlite only begins a transaction before DML, so DDL would autocommit piecemeal.
        # Taking the write lock up front makes the whole upgrade one atomic step; a second
        # process waits for it and then finds the tables at head.
        @sa.event.listens_for(engine, "connect")
        def _no_implicit_transactions(dbapi_connection, _record) -> None:  # noqa: ANN001
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(connection: sa.Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def migrate(url: str) -> None:
    """Upgrade the service tables in `url` to the latest revision (`alembic upgrade head`).

    Idempotent. Safe when several processes call it at once: PostgreSQL serialises them with a
    transaction-scoped advisory lock, SQLite with an immediate (write-locked) transaction.

    Args:
        url: SQLAlchemy URL of the database shared with Optuna.
    """
    from alembic import command

    engine = _serialising_engine(url)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY}
                )
            command.upgrade(_alembic_config(connection), "head")
    finally:
        engine.dispose()
