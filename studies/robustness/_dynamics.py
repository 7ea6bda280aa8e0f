"""Dynamics claims: the arm under test's best configuration is at least as good as a
reference arm's best (within the margin), early in training or at the end.

Non-inferiority with the task's margin, seed by seed (the same seed index in both arms). The
best configuration of each arm is never chosen on the seed it is scored on: that is the
winner's curse (the best of 25 near-tied configurations, compared on the seeds that picked
it, looks better than it is). Docs: docs/report.md, "Verdicts".

- **final** (``compared`` not given): "supported" needs a lower bound of
  best(arm) - best(reference). best(arm) is bounded from below by the configuration chosen on
  the other seeds, scored on the held-out seed; best(reference) from above by bounding every
  one of its configurations (intersection-union: the largest true score is one of them).
  "Not supported" swaps the roles.
- **early** (``compared`` gives the scores at an early epoch): each arm's configuration is
  chosen on the other seeds by its final score and compared at the early epoch on the
  held-out seed: the claim is about the configurations one would pick.
"""

from __future__ import annotations

import math

import numpy as np
from boundsweep.studies.robustness._evidence import MIN_SEEDS, p_below, t_statistic
from boundsweep.studies.robustness._metric import Metric
from boundsweep.studies.robustness._spread import CI_LEVEL, Configuration, best_configuration
from boundsweep.studies.robustness._student import t_quantile
from boundsweep.studies.robustness._words import coarse_reason, fmt, fmt_ci, with_sentence


def _matrix(configs: list[Configuration], seeds: list[int], sign: float) -> np.ndarray:
    """scores[seed, configuration], NaN where a configuration lacks the seed."""
    out = np.full((len(seeds), len(configs)), np.nan)
    row = {s: i for i, s in enumerate(seeds)}
    for j, c in enumerate(configs):
        for seed, value in zip(c.seeds, c.values.tolist(), strict=True):
            if seed in row:
                out[row[seed], j] = sign * value
    return out


def _choices(selection: np.ndarray) -> np.ndarray:
    """For each seed, the configuration with the best mean over the other seeds (-1: none)."""
    n = selection.shape[0]
    picks = np.full(n, -1)
    for s in range(n):
        others = np.delete(selection, s, axis=0)
        counts = np.sum(np.isfinite(others), axis=0)
        if not counts.any():
            continue
        with np.errstate(invalid="ignore"):
            means = np.where(counts > 0, np.nansum(others, axis=0) / np.maximum(counts, 1), -np.inf)
        picks[s] = int(np.argmax(means))
    return picks


def _paired(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep] - b[keep]


def _matched(compared: list[Configuration], configs: list[Configuration]) -> list[Configuration]:
    """``compared`` in the order of ``configs`` (by params); an empty score where missing."""
    index = {tuple(sorted(c.params.items())): c for c in compared}
    empty = np.array([], dtype=float)
    return [
        index.get(tuple(sorted(c.params.items())), Configuration(c.params, [], empty))
        for c in configs
    ]


class _Test:
    """Mean and standard error of per-seed differences, shifted by the margin."""

    def __init__(self, d: np.ndarray, margin: float, step: float) -> None:
        self.n = d.size
        self.mean = float(d.mean()) if d.size else math.nan
        variance = float(d.var(ddof=1)) if d.size > 1 else math.inf
        self.v = max(variance, step**2 / 6.0) / max(d.size, 1)
        self.df = max(d.size - 1, 1)
        self.shifted = t_statistic(self.mean + margin, self.v)

    def bound(self, q: float, side: int) -> float:
        return self.mean + side * q * math.sqrt(self.v)


