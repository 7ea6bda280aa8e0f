"""One way to turn a storage URL into a SQLAlchemy engine for the service's queries."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

# Not from studies.storage, which loads torch.
from boundsweep.studies.storage import ensure_wal, postgres_connect_args

__all__ = ["make_engine", "normalize_url"]

SQLITE_TIMEOUT = 30.0
"""Seconds a query on a SQLite file waits for another connection's lock."""


def normalize_url(url: str) -> str:
    """Map a bare `postgresql://` URL to the psycopg 3 driver, the only one installed."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine over `url`; SQLite waits for locks instead of failing at once.

    Args:
        url: SQLAlchemy URL (`sqlite:///file.db`, `postgresql+psycopg://...`).
        **kwargs: Passed to `sqlalchemy.create_engine`.
    """
    url = normalize_url(url)
    if not url.startswith("sqlite"):
        kwargs.setdefault("pool_pre_ping", True)
        # /readyz must answer "unreachable", not hang on a host that drops packets; and
        # statements are not prepared, so PgBouncer in transaction mode can sit in between.
        kwargs.setdefault("connect_args", postgres_connect_args(url))
        return sa.create_engine(url, **kwargs)
    # Workers write to the same file; a reader should queue behind them, not error out.
    kwargs.setdefault("connect_args", {"timeout": SQLITE_TIMEOUT})
    engine = sa.create_engine(url, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _wal(dbapi_connection: Any, _record: Any) -> None:
        # The service's tables are usually made first, so the file is in WAL mode from the
        # start, before workers and schedulers share it (the Optuna storage does the same).
        ensure_wal(dbapi_connection, SQLITE_TIMEOUT)

    return engine
