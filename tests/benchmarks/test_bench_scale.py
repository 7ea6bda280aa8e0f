"""The scale benchmark's small version: 20 simulated workers through a real PgBouncer.

The full run (``benchmarks/bench_scale.py``: 100, 300 and 1,000 workers) is a benchmark;
this one keeps its two checks in the suite: every trial COMPLETE exactly once through real
claims, heartbeats and finishes, and never more server connections than the pool.
"""

from __future__ import annotations

import pytest

from benchmarks._pgbouncer import PgBouncer
from benchmarks.bench_scale import run_scale


@pytest.mark.postgres
def test_twenty_workers_through_pgbouncer_finish_every_trial_once(
    postgres_url: str, pgbouncer_in_use: PgBouncer
) -> None:
    result = run_scale(postgres_url, pgbouncer_in_use, workers=20, trials_per_worker=3, processes=2)
    assert result.problems == []
    assert result.trials >= 60 and len(result.claim_ms) == result.trials
    # 20 clients shared the pool's 4 server connections (PgBouncer's count and PostgreSQL's).
    assert result.max_clients > pgbouncer_in_use.pool_size
    assert 0 < result.max_server_connections <= pgbouncer_in_use.pool_size
    assert result.max_backends <= pgbouncer_in_use.pool_size
