"""Counting what a process asks of its databases: every transaction begun and statement sent
by every SQLAlchemy engine inside a ``counting()`` block (the creation and trial-transaction
benchmarks, and the tests that bound those counts)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa


@dataclass
class DatabaseCalls:
    """Transactions begun and statements sent by every engine of this process."""

    transactions: int = 0
    statements: int = 0
    texts: list[str] = field(default_factory=list)
    in_transaction: list[int] = field(default_factory=list)
    """The transaction (its number, from 1) each statement ran in."""

    def begin(self, *_: Any) -> None:
        self.transactions += 1

    def statement(self, _conn: Any, _cursor: Any, text: str, *_: Any) -> None:
        self.statements += 1
        self.texts.append(" ".join(text.split())[:100])
        self.in_transaction.append(self.transactions)

    def from_first_claim(self) -> tuple[int, int]:
        """(transactions, statements) from the first trial claim on: the trials' own lifecycle
        (claims, live epochs, records, finishes), without a worker's start-up reads."""
        first = next(
            i
            for i, text in enumerate(self.texts)
            if text.startswith("UPDATE trials SET state=") and "datetime_start" in text
        )
        return self.transactions - self.in_transaction[first] + 1, self.statements - first


@contextmanager
def counting() -> Iterator[DatabaseCalls]:
    """Count every transaction and statement of every engine inside the block."""
    calls = DatabaseCalls()
    sa.event.listen(sa.engine.Engine, "begin", calls.begin)
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", calls.statement)
    try:
        yield calls
    finally:
        sa.event.remove(sa.engine.Engine, "begin", calls.begin)
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", calls.statement)
