"""A short-lived, single-flight cache of campaign status responses.

Dashboards and scripts poll `GET /campaigns/{name}`; trials take seconds to hours, so a status
one second old is as good as a fresh one. Caching it that long turns N concurrent polls into
one reading of the database (and one JSON rendering), and the per-key lock keeps a burst of
misses from running the same queries N times at once (single flight).
`BOUNDSWEEP_STATUS_CACHE_SECONDS=0` turns it off.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["StatusCache"]

T = TypeVar("T")


class StatusCache(Generic[T]):
    """Values computed per key, reused for `ttl` seconds.

    Args:
        ttl: Seconds a value stays fresh; 0 or less computes every time.
        max_entries: Least recently stored entries beyond this are dropped.
    """

    def __init__(self, ttl: float, max_entries: int = 1024) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _fresh(self, key: str) -> tuple[bool, T | None]:
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry[0] < self.ttl:
            return True, entry[1]
        return False, None

    def get(self, key: str, compute: Callable[[], T]) -> T:
        """The fresh value of `key`, computing it (once, for all waiting callers) if stale."""
        if self.ttl <= 0:
            return compute()
        hit, value = self._fresh(key)
        if hit:
            return value  # type: ignore[return-value]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            hit, value = self._fresh(key)
            if hit:
                return value  # type: ignore[return-value]
            value = compute()
            with self._guard:
                self._entries[key] = (time.monotonic(), value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    old, _ = self._entries.popitem(last=False)
                    self._locks.pop(old, None)
            return value

    def forget(self, key: str) -> None:
        """Drop `key` (after a write that changes it, e.g. cancel)."""
        with self._guard:
            self._entries.pop(key, None)
