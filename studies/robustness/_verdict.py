"""The paper's robustness claim as a test: is an arm less sensitive to one of its
hyperparameters than its baselines are to their learning rate?

Rule (docs/report.md, "Verdicts"): the spread of a sweep is the best minus the worst
seed-averaged score over its values, every other hyperparameter held at the arm's best
configuration. The arm's sweep over h is set against each baseline's sweep over lr, cut to the
same number of consecutive values centred on the baseline's best lr. The ratio r = arm spread /
baseline spread must stay below RATIO_THRESHOLD against every baseline for "supported"
(intersection-union: no baseline is picked, so none is picked on the data); it is "not
supported" when it is at or above the threshold against some baseline.

Where the max - min of means is biased (upward by the noise, most for a flat sweep), the
bounds do not lean on it being unbiased:

- upper bound of r: the arm's max - min bounds its true spread from above up to the noise
  of one fixed pair (the true best and worst), and each baseline's spread is bounded from
  below by its held-out spread (best and worst chosen on the other seeds, scored on the
  held-out one); the two combine in a Fieller interval for the ratio;
- lower bound of r: the arm's max - min exceeds its true spread by at most the noise range
  of its values (Bonferroni over the ordered pairs), a baseline's max - min falls short of
  its true spread by at most one pair's noise; Fieller again, with the Bonferroni level.

A flat hyperparameter thus gets a lower bound of 0 (95% of the time, whatever the number of
values). The intervals are t intervals with Welch-Satterthwaite degrees of freedom: the upper
bound on the seed noise pooled over each arm's grid (``arm_noise``, many df), the lower bound
on the larger of that and the sweep's own noise (the noise's range is where heavy tails bite,
and an outlier in the sweep widens its own yardstick).
"""

from __future__ import annotations

import math

import numpy as np
from boundsweep.studies.robustness._evidence import (
    MIN_SEEDS,
    Block,
    arm_noise,
    block,
    p_below,
    pooled_variance,
    t_statistic,
    welch_df,
)
from boundsweep.studies.robustness._metric import Metric
from boundsweep.studies.robustness._spread import (
    CI_LEVEL,
    Configuration,
    best_configuration,
    close,
    sweep,
)
from boundsweep.studies.robustness._student import t_quantile
from boundsweep.studies.robustness._words import fmt, fmt_ci, with_sentence

RATIO_THRESHOLD = 0.5
MIN_VALUES = 3


