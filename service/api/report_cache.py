"""Robustness reports computed once per campaign state and shared by every request for it.

A report reads every finished trial of a campaign and runs its bootstraps: a fraction of a
second to seconds of CPU and tens of MB while it runs. Eight clients opening the same page
at once ran it eight times (issue 19: about 23 s each, the API growing from 140 to 307 MB).

Here a report is keyed by what it is computed from: the campaign, the metric, the format and
the campaign's *state*, i.e. its arm studies and their trial counts per state (two grouped
queries, milliseconds). A trial that finishes, fails or is queued again changes the state; a
finished trial never changes. So a cached report is exactly the one a fresh computation
would give (but for its ``generated_at``), however old it is.

* Single flight: the first request for a key computes it; others for the same key wait for
  that result (or its error) instead of computing it again.
* Bounded memory: at most ``max_concurrent`` reports compute at once (the rest queue), and
  the rendered bytes are kept least-recently-used first out within ``max_bytes``.
* Bounded threads: the route runs in at most ``REPORT_THREADS_PER_COMPUTATION`` threads per
  computation allowed; further report requests wait without a thread, so a crowd of them
  never holds the threads the status and listing routes need.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

__all__ = ["REPORT_THREADS_PER_COMPUTATION", "ReportCache"]

REPORT_THREADS_PER_COMPUTATION = 4
"""Worker threads the report route may hold per computation allowed (the rest of a crowd of
report requests waits on the event loop): room for requests served from the cache, or
waiting on a computation, beside those computing, without taking the threads every other
route shares."""


@dataclass
class _Flight:
    """One computation in progress; the requests that wait on it."""

    done: threading.Event = field(default_factory=threading.Event)
    value: bytes | None = None
    error: BaseException | None = None


class ReportCache:
    """Rendered reports (bytes) by key, computed once however many ask at the same time.

    Args:
        max_bytes: Most bytes kept; the least recently used go first. A report larger than
            this is served but not kept.
        max_concurrent: Most reports computed at the same time (each holds a campaign's
            trials in memory while it runs).
    """

    def __init__(self, max_bytes: int, max_concurrent: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._flights: dict[Hashable, _Flight] = {}
        self._guard = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self.computed = 0
        """How many reports were computed (not served from the cache)."""
        self.peak_running = 0
        """Most computations that ran at the same time."""
        self._running = 0

    @property
    def size(self) -> int:
        """Bytes held now."""
        return self._size

    def get(self, key: Hashable, compute: Callable[[], bytes]) -> bytes:
        """The bytes of ``key``: cached, or computed once for every concurrent caller.

        Raises:
            Whatever ``compute`` raised, in every caller that waited for that computation.
        """
        with self._guard:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
        assert flight is not None
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.value is not None
            return flight.value
        try:
            with self._slots:
                with self._guard:
                    self._running += 1
                    self.peak_running = max(self.peak_running, self._running)
                try:
                    flight.value = compute()
                finally:
                    with self._guard:
                        self._running -= 1
                        self.computed += 1
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._guard:
                del self._flights[key]
                if flight.value is not None:
                    self._keep(key, flight.value)
            flight.done.set()
        return flight.value

    def _keep(self, key: Hashable, value: bytes) -> None:
        # Called with the guard held.
        if len(value) > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        self._size -= 0 if old is None else len(old)
        self._entries[key] = value
        self._size += len(value)
        while self._size > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._size -= len(old)
