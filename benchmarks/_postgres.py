"""A throwaway PostgreSQL database for a benchmark run, as the tests' ``postgres_url`` fixture
makes one per test (``BOUNDSWEEP_TEST_POSTGRES``: the admin URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

POSTGRES_ADMIN_URL = os.environ.get(
    "BOUNDSWEEP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, dropped afterwards."""
    name = f"bs_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
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
