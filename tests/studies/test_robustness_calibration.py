"""The verdicts against ground truth: simulated campaigns whose true answer is known.

A small, fast version of benchmarks/bench_verdicts.py (which runs 300+ campaigns per cell):
each test reads one cell where the verdicts before issue 20 failed badly (0% coverage for a
flat hyperparameter, 10-20% decisive at the threshold, 17-28% "supported" dynamics at
-margin), with a bound loose enough for 40 campaigns and tight enough to catch a break.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from boundsweep.studies.robustness._student import t_cdf, t_quantile
from scipy.special import stdtr, stdtrit

from benchmarks._verdict_sim import Cell, measure


def test_student_t_matches_scipy() -> None:
    for df in (1, 2, 3, 4, 7, 16, 95):
        for x in (-30.0, -4.3, -1.0, 0.0, 0.5, 2.0, 12.0):
            assert t_cdf(x, df) == pytest.approx(float(stdtr(df, x)), abs=1e-12)
        for p in (1e-6, 0.0021, 0.025, 0.5, 0.975, 0.999):
            assert t_quantile(p, df) == pytest.approx(float(stdtrit(df, p)), rel=1e-8)
    assert t_cdf(math.inf, 3) == 1.0 and t_quantile(1.0, 3) == math.inf
    with pytest.raises(ValueError, match="df"):
        t_cdf(1.0, 0)


def test_a_flat_hyperparameter_gets_an_interval_holding_zero() -> None:
    """max - min over a flat sweep is noise alone; its interval must still reach 0."""
    tally = measure(Cell(0.0, seeds=3, noise=1.5), campaigns=40)
    assert tally.rate(tally.covered) >= 0.9
    assert np.median(tally.estimates) < 0.1


def test_a_claim_at_its_threshold_is_rarely_decided() -> None:
    """True ratio exactly 0.5, 3 seeds, noise 2 points: decided 10-20% of the time before."""
    tally = measure(Cell(0.5, seeds=3, noise=2.0), campaigns=40)
    assert tally.rate(tally.decisive_alone) <= 0.06
    assert tally.rate(tally.decisive) <= 0.03
    assert tally.rate(tally.covered) >= 0.9


def test_dynamics_at_minus_margin_are_not_supported_through_the_winners_curse() -> None:
    """25 tied configurations (ratio 0), 5 seeds: picking the best on the seeds it is
    compared on made "supported" 17-28% of the time at a true -margin."""
    tally = measure(Cell(0.0, seeds=5, noise=2.0), campaigns=40)
    assert tally.rate(tally.dynamics_supported_alone) <= 0.04
    assert tally.rate(tally.tuning_wrong) <= 0.03


def test_a_robust_arm_is_found_with_five_seeds() -> None:
    tally = measure(Cell(0.25, seeds=5, noise=1.0), campaigns=16)
    assert tally.rate(tally.supported) >= 0.9
    assert tally.rate(tally.covered) >= 0.9
