"""Throwaway PostgreSQL databases, for the tests' ``postgres_url`` fixture (one per test) and
for benchmark runs. ``BOUNDSWEEP_TEST_POSTGRES`` is the admin URL (default: the local server's
``postgres`` database)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

POSTGRES_ADMIN_URL = os.environ.get(
    "BOUNDSWEEP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def admin_engine() -> sa.Engine:
    """An engine on the admin database, outside transactions (CREATE/DROP/ALTER DATABASE)."""
    return sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


@contextmanager
def postgres_database(prefix: str = "bs_bench") -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database named ``<prefix>_<random>``, dropped
    afterwards (with its connections)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