def dynamics_verdict(
    arm: str,
    arm_configs: list[Configuration],
    reference: str,
    reference_configs: list[Configuration],
    metric: Metric,
    *,
    phase: str = "final",
    arm_compared: list[Configuration] | None = None,
    reference_compared: list[Configuration] | None = None,
    epoch: int | None = None,
) -> dict:
    """Non-inferiority of ``arm``'s best configuration against ``reference``'s best.

    Args:
        arm_configs, reference_configs: each arm's configurations with the per-seed scores
            the best configuration is chosen by (the final metric).
        metric: direction, margin (absolute) and resolution.
        phase: ``"final"`` or ``"early"`` (a label; early needs the ``*_compared`` scores).
        arm_compared, reference_compared: the scores compared, by configuration (e.g. the
            metric at an early epoch); None compares the selection scores themselves.
        epoch: the early epoch, for the sentence.
    """
    what = f"epoch {epoch}" if epoch is not None else phase
    claim = f"{arm} {what} metric at least as good as {reference}'s"
    out: dict = {
        "kind": "dynamics",
        "arm": arm,
        "phase": phase,
        "reference": reference,
        "claim": claim,
        "epoch": epoch,
        "margin": metric.margin,
    }

    def inconclusive(reason: str) -> dict:
        out.update(outcome="inconclusive", reason=reason, body=claim, p=None)
        return with_sentence(out)

    if not arm_configs or not reference_configs:
        missing = arm if not arm_configs else reference
        return inconclusive(f"{missing} has no completed trials")
    metric = metric.at(best_configuration(arm_configs, metric.maximize).mean)
    out["margin"] = metric.margin
    sign = 1.0 if metric.maximize else -1.0
    seeds = sorted({s for c in arm_configs + reference_configs for s in c.seeds})
    a_sel, r_sel = _matrix(arm_configs, seeds, sign), _matrix(reference_configs, seeds, sign)
    held = arm_compared is not None or reference_compared is not None
    a_cmp = _matrix(_matched(arm_compared, arm_configs), seeds, sign) if arm_compared else a_sel
    r_cmp = (
        _matrix(_matched(reference_compared, reference_configs), seeds, sign)
        if reference_compared
        else r_sel
    )
    a_pick, r_pick = _choices(a_sel), _choices(r_sel)
    rows = np.arange(len(seeds))
    a_held = np.where(a_pick >= 0, a_cmp[rows, np.maximum(a_pick, 0)], np.nan)
    r_held = np.where(r_pick >= 0, r_cmp[rows, np.maximum(r_pick, 0)], np.nan)
    both = _Test(_paired(a_held, r_held), metric.margin, metric.resolution)
    if both.n < MIN_SEEDS:
        return inconclusive(
            f"{both.n} seed(s) with scores on both sides; a decisive verdict needs {MIN_SEEDS} "
            "(MIN_SEEDS)"
        )
    alpha = 1.0 - CI_LEVEL
    if held:
        lows, highs = [both], [both]
    else:
        # every reference configuration against the arm's held-out choice, and vice versa
        lows = [
            _Test(_paired(a_held, r_cmp[:, j]), metric.margin, metric.resolution)
            for j in range(r_cmp.shape[1])
        ]
        highs = [
            _Test(_paired(a_cmp[:, j], r_held), metric.margin, metric.resolution)
            for j in range(a_cmp.shape[1])
        ]
        lows = [t for t in lows if t.n >= MIN_SEEDS] or [both]
        highs = [t for t in highs if t.n >= MIN_SEEDS] or [both]
    lower = min(t.bound(t_quantile(1 - alpha / 2, t.df), -1) for t in lows)
    upper = max(t.bound(t_quantile(1 - alpha / 2, t.df), +1) for t in highs)
    p_supported = max(p_below(-t.shifted, t.df) for t in lows)
    p_not = max(p_below(t.shifted, t.df) for t in highs)
    estimate = min(max(both.mean, lower), upper)
    out.update(
        difference={"value": estimate, "ci": [lower, upper], "oriented": "higher is better"},
        arm_value={
            "mean": float(np.nanmean(a_held)) * sign,
            "seeds": int(np.sum(np.isfinite(a_held))),
        },
        reference_value={
            "mean": float(np.nanmean(r_held)) * sign,
            "seeds": int(np.sum(np.isfinite(r_held))),
        },
        selection="held-out seeds",
        test={
            "p_supported": p_supported,
            "p_not_supported": p_not,
            "p": min(1.0, 2 * min(p_supported, p_not)),
            "seeds": both.n,
        },
    )
    out["p"] = out["test"]["p"]
    if metric.resolution > metric.margin:
        out.update(outcome="inconclusive", p=None, reason=coarse_reason(metric))
        return with_sentence(out)
    if lower > -metric.margin:
        outcome = "supported"
    elif upper < -metric.margin:
        outcome = "not supported"
    else:
        outcome = "inconclusive"
    out["outcome"] = outcome
    out["body"] = (
        f"{claim}: {fmt(out['arm_value']['mean'])} vs {fmt(out['reference_value']['mean'])} "
        f"(each arm's best configuration chosen on the other seeds), advantage "
        f"{estimate:+.2f} {metric.unit} {fmt_ci([lower, upper])} (margin {fmt(metric.margin)}, "
        f"{both.n} seeds)"
    ).replace("  ", " ")
    return with_sentence(out)