def _window(points: list[Configuration], size: int, best_index: int) -> list[Configuration]:
    """`size` consecutive points centred on `best_index`, shifted to stay inside the grid."""
    start = min(max(best_index - size // 2, 0), len(points) - size)
    return points[start : start + size]


def _decades(points: list[Configuration], hyperparameter: str) -> float | None:
    values = [p.params[hyperparameter] for p in points]
    if not values or min(values) <= 0:
        return None
    return float(math.log10(max(values) / min(values)))


class Sweep:
    """One sweep's scores on its common seeds and what the bounds need from them."""

    def __init__(
        self,
        points: list[Configuration],
        hyperparameter: str,
        metric: Metric,
        grid: list[Configuration],
        window: int | None = None,
    ) -> None:
        self.points = points
        self.hyperparameter = hyperparameter
        self.data: Block = block(points, metric.maximize)
        self.m = len(points)
        self.n = self.data.n
        means = self.data.means
        self.max_minus_min = float(means.max() - means.min()) if means.size else math.nan
        if self.n >= 2:
            self.variance, self.df = arm_noise(grid, self.data.seeds, metric)
            local, self.local_df = pooled_variance(self.data.scores, metric.resolution)
            self.held_out = held_out_spread(grid, hyperparameter, metric, self.data.seeds, window)
        else:
            self.variance, self.df, self.held_out = math.inf, 1, math.nan
            local, self.local_df = math.inf, 1
        # variance of a difference of two configurations' seed means: with the arm's noise
        # (``v``: the upper bounds, one pair's noise) and with the larger of the arm's and the
        # sweep's own (``local_v``: the lower bounds, the noise's range over the sweep, where
        # heavy tails bite; an outlier in the sweep widens its own yardstick)
        self.v = 2.0 * self.variance / self.n if self.n else math.inf
        self.local_v = 2.0 * max(local, self.variance) / self.n if self.n else math.inf
        self.local_df = self.df

    def interval(self, alpha: float) -> list[float]:
        """Confidence interval of the true spread: [max - min less the noise range, max - min
        plus one pair's noise]."""
        pairs = self.m * (self.m - 1)
        range_noise = t_quantile(1 - alpha / 2 / pairs, self.local_df) * math.sqrt(self.local_v)
        lower = self.max_minus_min - range_noise
        upper = self.max_minus_min + t_quantile(1 - alpha / 2, self.df) * math.sqrt(self.v)
        return [max(0.0, lower), upper]

    def record(self, alpha: float) -> dict:
        raw = [p.mean for p in self.points]
        return {
            "hyperparameter": self.hyperparameter,
            "values": [p.params[self.hyperparameter] for p in self.points],
            "means": raw,
            "seeds": [len(p.values) for p in self.points],
            "common_seeds": self.n,
            "decades": _decades(self.points, self.hyperparameter),
            "spread": self.max_minus_min,
            "held_out_spread": self.held_out,
            "noise_sd": math.sqrt(self.variance) if math.isfinite(self.variance) else None,
            "df": self.df,
        }


def held_out_spread(
    grid: list[Configuration],
    hyperparameter: str,
    metric: Metric,
    seeds: list[int],
    window: int | None,
    versus: float | None = None,
) -> float:
    """The held-out spread with every choice re-made without the held-out seed.

    For each seed: the arm's best configuration (the anchor) on the other seeds, the sweep
    through it (cut to ``window`` values around it for a baseline), its best and worst values
    on the other seeds, then best minus worst on the held-out seed; averaged over the seeds.
    An anchor chosen on all seeds would carry the held-out seed's luck into the sweep it cuts.
    With ``versus`` (a value of the hyperparameter: the default), best minus that value's
    score instead: the held-out tuning gain.
    """
    sign = 1.0 if metric.maximize else -1.0
    scores = [dict(zip(c.seeds, c.values.tolist(), strict=True)) for c in grid]
    position = {id(c): i for i, c in enumerate(grid)}
    out = []
    for seed in seeds:
        others = []
        for by_seed in scores:
            rest = [v for s, v in by_seed.items() if s != seed]
            others.append(sign * sum(rest) / len(rest) if rest else -math.inf)
        anchor = grid[int(np.argmax(others))]
        points = sweep(grid, hyperparameter, anchor)
        if window is not None and len(points) >= window:
            points = _window(points, window, points.index(anchor))
        candidates = [
            position[id(p)]
            for p in points
            if seed in scores[position[id(p)]] and math.isfinite(others[position[id(p)]])
        ]
        if len(candidates) < 2:
            continue
        best = max(candidates, key=lambda i: others[i])
        if versus is None:
            worst = min(candidates, key=lambda i: others[i])
        else:
            at = [i for i in candidates if close(grid[i].params[hyperparameter], versus)]
            if not at:
                continue
            worst = at[0]
        out.append(sign * (scores[best][seed] - scores[worst][seed]))
    return float(np.mean(out)) if out else math.nan


def _ratio_upper(a: float, va: float, b: float, vb: float, q: float) -> float:
    """The smallest t0 with (a - t b) / sqrt(va + t^2 vb) < -q for every t > t0 (Fieller);
    infinite when b is not clearly above 0."""
    quad = b * b - q * q * vb
    if b <= 0 or quad <= 0:
        return math.inf
    lin, const = -2 * a * b, a * a - q * q * va
    disc = max(lin * lin - 4 * quad * const, 0.0)
    return (-lin + math.sqrt(disc)) / (2 * quad)


def _ratio_lower(a: float, va: float, b: float, vb: float, q: float) -> float:
    """The largest t0 >= 0 with (a - t b) / sqrt(va + t^2 vb) > q on all of [0, t0) (Fieller);
    0 when a is not clearly above 0."""
    const = a * a - q * q * va
    if a <= 0 or const <= 0:
        return 0.0
    quad, lin = b * b - q * q * vb, -2 * a * b
    if quad == 0:
        return -const / lin if lin < 0 else math.inf
    disc = max(lin * lin - 4 * quad * const, 0.0)
    roots = [(-lin - math.sqrt(disc)) / (2 * quad), (-lin + math.sqrt(disc)) / (2 * quad)]
    positive = sorted(r for r in roots if r > 0)
    return positive[0] if positive else math.inf


def _spread_elsewhere(
    configs: list[Configuration], hyperparameter: str, anchor: Configuration
) -> list[dict]:
    """The same spread through every other value of each other hyperparameter, for context.

    The verdict uses the slice through the best configuration; these show whether the answer
    changes elsewhere on the grid (e.g. final_lr barely matters at a gamma too small for the
    bounds to tighten within the budget).
    """
    out = []
    for other, held in anchor.params.items():
        if other == hyperparameter:
            continue
        for value in sorted({c.params[other] for c in configs if other in c.params}):
            if math.isclose(value, held):
                continue
            shifted = Configuration({**anchor.params, other: value}, anchor.seeds, anchor.values)
            points = sweep(configs, hyperparameter, shifted)
            if len(points) >= 2:
                means = [p.mean for p in points]
                out.append({other: value, "spread": max(means) - min(means), "values": len(points)})
    return out


def _baseline_sweep(
    configs: list[Configuration], size: int, metric: Metric, hyperparameter: str
) -> Sweep | str:
    """A baseline's sweep over its lr through its best configuration, cut to ``size``
    values around its best lr; or why it cannot be compared."""
    anchor = best_configuration(configs, metric.maximize)
    points = sweep(configs, hyperparameter, anchor)
    if len(points) < size:
        return f"its {hyperparameter} takes {len(points)} value(s) at its best configuration"
    window = _window(points, size, points.index(anchor))
    swept = Sweep(window, hyperparameter, metric, configs, window=size)
    if swept.n < MIN_SEEDS:
        return f"its {hyperparameter} values share {swept.n} seed(s)"
    return swept


def robustness_verdict(
    arm: str,
    hyperparameter: str,
    arm_configs: list[Configuration],
    baselines: dict[str, list[Configuration]],
    metric: Metric,
    *,
    baseline_hyperparameter: str = "lr",
    threshold: float = RATIO_THRESHOLD,
) -> dict:
    """Verdict on "<arm> is robust to <hyperparameter>" against the baselines' learning rate.

    Args:
        arm: the arm under test.
        hyperparameter: one of its varied hyperparameters (``final_lr``, ``gamma``, ``lr`` ...).
        arm_configs: the arm's configurations with their per-seed scores.
        baselines: baseline arm name -> its configurations.
        metric: direction, margin, unit and resolution of the scores.
        baseline_hyperparameter: what the baselines are swept over (their learning rate).
        threshold: the ratio the arm's spread must stay under.

    Returns:
        A JSON-able record (docs/report.md, "JSON outline") whose ``outcome`` is the claim's own
        verdict at 95%; ``family_verdicts`` then applies the report's family-wise control.
    """
    claim = f"{arm} is robust to {hyperparameter}"
    out: dict = {
        "kind": "robustness",
        "arm": arm,
        "hyperparameter": hyperparameter,
        "claim": claim,
        "threshold": threshold,
    }
    alpha = 1.0 - CI_LEVEL

    def inconclusive(reason: str) -> dict:
        out.update(outcome="inconclusive", reason=reason, body=claim, p=None)
        return with_sentence(out)

    if not arm_configs:
        return inconclusive("no completed trials")
    anchor = best_configuration(arm_configs, metric.maximize)
    metric = metric.at(anchor.mean)
    points = sweep(arm_configs, hyperparameter, anchor)
    out["held_at"] = {k: v for k, v in anchor.params.items() if k != hyperparameter}
    if len(points) < MIN_VALUES:
        return inconclusive(
            f"{hyperparameter} takes {len(points)} value(s) at the best configuration; "
            f"the test needs at least {MIN_VALUES}"
        )
    mine = Sweep(points, hyperparameter, metric, arm_configs)
    out["sweep"] = mine.record(alpha)
    out["spread_elsewhere"] = _spread_elsewhere(arm_configs, hyperparameter, anchor)
    if mine.n < MIN_SEEDS:
        return inconclusive(
            f"its {hyperparameter} values share {mine.n} seed(s); a decisive verdict needs "
            f"{MIN_SEEDS} (MIN_SEEDS)"
        )
    out["spread"] = {
        "value": max(0.0, mine.held_out),
        "max_minus_min": mine.max_minus_min,
        "ci": mine.interval(alpha),
    }

    compared: dict[str, Sweep] = {}
    skipped = {}
    for name, configs in baselines.items():
        if not configs:
            skipped[name] = "no completed trials"
            continue
        swept = _baseline_sweep(configs, mine.m, metric, baseline_hyperparameter)
        if isinstance(swept, str):
            skipped[name] = swept
        else:
            compared[name] = swept
    if skipped:
        out["baselines_skipped"] = skipped
    if not compared:
        return inconclusive(
            f"no baseline arm has a {baseline_hyperparameter} grid of at least {mine.m} values "
            f"with {MIN_SEEDS}+ common seeds to compare with"
        )
    out["baselines"] = [
        {
            "arm": name,
            "sweep": s.record(alpha),
            "spread": {
                "value": max(0.0, s.held_out),
                "max_minus_min": s.max_minus_min,
                "ci": s.interval(alpha),
            },
        }
        for name, s in compared.items()
    ]
    # the hardest comparison, named in the sentence: the smallest spread (max - min is the
    # steadier of the two estimates for choosing; the decision compares with every baseline)
    reference = min(compared, key=lambda name: compared[name].max_minus_min)
    out["reference"] = reference
    floor = max(metric.margin, metric.resolution)
    ceilings = {name: s.interval(alpha)[1] for name, s in compared.items()}
    flat = min(ceilings, key=ceilings.get)
    if ceilings[flat] < floor:
        return inconclusive(
            f"{flat}'s {baseline_hyperparameter} spread {fmt(compared[flat].max_minus_min)} "
            f"{metric.unit} (at most {fmt(ceilings[flat])}) is itself below "
            f"{fmt(floor)} {metric.unit}, so this task cannot tell sensitivities apart"
        )

    bounds = _ratio_bounds(mine, compared, threshold, alpha)
    ref = compared[reference]
    # held-out spreads: unbiased for a flat sweep, where max - min is not
    denominator = ref.held_out if ref.held_out > 0 else ref.max_minus_min
    estimate = max(0.0, mine.held_out) / denominator if denominator > 0 else math.inf
    estimate = min(max(estimate, bounds["ci"][0]), bounds["ci"][1])
    out["ratio"] = {"value": estimate, "ci": bounds["ci"]}
    out["test"] = bounds["test"]
    out["p"] = bounds["test"]["p"]
    if bounds["ci"][1] < threshold:
        outcome = "supported"
    elif bounds["ci"][0] >= threshold:
        outcome = "not supported"
    else:
        outcome = "inconclusive"
    out["outcome"] = outcome
    decades = mine.record(alpha)["decades"]
    span = f", {decades:.1f} decades" if decades is not None else ""
    held_text = ", ".join(f"{k} {fmt(v)}" for k, v in out["held_at"].items())
    ref_ci = ref.interval(alpha)
    out["body"] = (
        f"{claim}: spread {fmt(out['spread']['value'])} {metric.unit} "
        f"{fmt_ci(out['spread']['ci'])} over {mine.m} values{span}"
        + (f" ({held_text})" if held_text else "")
        + f" vs {reference}'s {baseline_hyperparameter} spread {fmt(max(0.0, ref.held_out))} "
        f"{fmt_ci(ref_ci)}; ratio {fmt(estimate)} {fmt_ci(bounds['ci'])} against threshold "
        f"{threshold}"
    )
    return with_sentence(out)


def _ratio_bounds(mine: Sweep, compared: dict[str, Sweep], threshold: float, alpha: float) -> dict:
    """The ratio's interval and the two one-sided tests at ``threshold`` (docstring above)."""
    pairs, count = mine.m * (mine.m - 1), len(compared)
    upper, lower = 0.0, 0.0
    p_supported, p_not = 0.0, 1.0
    for s in compared.values():
        df = welch_df([(mine.v, mine.df), (threshold**2 * s.v, s.df)])
        local_df = welch_df([(mine.local_v, mine.local_df), (threshold**2 * s.local_v, s.local_df)])
        q_up = t_quantile(1 - alpha / 2, df)
        q_low = t_quantile(1 - alpha / 2 / (pairs * count), local_df)
        upper = max(upper, _ratio_upper(mine.max_minus_min, mine.v, s.held_out, s.v, q_up))
        lower = max(
            lower,
            _ratio_lower(mine.max_minus_min, mine.local_v, s.max_minus_min, s.local_v, q_low),
        )
        below = t_statistic(
            mine.max_minus_min - threshold * s.held_out, mine.v + threshold**2 * s.v
        )
        above = t_statistic(
            mine.max_minus_min - threshold * s.max_minus_min,
            mine.local_v + threshold**2 * s.local_v,
        )
        p_supported = max(p_supported, p_below(below, df))
        p_not = min(p_not, min(1.0, pairs * count * p_below(-above, local_df)))
    return {
        "ci": [lower, upper],
        "test": {
            "p_supported": p_supported,
            "p_not_supported": p_not,
            "p": min(1.0, 2 * min(p_supported, p_not)),
            "baselines": len(compared),
        },
    }
