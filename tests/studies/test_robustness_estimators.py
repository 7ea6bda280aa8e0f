"""The report's estimators against values computed by hand or by brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from boundsweep.studies.robustness._bounds import log_spaced_bounds
from boundsweep.studies.robustness._expected_max import (
    expected_max_unbiased,
    expected_max_with_replacement,
    tunability,
)
from boundsweep.studies.robustness._spread import Configuration, bootstrap_means, interval, sweep


def test_expected_max_with_replacement_matches_hand_computation() -> None:
    # scores 1, 2, 3: P(max = v_i) = (i/3)^k - ((i-1)/3)^k
    # k=2: (1 + 2*3 + 3*5) / 9 = 22/9; k=3: (1 + 2*7 + 3*19) / 27 = 72/27
    got = expected_max_with_replacement([3.0, 1.0, 2.0])
    assert got == pytest.approx([2.0, 22 / 9, 72 / 27])


def test_expected_max_unbiased_matches_hand_computation() -> None:
    # size-2 subsets of {1, 2, 3, 4}: maxima 2, 3, 4, 3, 4, 4 -> 20/6; size-3: 3, 4, 4, 4 -> 15/4
    got = expected_max_unbiased([4.0, 1.0, 3.0, 2.0])
    assert got == pytest.approx([2.5, 20 / 6, 15 / 4, 4.0])


def test_expected_max_unbiased_equals_the_mean_over_every_subset() -> None:
    scores = np.random.default_rng(7).normal(size=8)
    got = expected_max_unbiased(scores)
    for k in range(1, 9):
        brute = np.mean([max(c) for c in itertools.combinations(scores, k)])
        assert got[k - 1] == pytest.approx(brute)


def test_expected_max_with_replacement_equals_the_mean_over_every_draw() -> None:
    scores = np.random.default_rng(3).normal(size=5)
    got = expected_max_with_replacement(scores)
    for k in range(1, 4):
        brute = np.mean([max(c) for c in itertools.product(scores, repeat=k)])
        assert got[k - 1] == pytest.approx(brute)


def test_expected_max_handles_ties_and_large_n() -> None:
    assert expected_max_unbiased([5.0] * 4) == pytest.approx([5.0] * 4)
    big = np.arange(400, dtype=float)
    curve = expected_max_unbiased(big)
    assert np.all(np.isfinite(curve))
    assert curve[0] == pytest.approx(big.mean())
    assert curve[-1] == pytest.approx(399.0)
    assert np.all(np.diff(curve) >= -1e-9)


def test_tunability_weights() -> None:
    # CPE weights (3, 2, 1)/6, CPL weights (1, 2, 3)/6 over the curve 1, 2, 3
    got = tunability([1.0, 2.0, 3.0])
    assert got == pytest.approx(
        {"budget": 3, "one_shot": 1.0, "peak": 3.0, "cpe": 10 / 6, "cpl": 14 / 6}
    )
    assert tunability([1.0, 2.0, 3.0], budget=2)["peak"] == 2.0


def test_bootstrap_means_and_interval() -> None:
    rng = np.random.default_rng(0)
    constant = bootstrap_means([np.array([2.0, 2.0, 2.0])], rng, 200)
    assert np.all(constant == 2.0)
    spread = bootstrap_means([np.array([0.0, 1.0])], rng, 4000)[:, 0]
    # resampling two seeds: means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    assert np.mean(spread == 0.5) == pytest.approx(0.5, abs=0.03)
    assert interval(spread) == [0.0, 1.0]


def test_sweep_holds_the_other_hyperparameters_at_the_anchor() -> None:
    def config(f: float, g: float) -> Configuration:
        return Configuration({"final_lr": f, "gamma": g}, [0], np.array([f + g]))

    configs = [config(f, g) for f in (0.01, 0.1, 1.0) for g in (1e-3, 1e-2)]
    picked = sweep(configs, "final_lr", config(0.1, 1e-2))
    assert [c.params["final_lr"] for c in picked] == [0.01, 0.1, 1.0]
    assert {c.params["gamma"] for c in picked} == {1e-2}


def test_bound_schedule_follows_the_paper_formula() -> None:
    out = log_spaced_bounds(final_lr=0.1, gamma=1e-3, steps=10_000)
    t = np.array(out["steps"])
    assert t[0] == 1 and t[-1] == 10_000
    assert out["lower"] == pytest.approx(list(0.1 * (1 - 1 / (1e-3 * t + 1))))
    assert out["upper"] == pytest.approx(list(0.1 * (1 + 1 / (1e-3 * t))))
    # both bounds close on final_lr from either side
    assert out["lower"][-1] < 0.1 < out["upper"][-1]
    assert math.isclose(out["upper"][-1] / out["lower"][-1], (1 + 0.1) / (1 - 1 / 11))
