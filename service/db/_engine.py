"""One way to turn a storage URL into a SQLAlchemy engine for the service's queries."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["make_engine", "normalize_url"]


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
    if url.startswith("sqlite"):
        # Workers write to the same file; a reader should queue behind them, not error out.
        kwargs.setdefault("connect_args", {"timeout": 30})
    else:
        kwargs.setdefault("pool_pre_ping", True)
        if url.startswith("postgresql"):
            # /readyz must answer "unreachable", not hang on a host that drops packets.
            kwargs.setdefault("connect_args", {"connect_timeout": 10})
    return sa.create_engine(url, **kwargs)
