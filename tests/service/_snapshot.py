"""Every row of every table of a database, to prove a refused request changed nothing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from boundsweep.service.db import make_engine


def database_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Table name → its rows as tuples, sorted by their text (stable across reads)."""
    engine = make_engine(url, poolclass=sa.NullPool)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return {
                name: sorted((tuple(row) for row in connection.execute(table.select())), key=repr)
                for name, table in sorted(metadata.tables.items())
            }
    finally:
        engine.dispose()
