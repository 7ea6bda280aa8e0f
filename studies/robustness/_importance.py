"""Hyperparameter importance of an arm, with the seed as one more factor, on the arm's grid.

Two measures, each normalised to sum to one over the factors:

* **fANOVA** (Hutter et al. 2014): the share of the score's variance that each factor's main
  effect explains, with every value of a factor weighted equally. Hutter et al. fit random
  forests to estimate these marginals from scattered samples; a grid campaign has measured
  every cell, so here the decomposition is computed on the cells themselves and is exact:
  the main effect of a value is the mean over the other factors' values minus the grand mean.
  A grid with missing cells (a trial that failed or is still running) gets the least-squares
  additive fit, which equals those means when no cell is missing.
* **PED-ANOVA** (Watanabe et al. 2023): for each factor, the Pearson divergence between the
  distribution of its values among the top ``TOP_QUANTILE`` of trials and among all trials,
  ``sum_v p_all(v) (p_top(v) / p_all(v) - 1)^2``: a factor whose values the best trials share
  matters. On a grid the values are discrete, so the divergence is a finite sum. It needs
  ``MIN_TOP_TRIALS`` trials in the top set; a smaller arm gets fANOVA alone.

The seed is a factor so that "final_lr matters less than the seed" shows up in the bars. A
sampled arm's continuous hyperparameter (every trial its own value) is cut into up to
``MAX_LEVELS`` bins of equal counts, so the same two measures apply.

Both are a few numpy operations on at most ``MAX_TRIALS_PER_ARM`` rows: no forests, and no
scikit-learn, whose import alone took seconds of every report (issue 19).
"""

from __future__ import annotations

import math

import numpy as np
from boundsweep.studies.robustness._campaign_data import ArmData

__all__ = ["MAX_LEVELS", "MIN_TRIALS", "TOP_QUANTILE", "fanova", "importance", "ped_anova"]

MIN_TRIALS = 8
"""Fewer completed trials than this: no importance (too few to say anything)."""
MAX_LEVELS = 8
"""A factor with more distinct values than this is cut into this many equal-count bins."""
TOP_QUANTILE = 0.1
"""PED-ANOVA's top set: the best 10% of trials (Optuna's ``target_quantile`` default)."""
MIN_TOP_TRIALS = 5
"""PED-ANOVA needs this many trials in its top set (so 41+ trials at the 10% quantile): with
two or three, which of them happen to share a seed decides the seed's bar. Optuna's own
documentation asks for at least 5 trials above the quantile."""


def _levels(values: list[float]) -> np.ndarray:
    """Each value's level index: its rank among the distinct values, or its bin."""
    distinct = sorted(set(values))
    if len(distinct) <= MAX_LEVELS:
        index = {v: i for i, v in enumerate(distinct)}
        return np.array([index[v] for v in values])
    # Equal-count bins by rank (ties share a bin): the scale of the values does not matter.
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return np.minimum(ranks * MAX_LEVELS // len(values), MAX_LEVELS - 1)


def fanova(levels: dict[str, np.ndarray], scores: np.ndarray) -> dict[str, float] | None:
    """Main-effect variance shares of each factor (normalised to sum to one).

    Args:
        levels: factor -> each trial's level index (0..L-1).
        scores: each trial's score. Several trials in one cell (same levels) are averaged.

    Returns:
        None when no factor has any main effect (every cell scores the same).
    """
    names = list(levels)
    cells: dict[tuple[int, ...], list[float]] = {}
    for row, score in zip(zip(*(levels[n] for n in names), strict=True), scores, strict=True):
        cells.setdefault(tuple(int(v) for v in row), []).append(float(score))
    keys = list(cells)
    y = np.array([np.mean(cells[k]) for k in keys])
    sizes = [int(levels[n].max()) + 1 for n in names]
    # One-hot design of the additive model y = mu + sum_f effect_f[level_f]. On a full grid
    # the least-squares effects are the marginal means minus the grand mean.
    design = np.zeros((len(keys), 1 + sum(sizes)))
    design[:, 0] = 1.0
    offsets = np.cumsum([1, *sizes[:-1]])
    for row, key in enumerate(keys):
        design[row, offsets + np.array(key)] = 1.0
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    variances = {}
    for name, offset, size in zip(names, offsets, sizes, strict=True):
        effect = coefficients[offset : offset + size]
        seen = np.zeros(size, dtype=bool)
        seen[np.unique(levels[name])] = True
        effect = effect[seen] - effect[seen].mean()  # each value tried weighs the same
        variances[name] = float(np.mean(effect**2))
    return _normalised(variances)


def ped_anova(levels: dict[str, np.ndarray], goodness: np.ndarray) -> dict[str, float] | None:
    """Pearson divergence of each factor's top-quantile distribution from its overall one.

    Args:
        levels: factor -> each trial's level index.
        goodness: each trial's score oriented so that higher is better.

    Returns:
        None when the top trials are spread over every factor exactly as all trials are.

    Raises:
        ValueError: fewer than ``MIN_TOP_TRIALS`` trials in the top quantile.
    """
    n = len(goodness)
    n_top = math.ceil(TOP_QUANTILE * n - 1e-9)
    if n_top < MIN_TOP_TRIALS:
        raise ValueError(
            f"needs {MIN_TOP_TRIALS}+ trials in its top {TOP_QUANTILE:.0%}; "
            f"{n} completed trials give {n_top}"
        )
    # Best first; ties keep the trials' order, so the same arm gives the same answer.
    top = np.argsort(-goodness, kind="stable")[:n_top]
    divergences = {}
    for name, level in levels.items():
        p_all = np.bincount(level) / n
        p_top = np.bincount(level[top], minlength=len(p_all)) / n_top
        tried = p_all > 0
        divergences[name] = float(np.sum(p_all[tried] * (p_top[tried] / p_all[tried] - 1) ** 2))
    return _normalised(divergences)


def _normalised(scores: dict[str, float]) -> dict[str, float] | None:
    total = sum(scores.values())
    if not total > 1e-12 * max(1.0, len(scores)):
        return None
    return {name: value / total for name, value in scores.items()}


def importance(arm: ArmData) -> dict:
    """fANOVA and PED-ANOVA importances over the arm's varied hyperparameters and the seed."""
    varied = arm.varied()
    records = arm.records
    seeds = sorted({r.seed for r in records})
    factors = varied + (["seed"] if len(seeds) > 1 else [])
    if len(factors) < 2 or len(records) < MIN_TRIALS:
        return {
            "factors": factors,
            "fanova": None,
            "ped_anova": None,
            "reason": f"needs 2+ varying factors and {MIN_TRIALS}+ completed trials",
        }
    levels = {name: _levels([dict(r.config)[name] for r in records]) for name in varied}
    if "seed" in factors:
        levels["seed"] = _levels([float(r.seed) for r in records])
    scores = np.array([r.value for r in records], dtype=float)
    out: dict = {"factors": factors}
    measures = {
        "fanova": lambda: fanova(levels, scores),
        "ped_anova": lambda: ped_anova(levels, scores if arm.maximize else -scores),
    }
    for key, measure in measures.items():
        try:
            out[key] = measure()
        except ValueError as error:
            out[key], out[f"{key}_error"] = None, str(error)
            continue
        if out[key] is None:
            out[f"{key}_error"] = "every factor scores the same: nothing to attribute"
    return out
