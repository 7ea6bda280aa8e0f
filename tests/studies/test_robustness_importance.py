"""Importance on the grid against answers known by construction.

fANOVA's shares are the main-effect variances of a function built from known parts; PED-ANOVA's
are Pearson divergences counted by hand. Both through the real analysis too (a synthetic
campaign in SQLite), in both directions.
"""

from __future__ import annotations

import itertools

import numpy as np
import optuna
import pytest
from boundsweep.studies.robustness._campaign_data import load_campaign
from boundsweep.studies.robustness._importance import (
    MAX_LEVELS,
    _levels,
    fanova,
    importance,
    ped_anova,
)
from boundsweep.studies.robustness._synthetic import build_synthetic_campaign


def _centred(values: list[float]) -> np.ndarray:
    v = np.array(values, dtype=float)
    return v - v.mean()


# Main effects and a pure interaction (centred both ways: it adds to no main effect).
A = _centred([0.0, 3.0, 4.0, 1.0, -2.0])  # x1, 5 values
B = _centred([1.0, 0.0, 2.0, 0.5])  # x2, 4 values
E = _centred([0.3, -0.1, 0.0])  # seed, 3 values
C, D = _centred([1, -1, 2, 0, -2]), _centred([1, 0, -1, 0.5])


def _grid() -> tuple[dict[str, np.ndarray], np.ndarray]:
    rows = list(itertools.product(range(5), range(4), range(3)))
    levels = {name: np.array([r[i] for r in rows]) for i, name in enumerate(("x1", "x2", "seed"))}
    y = np.array([A[i] + B[j] + C[i] * D[j] + E[s] for i, j, s in rows])
    return levels, y


def _truth(*parts: np.ndarray) -> list[float]:
    variances = [float(np.mean(p**2)) for p in parts]
    return [v / sum(variances) for v in variances]


def test_fanova_is_exact_on_a_full_grid_with_an_interaction() -> None:
    levels, y = _grid()
    shares = fanova(levels, y + 10.0)  # a constant shifts nothing
    assert list(shares) == ["x1", "x2", "seed"]
    assert list(shares.values()) == pytest.approx(_truth(A, B, E), abs=1e-12)


def test_fanova_recovers_an_additive_function_from_a_grid_with_holes() -> None:
    levels, _ = _grid()
    y = np.array([A[i] + B[j] + E[s] for i, j, s in zip(*levels.values(), strict=True)])
    keep = np.random.default_rng(0).random(len(y)) > 0.3  # about 30% of the cells missing
    shares = fanova({k: v[keep] for k, v in levels.items()}, y[keep])
    assert list(shares.values()) == pytest.approx(_truth(A, B, E), abs=1e-9)


def test_repeated_cells_are_averaged_not_counted_twice() -> None:
    levels, y = _grid()
    twice = {k: np.concatenate([v, v[:5]]) for k, v in levels.items()}
    assert fanova(twice, np.concatenate([y, y[:5]])) == pytest.approx(fanova(levels, y))


def test_a_continuous_factor_is_binned_and_still_found() -> None:
    rng = np.random.default_rng(1)
    lr = 10 ** rng.uniform(-5, 0, 200)
    noise = rng.uniform(0, 1, 200)  # a sampled factor with no effect
    levels = {"lr": _levels(list(lr)), "other": _levels(list(noise))}
    assert levels["lr"].max() == MAX_LEVELS - 1
    shares = fanova(levels, -((np.log10(lr) + 2.5) ** 2))
    assert shares["lr"] > 0.95


def test_ped_anova_matches_the_divergences_counted_by_hand() -> None:
    levels, _ = _grid()
    x1, x2, seed = levels.values()
    # x1 = 2 is best by far, then x2 = 3, then 2; the seed barely moves the order inside.
    y = -10.0 * np.abs(x1 - 2) + 0.1 * x2 + 0.001 * seed
    shares = ped_anova(levels, y)
    # 60 trials, top 6: all at x1 = 2 (p_all 1/5 each): 4/5 * 1 + 1/5 * (5 - 1)^2 = 4;
    # half at x2 = 3, half at x2 = 2 (p_all 1/4): 2 * 1/4 + 2 * 1/4 * (2 - 1)^2 = 1;
    # two of each seed: 0.
    assert shares == pytest.approx({"x1": 4 / 5, "x2": 1 / 5, "seed": 0.0}, abs=1e-12)


def test_ped_anova_refuses_a_top_set_too_small_to_mean_anything() -> None:
    levels, y = _grid()
    first = {k: v[:40] for k, v in levels.items()}  # top 10% of 40 is 4 trials
    with pytest.raises(
        ValueError, match=r"needs 5\+ trials in its top 10%; 40 completed trials give 4"
    ):
        ped_anova(first, y[:40])
    assert ped_anova({k: v[:41] for k, v in levels.items()}, y[:41]) is not None


def test_no_effect_gives_no_shares() -> None:
    levels, y = _grid()
    assert fanova(levels, np.zeros_like(y)) is None


@pytest.fixture(scope="module")
def campaign_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('importance') / 'c.db'}"
    build_synthetic_campaign(
        url, "c", final_lr_matters=True, seeds=[0, 1, 2], epochs=2, arms=["adabound"]
    )
    return url


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_report_finds_the_factor_that_matters_in_either_direction(
    campaign_url: str, direction: str
) -> None:
    campaign = load_campaign(campaign_url, "c")
    arm = campaign.arms[0]
    if direction == "minimize":  # the same arm scored as an error rate: the same factors matter
        arm.direction = optuna.study.StudyDirection.MINIMIZE
        arm.records = [r.__class__(**{**r.__dict__, "value": 100 - r.value}) for r in arm.records]
    result = importance(arm)
    assert result["factors"] == ["final_lr", "gamma", "seed"]
    for key in ("fanova", "ped_anova"):
        shares = result[key]
        assert sum(shares.values()) == pytest.approx(1.0)
        # Only final_lr moves the synthetic score (gamma does not, the seed by 0.3 points).
        assert max(shares, key=shares.get) == "final_lr", (key, shares)
    assert result["fanova"]["final_lr"] > 0.99
