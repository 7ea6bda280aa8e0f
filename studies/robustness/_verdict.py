"""The paper's robustness claim as a test: is a bounded arm less sensitive to final_lr / gamma
than the baselines are to their learning rate?

Rule (docs/report.md, "Verdict"): the spread of a sweep is max - min of the seed-averaged
score over its values, every other hyperparameter held at the arm's best configuration. The
bounded arm's sweep over h is set against each baseline's sweep over lr, cut to the same
number of consecutive grid values centred on the baseline's best lr. The reference baseline is
the one with the smallest spread (the hardest comparison). With r = bounded / reference
spread and its seed-bootstrap interval: supported when the whole interval is below
RATIO_THRESHOLD, not supported when the whole interval is at or above it, else inconclusive.
"""

from __future__ import annotations

import math

import numpy as np
from boundsweep.studies.robustness._spread import (
    Configuration,
    best_configuration,
    bootstrap_means,
    interval,
    sweep,
)

RATIO_THRESHOLD = 0.5
MIN_VALUES = 3
MIN_SEEDS = 2
VERDICT_RESAMPLES = 2000


def _window(points: list[Configuration], size: int, best_index: int) -> list[Configuration]:
    """`size` consecutive points centred on `best_index`, shifted to stay inside the grid."""
    start = min(max(best_index - size // 2, 0), len(points) - size)
    return points[start : start + size]


def _decades(points: list[Configuration], hyperparameter: str) -> float | None:
    values = [p.params[hyperparameter] for p in points]
    if not values or min(values) <= 0:
        return None
    return float(math.log10(max(values) / min(values)))


def _spread_samples(points: list[Configuration], rng: np.random.Generator) -> np.ndarray:
    boot = bootstrap_means([p.values for p in points], rng, VERDICT_RESAMPLES)
    return boot.max(axis=1) - boot.min(axis=1)


def _sweep_record(points: list[Configuration], hyperparameter: str) -> dict:
    means = np.array([p.mean for p in points])
    return {
        "hyperparameter": hyperparameter,
        "values": [p.params[hyperparameter] for p in points],
        "means": means.tolist(),
        "seeds": [len(p.values) for p in points],
        "decades": _decades(points, hyperparameter),
        "spread": float(means.max() - means.min()),
    }


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 0.1 else f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"


def _fmt_ci(ci: list[float]) -> str:
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


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


def robustness_verdict(
    arm_name: str,
    hyperparameter: str,
    arm_configs: list[Configuration],
    maximize: bool,
    baselines: dict[str, list[Configuration]],
    unit: str,
    floor: float,
    rng: np.random.Generator,
) -> dict:
    """Verdict on "<arm> is robust to <hyperparameter>" against the baselines' lr.

    Args:
        arm_name: the bounded arm.
        hyperparameter: ``final_lr`` or ``gamma``.
        arm_configs: the bounded arm's configurations.
        maximize: direction of the metric.
        baselines: baseline arm name -> its configurations.
        unit: unit word for the sentence ("points", "perplexity").
        floor: spreads below this (the robust-region delta) are too small to tell apart.
        rng: bootstrap generator.
    """
    claim = f"{arm_name} is robust to {hyperparameter}"
    out: dict = {"arm": arm_name, "hyperparameter": hyperparameter, "claim": claim}

    def inconclusive(reason: str) -> dict:
        out.update(
            outcome="inconclusive", reason=reason, sentence=f"{claim}: inconclusive — {reason}."
        )
        return out

    if not arm_configs:
        return inconclusive("no completed trials")
    anchor = best_configuration(arm_configs, maximize)
    points = sweep(arm_configs, hyperparameter, anchor)
    held = {k: v for k, v in anchor.params.items() if k != hyperparameter}
    out["held_at"] = held
    if len(points) < MIN_VALUES:
        return inconclusive(
            f"{hyperparameter} takes {len(points)} value(s) at the best configuration; "
            f"the test needs at least {MIN_VALUES}"
        )
    if min(p.values.size for p in points) < MIN_SEEDS:
        return inconclusive(f"every {hyperparameter} value needs at least {MIN_SEEDS} seeds")
    size = len(points)
    arm_samples = _spread_samples(points, rng)
    out["sweep"] = _sweep_record(points, hyperparameter)
    out["spread"] = {"value": out["sweep"]["spread"], "ci": interval(arm_samples)}
    out["spread_elsewhere"] = _spread_elsewhere(arm_configs, hyperparameter, anchor)

    compared = []
    for name, configs in baselines.items():
        if not configs:
            continue
        base_anchor = best_configuration(configs, maximize)
        lr_points = sweep(configs, "lr", base_anchor)
        if len(lr_points) < size or min(p.values.size for p in lr_points) < MIN_SEEDS:
            continue
        best_index = lr_points.index(base_anchor)
        window = _window(lr_points, size, best_index)
        samples = _spread_samples(window, rng)
        record = _sweep_record(window, "lr")
        compared.append((name, record, samples))
    if not compared:
        return inconclusive(
            f"no baseline arm has a learning-rate grid of at least {size} values with "
            f"{MIN_SEEDS}+ seeds to compare with"
        )
    out["baselines"] = [
        {"arm": n, "sweep": r, "spread": {"value": r["spread"], "ci": interval(s)}}
        for n, r, s in compared
    ]
    ref_name, ref_record, ref_samples = min(compared, key=lambda c: c[1]["spread"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_samples = arm_samples / ref_samples
    ratio_samples = ratio_samples[np.isfinite(ratio_samples)]
    ref_ci = interval(ref_samples)
    out["reference"] = ref_name
    out["threshold"] = RATIO_THRESHOLD
    if ref_ci[1] < floor or ratio_samples.size < VERDICT_RESAMPLES // 2:
        return inconclusive(
            f"{ref_name}'s lr spread {_fmt(ref_record['spread'])} {unit} {_fmt_ci(ref_ci)} is "
            f"itself below {_fmt(floor)} {unit}, so this task cannot tell sensitivities apart"
        )
    ratio = out["spread"]["value"] / ref_record["spread"]
    ratio_ci = interval(ratio_samples)
    out["ratio"] = {"value": ratio, "ci": ratio_ci}
    if ratio_ci[1] < RATIO_THRESHOLD:
        outcome = "supported"
    elif ratio_ci[0] >= RATIO_THRESHOLD:
        outcome = "not supported"
    else:
        outcome = "inconclusive"
    out["outcome"] = outcome
    decades = out["sweep"]["decades"]
    span = f", {decades:.1f} decades" if decades is not None else ""
    held_text = ", ".join(f"{k} {_fmt(v)}" for k, v in held.items())
    out["sentence"] = (
        f"{claim}: spread {_fmt(out['spread']['value'])} {unit} {_fmt_ci(out['spread']['ci'])} "
        f"over {size} values{span}"
        + (f" ({held_text})" if held_text else "")
        + f" vs {ref_name}'s lr spread {_fmt(ref_record['spread'])} {_fmt_ci(ref_ci)}; ratio "
        f"{_fmt(ratio)} {_fmt_ci(ratio_ci)} against threshold {RATIO_THRESHOLD} — {outcome}."
    )
    return out


def _curve_at(configuration_records: list, epoch: int) -> np.ndarray:
    values = []
    for record in configuration_records:
        if record.curve and len(record.curve) >= epoch and math.isfinite(record.curve[epoch - 1]):
            values.append(record.curve[epoch - 1])
    return np.array(values, dtype=float)


def dynamics_verdict(
    arm_name: str,
    phase: str,
    arm_records: list,
    reference_name: str,
    reference_records: list,
    maximize: bool,
    margin: float,
    unit: str,
    rng: np.random.Generator,
    epoch: int | None = None,
) -> dict:
    """Non-inferiority of the bounded arm's best configuration against a reference arm's best.

    ``phase`` "early" compares the metric at ``epoch`` (10% of training) with Adam; "final"
    compares the final metric with SGD-momentum. Supported when the bootstrap interval of
    (arm - reference), oriented so higher is better, lies above -margin; not supported when
    it lies entirely below -margin; else inconclusive.
    """
    what = f"epoch {epoch}" if phase == "early" else "final"
    claim = f"{arm_name} {what} metric at least as good as {reference_name}'s"
    out: dict = {
        "arm": arm_name,
        "phase": phase,
        "reference": reference_name,
        "claim": claim,
        "epoch": epoch,
    }
    if phase == "early":
        a = _curve_at(arm_records, epoch)
        b = _curve_at(reference_records, epoch)
    else:
        a = np.array([r.value for r in arm_records], dtype=float)
        b = np.array([r.value for r in reference_records], dtype=float)
    if a.size < MIN_SEEDS or b.size < MIN_SEEDS:
        out.update(
            outcome="inconclusive",
            reason=f"needs {MIN_SEEDS}+ seeds with curves on both sides",
            sentence=f"{claim}: inconclusive — needs {MIN_SEEDS}+ seeds with curves on both sides.",
        )
        return out
    boot_a = bootstrap_means([a], rng, VERDICT_RESAMPLES)[:, 0]
    boot_b = bootstrap_means([b], rng, VERDICT_RESAMPLES)[:, 0]
    sign = 1.0 if maximize else -1.0
    diff = sign * (a.mean() - b.mean())
    diff_ci = interval(sign * (boot_a - boot_b))
    a_ci, b_ci = interval(boot_a), interval(boot_b)
    if diff_ci[0] >= -margin:
        outcome = "supported"
    elif diff_ci[1] < -margin:
        outcome = "not supported"
    else:
        outcome = "inconclusive"
    out.update(
        outcome=outcome,
        arm_value={"mean": float(a.mean()), "ci": a_ci, "seeds": int(a.size)},
        reference_value={"mean": float(b.mean()), "ci": b_ci, "seeds": int(b.size)},
        difference={"value": float(diff), "ci": diff_ci, "oriented": "higher is better"},
        margin=margin,
        sentence=(
            f"{claim}: {_fmt(a.mean())} {_fmt_ci(a_ci)} vs {_fmt(b.mean())} "
            f"{_fmt_ci(b_ci)}, advantage {diff:+.2f} {unit} {_fmt_ci(diff_ci)} "
            f"(margin {_fmt(margin)}) — {outcome}."
        ),
    )
    return out
