"""A small kill storm on batched worker processes (``benchmarks/bench_storm.py`` runs a big one)."""

from __future__ import annotations

import pytest

from benchmarks.bench_storm import storm


@pytest.mark.postgres
def test_kill_9_and_sigterm_then_sigkill_leave_every_trial_complete_exactly_once(
    postgres_url: str,
) -> None:
    # 12 trials, 2 batched workers, 4 rounds of kill -9 or SIGTERM + SIGKILL 0.05-0.4 s later.
    result = storm(postgres_url, workers=2, rounds=4, grid=3, seeds=2, epochs=30, batch=4)
    assert result.kills + result.terms >= 2  # the campaign may run out before round 4
    assert result.complete_once, result
    assert result.fails_without_copy == 0, result
    # The storm hit running batches, and each hit left its FAIL (given back or failed stale).
    assert result.hits > 0, result
    assert result.fails >= result.hits, result
