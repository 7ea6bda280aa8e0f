"""Spread of an arm's objective across configurations, with seed-bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from boundsweep.studies.robustness._campaign_data import ArmData

BOOTSTRAP_RESAMPLES = 1000
CI_LEVEL = 0.95


@dataclass(frozen=True)
class Configuration:
    """One configuration of an arm and its per-seed scores (report units)."""

    params: dict[str, float]
    seeds: list[int]
    values: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def sd(self) -> float | None:
        """Sample standard deviation across seeds (None with a single seed)."""
        return float(np.std(self.values, ddof=1)) if self.values.size > 1 else None


def configurations(arm: ArmData) -> list[Configuration]:
    """The arm's configurations with seed-level scores, in trial order of first appearance."""
    out = []
    for config, records in arm.configurations().items():
        records = sorted(records, key=lambda r: r.seed)
        out.append(
            Configuration(
                params=dict(config),
                seeds=[r.seed for r in records],
                values=np.array([r.value for r in records], dtype=float),
            )
        )
    return out


def goodness(values: np.ndarray | float, maximize: bool) -> np.ndarray | float:
    """Scores turned so that higher is better (perplexity is negated)."""
    return values if maximize else -values


def best_configuration(configs: list[Configuration], maximize: bool) -> Configuration:
    """The configuration with the best seed-averaged score."""
    return max(configs, key=lambda c: goodness(c.mean, maximize))


def bootstrap_means(
    values: list[np.ndarray], rng: np.random.Generator, resamples: int = BOOTSTRAP_RESAMPLES
) -> np.ndarray:
    """Seed bootstrap: resample each configuration's seeds with replacement.

    Returns:
        Array (resamples, len(values)) of the resampled seed means.
    """
    out = np.empty((resamples, len(values)))
    for j, v in enumerate(values):
        idx = rng.integers(0, v.size, size=(resamples, v.size))
        out[:, j] = v[idx].mean(axis=1)
    return out


def interval(samples: np.ndarray) -> list[float]:
    """Percentile interval at CI_LEVEL."""
    tail = (1.0 - CI_LEVEL) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return [float(lo), float(hi)]


def summary(
    configs: list[Configuration], maximize: bool, delta_abs: float, rng: np.random.Generator
) -> dict:
    """Best / median / worst / IQR across configurations, robust region, seed spread, CIs."""
    means = np.array([c.mean for c in configs])
    good = goodness(means, maximize)
    q1, median, q3 = np.percentile(means, [25, 50, 75])
    boot = bootstrap_means([c.values for c in configs], rng)
    boot_q1, boot_q3 = np.percentile(boot, [25, 75], axis=1)
    boot_good = goodness(boot, maximize)
    best_good = float(np.max(good))
    within = good >= best_good - delta_abs
    seed_sds = [c.sd for c in configs if c.sd is not None]
    return {
        "best": float(means[np.argmax(good)]),
        "median": float(median),
        "worst": float(means[np.argmin(good)]),
        "q1": float(q1),
        "q3": float(q3),
        "iqr": float(q3 - q1),
        "iqr_ci": interval(boot_q3 - boot_q1),
        "range": float(np.max(means) - np.min(means)),
        "range_ci": interval(boot.max(axis=1) - boot.min(axis=1)),
        "best_ci": interval(goodness(np.max(boot_good, axis=1), maximize)),
        "robust_region": {
            "delta": delta_abs,
            "count": int(np.sum(within)),
            "fraction": float(np.mean(within)),
        },
        "seed_sd": {
            "median": float(np.median(seed_sds)) if seed_sds else None,
            "max": float(np.max(seed_sds)) if seed_sds else None,
            "configurations_with_seeds": len(seed_sds),
        },
    }


def sweep(
    configs: list[Configuration], hyperparameter: str, anchor: Configuration
) -> list[Configuration]:
    """Configurations that differ from ``anchor`` only in ``hyperparameter``, sorted by it.

    This is the slice through the anchor (normally the arm's best configuration): every other
    hyperparameter held where the arm does best, as in the paper's own sensitivity figures.
    """
    others = [(k, v) for k, v in anchor.params.items() if k != hyperparameter]
    picked = [
        c
        for c in configs
        if hyperparameter in c.params
        and all(k in c.params and close(c.params[k], v) for k, v in others)
    ]
    return sorted(picked, key=lambda c: c.params[hyperparameter])


def close(a: float, b: float) -> bool:
    """``numpy.isclose``'s test (rtol 1e-5, atol 1e-8) on two floats, without numpy's cost."""
    return abs(a - b) <= 1e-8 + 1e-5 * abs(b)
