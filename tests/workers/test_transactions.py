"""What a trial's lifecycle costs the database, counted on the real worker: upper bounds.

``benchmarks/bench_trial_transactions.py`` prints the figures (before the runner of issue 21:
a batch of 14 took 15 transactions and 128 statements from its claim to its finish, a single
trial about 3 transactions and 13 statements).
"""

from __future__ import annotations

from benchmarks.bench_trial_transactions import TRIALS, measure


def test_a_batch_of_14_costs_at_most_4_transactions_from_claim_to_finish(storage_url: str) -> None:
    calls = measure(storage_url, "batched", batch_trials=TRIALS)
    transactions, statements = calls.from_first_claim()
    # The claim, the finish, and at most two writes of live epochs (one a second).
    assert transactions <= 4, calls.texts
    # One statement per table for all 14 trials: claim 7, finish 4, live epochs 3 each.
    assert statements <= 7 + 4 + 2 * 3, calls.texts
    assert calls.transactions <= 10  # the worker's start-up reads included


def test_a_single_trial_costs_its_claim_and_its_finish(storage_url: str) -> None:
    calls = measure(storage_url, "single", batch_trials=1)
    transactions, statements = calls.from_first_claim()
    # Per trial: claim (7 statements) and finish (4); the arms' counts are read now and then.
    assert transactions <= 2.5 * TRIALS, calls.texts
    assert statements <= 12 * TRIALS, calls.texts
