"""Fixtures shared by every test package: real databases, created and dropped per test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks._postgres import admin_engine, postgres_database


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on 127.0.0.1, dropped after the test."""
    with postgres_database(prefix="bs_test") as url:
        yield url


@contextlib.contextmanager
def database_outage(url: str) -> Iterator[None]:
    """The PostgreSQL database at ``url`` refuses every connection inside the block.

    Its open connections are closed and new ones are refused ("not currently accepting
    connections"), as when the server restarts; at the end of the block it accepts them again.
    """
    name = url.rsplit("/", 1)[1]
    admin = admin_engine()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.exec_driver_sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )
        yield
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file in the test's own temporary folder."""
    return f"sqlite:///{tmp_path / 'boundsweep.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest) -> str:
    """Run a test once against SQLite and once against PostgreSQL (like Optuna's STORAGE_MODES)."""
    return request.getfixturevalue(f"{request.param}_url")
