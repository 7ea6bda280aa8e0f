"""The tuning-gain claim: how much does tuning a hyperparameter away from its default buy?

Luo et al. claim the defaults (final_lr 0.1, gamma 1e-3) need no tuning. The gain is the best
seed-averaged score over the sweep through the arm's best configuration minus the score at the
default value (other hyperparameters held): what HyperSHAP calls the tunability game. The claim
"the default is within the margin of the tuned value" is supported when the gain's upper bound
is below the margin, not supported when its lower bound is at or above it.

Bounds (docs/report.md, "Verdicts"): the true gain is the largest of the contrasts
value - default. Its upper bound bounds every contrast at once (each at the same level: the
largest true contrast is one of them); its lower bound must allow for the chosen best value
having been lucky, so it takes Bonferroni over the m - 1 contrasts. The estimate is the
held-out gain: the value chosen on the other seeds, scored on the held-out one.
"""

from __future__ import annotations

import math

import numpy as np
from boundsweep.studies.robustness._evidence import (
    MIN_SEEDS,
    arm_noise,
    block,
    p_below,
    pooled_variance,
    t_statistic,
)
from boundsweep.studies.robustness._metric import Metric
from boundsweep.studies.robustness._spread import CI_LEVEL, Configuration, best_configuration, sweep
from boundsweep.studies.robustness._student import t_quantile
from boundsweep.studies.robustness._verdict import held_out_spread
from boundsweep.studies.robustness._words import coarse_reason, fmt, fmt_ci, with_sentence


def tuning_gain_verdict(
    arm: str,
    hyperparameter: str,
    arm_configs: list[Configuration],
    metric: Metric,
    default: float,
) -> dict | None:
    """Verdict on "<arm>'s default <hyperparameter> is within the margin of the tuned one".

    Returns:
        The claim's record (``outcome`` at 95%, before family-wise control), or None when the
        default value was not run in the sweep through the arm's best configuration.
    """
    if not arm_configs:
        return None
    anchor = best_configuration(arm_configs, metric.maximize)
    metric = metric.at(anchor.mean)
    points = sweep(arm_configs, hyperparameter, anchor)
    values = [p.params[hyperparameter] for p in points]
    at = next((i for i, v in enumerate(values) if math.isclose(v, default, rel_tol=1e-9)), None)
    if at is None or len(points) < 2:
        return None
    claim = (
        f"{arm}'s default {hyperparameter} {fmt(default)} is within {fmt(metric.margin)} "
        f"{metric.unit} of the tuned {hyperparameter}".replace("  ", " ")
    )
    out: dict = {
        "kind": "tuning",
        "arm": arm,
        "hyperparameter": hyperparameter,
        "claim": claim,
        "default": default,
        "margin": metric.margin,
        "held_at": {k: v for k, v in anchor.params.items() if k != hyperparameter},
    }
    data = block(points, metric.maximize)
    if data.n < MIN_SEEDS:
        out.update(
            outcome="inconclusive",
            p=None,
            reason=f"its {hyperparameter} values share {data.n} seed(s); a decisive verdict "
            f"needs {MIN_SEEDS} (MIN_SEEDS)",
        )
        return with_sentence(out)
    alpha = 1.0 - CI_LEVEL
    variance, df = arm_noise(arm_configs, data.seeds, metric)
    v = 2.0 * variance / data.n
    # the lower bound allows for the luckiest contrast: on the larger of the arm's and the
    # sweep's own noise (an outlier in the sweep widens its own yardstick)
    local, local_df = pooled_variance(data.scores, metric.resolution)
    local_v, local_df = 2.0 * max(local, variance) / data.n, df
    means = data.means
    contrasts = np.delete(means - means[at], at)
    best = int(np.argmax(means))
    q_up = t_quantile(1 - alpha / 2, df)
    q_low = t_quantile(1 - alpha / 2 / contrasts.size, local_df)
    upper = max(0.0, float(contrasts.max()) + q_up * math.sqrt(v))
    lower = max(0.0, float(contrasts.max()) - q_low * math.sqrt(local_v))
    gain = held_out_spread(arm_configs, hyperparameter, metric, data.seeds, None, versus=default)
    gain = gain if math.isfinite(gain) else lower
    estimate = min(max(gain, lower), upper)
    p_supported = max(p_below(t_statistic(c - metric.margin, v), df) for c in contrasts)
    p_not = min(
        1.0,
        contrasts.size
        * min(p_below(-t_statistic(c - metric.margin, local_v), local_df) for c in contrasts),
    )
    out.update(
        gain={"value": estimate, "ci": [lower, upper], "best_value": values[best]},
        test={
            "p_supported": p_supported,
            "p_not_supported": p_not,
            "p": min(1.0, 2 * min(p_supported, p_not)),
        },
        seeds=data.n,
    )
    out["p"] = out["test"]["p"]
    if metric.resolution > metric.margin:
        out.update(
            outcome="inconclusive",
            p=None,
            reason=coarse_reason(metric),
        )
        return with_sentence(out)
    if upper < metric.margin:
        outcome = "supported"
    elif lower >= metric.margin:
        outcome = "not supported"
    else:
        outcome = "inconclusive"
    out["outcome"] = outcome
    out["body"] = (
        f"{claim}: tuning gain {fmt(estimate)} {metric.unit} {fmt_ci([lower, upper])} "
        f"(best {hyperparameter} {fmt(values[best])}, {data.n} seeds)".replace("  ", " ")
    )
    return with_sentence(out)
