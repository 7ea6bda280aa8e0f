"""The evidence a verdict stands on: seed-aligned scores, their noise, and what limits them.

Every configuration of a campaign runs the same seeds, and one seed index moves every
configuration that shares it (same data order and initialisation), so scores are compared
seed by seed: a ``Block`` holds the scores of some configurations on the seeds they all have.
The seed's own effect cancels in any difference taken within one seed; the noise left is
estimated by the residual variance of the two-way (seed + configuration) fit, pooled over the
block's configurations (``(seeds - 1)(configurations - 1)`` degrees of freedom).

Selection is always honest in one of two ways (docs/report.md, "Verdicts"): either a bound
holds for every candidate at once (the best of several is bounded by bounding each), or the
candidate is chosen on the other seeds and scored on the held-out one
(``_verdict.held_out_spread``, ``_dynamics``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from boundsweep.studies.robustness._metric import Metric
from boundsweep.studies.robustness._spread import Configuration
from boundsweep.studies.robustness._student import t_cdf

MIN_SEEDS = 3
"""Seeds every compared configuration needs before a verdict may be decisive.

Held-out selection needs two seeds to choose on and one to score on, and with fewer than
three seeds a t interval has at most one degree of freedom (a 95% interval is +-12.7
standard errors): two seeds can only ever be inconclusive, so the report says so instead of
pretending (docs/report.md, "Honest limits").
"""


@dataclass(frozen=True)
class Block:
    """Scores of ``configs`` on the seeds they all have: ``scores[seed, configuration]``.

    ``scores`` are oriented so that higher is better (a minimised metric is negated).
    """

    configs: list[Configuration]
    seeds: list[int]
    scores: np.ndarray

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def means(self) -> np.ndarray:
        return self.scores.mean(axis=0)


def block(configs: list[Configuration], maximize: bool) -> Block:
    """The configurations' scores on their common seeds, higher is better."""
    common = set(configs[0].seeds) if configs else set()
    for c in configs[1:]:
        common &= set(c.seeds)
    seeds = sorted(common)
    columns = []
    for c in configs:
        by_seed = dict(zip(c.seeds, c.values.tolist(), strict=True))
        columns.append([by_seed[s] for s in seeds])
    scores = np.array(columns, dtype=float).T.reshape(len(seeds), len(configs))
    return Block(list(configs), seeds, scores if maximize else -scores)


def pooled_variance(scores: np.ndarray, step: float = 0.0) -> tuple[float, int]:
    """Residual variance of the two-way fit seed + configuration, and its degrees of freedom.

    A score difference within one seed has variance ``2 * variance``. ``step`` (the metric's
    resolution) floors it at the rounding noise ``step**2 / 12``, so scores that happen to agree
    exactly (144 validation images give accuracy in 0.69-point steps) are not read as noiseless.
    """
    n, m = scores.shape
    df = (n - 1) * (m - 1)
    if df < 1:
        return math.inf, 1
    residual = scores - scores.mean(0) - scores.mean(1, keepdims=True) + scores.mean()
    variance = float(np.sum(residual**2) / df)
    return max(variance, step**2 / 12.0), df


def arm_noise(configs: list[Configuration], seeds: list[int], metric: Metric) -> tuple[float, int]:
    """The arm's seed noise: ``pooled_variance`` over every configuration of the arm that ran
    all of ``seeds`` (the compared ones' common seeds), configurations whose seeds all scored
    exactly alike (diverged to the task's fixed score) left out.

    Pooling over the arm's whole grid, not just the compared sweep, gives the t tests their
    degrees of freedom ((seeds - 1)(configurations - 1): 96 for a 5 x 5 grid with 5 seeds, 16
    for a 5-value sweep); it assumes the noise is alike across the grid, which the residual
    fit already needs. A sweep's own configurations are always among them.
    """
    wanted = set(seeds)
    kept = [
        c
        for c in configs
        if wanted <= set(c.seeds)
        and len({v for s, v in zip(c.seeds, c.values.tolist(), strict=True) if s in wanted}) > 1
    ]
    if len(kept) < 2:
        kept = [c for c in configs if wanted <= set(c.seeds)]
    data = block(kept, metric.maximize)
    rows = [data.seeds.index(s) for s in seeds]
    return pooled_variance(data.scores[rows], metric.resolution)


def welch_df(parts: list[tuple[float, int]]) -> int:
    """Welch-Satterthwaite degrees of freedom of a sum of independent variance estimates
    (variance, its df), rounded down (a t quantile with fewer df is wider: conservative)."""
    total = sum(v for v, _ in parts)
    spread = sum(v * v / df for v, df in parts if v > 0)
    if total <= 0 or spread <= 0 or not math.isfinite(total):
        return max(1, min(df for _, df in parts))
    return max(1, int(math.floor(total * total / spread)))


def t_statistic(numerator: float, variance: float) -> float:
    """numerator / sqrt(variance), with a zero variance read as certainty (+-inf, or 0 at 0)."""
    if variance > 0:
        return numerator / math.sqrt(variance)
    return math.copysign(math.inf, numerator) if numerator else 0.0


def p_below(statistic: float, df: int) -> float:
    """One-sided p of "the quantity is below its hypothesised value": P(T <= statistic)."""
    return t_cdf(statistic, df)


def metric_step(values: np.ndarray) -> float:
    """The metric's resolution: the smallest gap between two distinct scores (0 if unknown).

    Accuracy on 144 validation images moves in 1/144 = 0.69-point steps; a continuous metric
    shows gaps far below any margin. Gaps under 1e-9 of the scale are rounding, not steps.
    """
    finite = np.unique(values[np.isfinite(values)])
    if finite.size < 2:
        return 0.0
    gaps = np.diff(finite)
    scale = max(float(np.max(np.abs(finite))), 1.0)
    real = gaps[gaps > 1e-9 * scale]
    if real.size == 0:
        return 0.0
    step = float(real.min())
    # a lattice shows most gaps as whole multiples of its step; a continuous metric does not
    multiples = real / step
    on_lattice = np.abs(multiples - np.round(multiples)) < 1e-6 * np.maximum(multiples, 1.0)
    return step if np.mean(on_lattice) > 0.9 else 0.0


def identical_configurations(a: list[Configuration], b: list[Configuration]) -> tuple[int, int]:
    """How many configurations two arms share, and in how many every seed scored the same."""
    index = {tuple(sorted(c.params.items())): c for c in b}
    same = common = 0
    for c in a:
        other = index.get(tuple(sorted(c.params.items())))
        if other is None:
            continue
        common += 1
        mine = dict(zip(c.seeds, c.values.tolist(), strict=True))
        theirs = dict(zip(other.seeds, other.values.tolist(), strict=True))
        if mine and mine == theirs:
            same += 1
    return same, common
