"""`campaign_verdicts`: every claim of a report from plain data, under one family-wise control.

The report (``analyze_campaign``) calls this with the configurations it reads from storage;
anyone can call it with numbers from any source: per arm, a list of ``Configuration``
(params, seeds, per-seed scores). Which arms are under test and which are their baselines is
the caller's choice (the campaign spec's ``verdicts`` field, docs/report.md).
"""

from __future__ import annotations

import numpy as np
from boundsweep.studies.robustness._dynamics import dynamics_verdict
from boundsweep.studies.robustness._evidence import (
    MIN_SEEDS,
    identical_configurations,
    metric_step,
)
from boundsweep.studies.robustness._family import FAMILY_ALPHA, family_verdicts
from boundsweep.studies.robustness._metric import Metric
from boundsweep.studies.robustness._spread import Configuration
from boundsweep.studies.robustness._tuning import tuning_gain_verdict
from boundsweep.studies.robustness._verdict import RATIO_THRESHOLD, robustness_verdict
from boundsweep.studies.robustness._words import with_sentence


def varied(configs: list[Configuration]) -> list[str]:
    """Hyperparameters that take more than one value among the configurations, sorted."""
    seen: dict[str, set[float]] = {}
    for c in configs:
        for name, value in c.params.items():
            seen.setdefault(name, set()).add(value)
    return sorted(name for name, values in seen.items() if len(values) > 1)


def _duplicates(arms: dict[str, list[Configuration]], under_test: list[str]) -> dict[str, dict]:
    """Arms under test whose every shared configuration scored exactly as an earlier one's.

    Two such arms are one piece of evidence (AdaBound and AMSBound scored identically in 27 of
    27 configurations on digits): the later one's claims are not tested a second time.
    """
    out: dict[str, dict] = {}
    for i, name in enumerate(under_test):
        for earlier in under_test[:i]:
            if earlier in out:
                continue
            same, common = identical_configurations(arms[name], arms[earlier])
            if common and same == common:
                out[name] = {"arm": name, "same_as": earlier, "configurations": common}
                break
    return out


def _as_duplicate(record: dict, duplicate: dict) -> dict:
    record.update(
        outcome="inconclusive",
        p=None,
        duplicate_of=duplicate["same_as"],
        reason=(
            f"{duplicate['arm']} scored exactly as {duplicate['same_as']} in "
            f"{duplicate['configurations']}/{duplicate['configurations']} configurations, so "
            f"this is {duplicate['same_as']}'s evidence again, not a second piece"
        ),
    )
    return with_sentence(record)


def campaign_verdicts(
    arms: dict[str, list[Configuration]],
    metric: Metric,
    *,
    under_test: list[str],
    baselines: list[str],
    hyperparameters: dict[str, list[str]] | None = None,
    defaults: dict[str, dict[str, float]] | None = None,
    early: dict[str, list[Configuration]] | None = None,
    early_epoch: int | None = None,
    early_reference: str | None = None,
    final_reference: str | None = None,
    baseline_hyperparameter: str = "lr",
    threshold: float = RATIO_THRESHOLD,
    alpha: float = FAMILY_ALPHA,
) -> dict:
    """Every claim about the arms under test, decided together.

    Args:
        arms: arm name -> its configurations (per-seed scores in report units).
        metric: the scores' direction, margin and unit; ``step=None`` reads the resolution
            off the scores.
        under_test: the arms whose robustness is claimed.
        baselines: the arms they are compared with (swept over ``baseline_hyperparameter``).
        hyperparameters: arm -> the hyperparameters examined; default: each arm's varied
            hyperparameters (for the paper's bounded arms: final_lr and gamma).
        defaults: arm -> {hyperparameter: default value} for the tuning-gain claims (made only
            where the default was run).
        early: arm -> its configurations scored at ``early_epoch`` (for the early claim).
        early_reference, final_reference: the arms the early and final dynamics claims compare
            with (the paper: Adam early, SGD-momentum at the end); None: no such claim.
        threshold: the robustness ratio's threshold.
        alpha: the family-wise error rate (Holm over every tested claim).

    Returns:
        ``{"verdicts", "tuning", "dynamics", "family", "identical", "step", "min_seeds"}``:
        lists of claim records (docs/report.md, "JSON outline") and the family's summary.
    """
    for name in [*under_test, *baselines, early_reference, final_reference]:
        if name is not None and name not in arms:
            raise ValueError(f"unknown arm {name!r}; arms: {', '.join(sorted(arms))}")
    if metric.step is None:
        values = [c.values for configs in arms.values() for c in configs]
        step = metric_step(np.concatenate(values)) if values else 0.0
        metric = Metric(
            metric.maximize, metric.margin, metric.unit, metric.name, step, metric.relative
        )
    duplicates = _duplicates(arms, under_test)
    base = {name: arms[name] for name in baselines}
    robustness, tuning, dynamics = [], [], []
    for name in under_test:
        configs = arms[name]
        examined = (hyperparameters or {}).get(name) or varied(configs)
        for h in examined:
            record = robustness_verdict(
                name,
                h,
                configs,
                base,
                metric,
                baseline_hyperparameter=baseline_hyperparameter,
                threshold=threshold,
            )
            robustness.append(
                _as_duplicate(record, duplicates[name]) if name in duplicates else record
            )
            default = (defaults or {}).get(name, {}).get(h)
            if default is not None:
                gain = tuning_gain_verdict(name, h, configs, metric, default)
                if gain is not None:
                    tuning.append(
                        _as_duplicate(gain, duplicates[name]) if name in duplicates else gain
                    )
        phases = [("early", early_reference), ("final", final_reference)]
        for phase, reference in phases:
            if reference is None or reference == name:
                continue
            if phase == "early":
                if early is None:
                    continue
                record = dynamics_verdict(
                    name,
                    configs,
                    reference,
                    arms[reference],
                    metric,
                    phase="early",
                    arm_compared=early.get(name, []),
                    reference_compared=early.get(reference, []),
                    epoch=early_epoch,
                )
            else:
                record = dynamics_verdict(name, configs, reference, arms[reference], metric)
            dynamics.append(
                _as_duplicate(record, duplicates[name]) if name in duplicates else record
            )
    family = family_verdicts([*robustness, *tuning, *dynamics], alpha)
    return {
        "verdicts": robustness,
        "tuning": tuning,
        "dynamics": dynamics,
        "family": family,
        "identical": list(duplicates.values()),
        "step": metric.resolution,
        "min_seeds": MIN_SEEDS,
    }
