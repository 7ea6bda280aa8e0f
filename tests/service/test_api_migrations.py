"""The service tables' migrations: from code, idempotent, safe from concurrent callers, and
never touching Optuna's own Alembic version table."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from boundsweep.service.db import make_engine, migrate
from boundsweep.studies.storage import open_storage


def _tables_and_version(url: str) -> tuple[set[str], list[str]]:
    engine = make_engine(url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        with engine.connect() as connection:
            versions = list(
                connection.scalars(sa.text("SELECT version_num FROM bs_alembic_version"))
            )
    finally:
        engine.dispose()
    return tables, versions


def test_concurrent_migrations_leave_one_head(storage_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def run() -> None:
        start.wait()
        try:
            migrate(storage_url)
        except BaseException as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    migrate(storage_url)  # and once more: idempotent
    tables, versions = _tables_and_version(storage_url)
    assert {"bs_campaigns", "bs_schedules", "bs_schedule_runs"} <= tables
    assert versions == ["0004"]


def test_optuna_keeps_its_own_version_table(storage_url: str) -> None:
    open_storage(storage_url)
    engine = make_engine(storage_url)
    with engine.connect() as connection:
        optuna_version = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
    engine.dispose()
    migrate(storage_url)
    open_storage(storage_url)  # Optuna still finds its schema current
    _, versions = _tables_and_version(storage_url)
    assert versions == ["0004"]
    engine = make_engine(storage_url)
    with engine.connect() as connection:
        assert (
            connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == optuna_version
        )
    engine.dispose()
