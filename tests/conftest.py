"""Fixtures shared by every test package: real databases, created and dropped per test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks._pgbouncer import PgBouncer, pgbouncer
from benchmarks._postgres import PostgresServer, admin_engine, postgres_database, postgres_server

pytest_plugins = ["tests._no_skips", "pytester"]

_SERVER_USED = pytest.StashKey[PostgresServer]()


@pytest.fixture(scope="session")
def postgres_server_in_use(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """The PostgreSQL server of the whole session: the configured one when it answers, else
    one the suite starts itself (and stops at the end). Started by the first test that needs
    it, so a run with no PostgreSQL test starts none."""
    with postgres_server() as server:
        request.config.stash[_SERVER_USED] = server
        yield server


@pytest.fixture
def postgres_url(postgres_server_in_use: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the session's server, dropped after the test."""
    with postgres_database(prefix="bs_test") as url:
        yield url


@pytest.fixture(scope="session")
def pgbouncer_in_use(postgres_server_in_use: PostgresServer) -> Iterator[PgBouncer]:
    """A real PgBouncer in transaction mode in front of the session's PostgreSQL (up to 4
    server connections per database), started by the first test that needs it. A machine
    without PgBouncer fails here with what to install (``make pgbouncer``), never a skip."""
    with pgbouncer(postgres_server_in_use.admin_url, pool_size=4) as bouncer:
        yield bouncer


@pytest.fixture
def pooled_url(postgres_url: str, pgbouncer_in_use: PgBouncer) -> str:
    """A fresh PostgreSQL database (``postgres_url``'s) reached through PgBouncer."""
    return pgbouncer_in_use.url(postgres_url)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Say which PostgreSQL the run used, so a run on the suite's own server is no surprise."""
    server = config.stash.get(_SERVER_USED, None)
    if server is not None:
        terminalreporter.write_line(server.describe())


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
