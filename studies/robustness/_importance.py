"""Hyperparameter importance of an arm, with the seed as one more factor.

fANOVA (Hutter et al. 2014) and PED-ANOVA (Watanabe et al. 2023) as Optuna implements them.
The seed is included as a categorical parameter so that "final_lr matters less than the seed"
shows up directly in the bars.
"""

from __future__ import annotations

import math
import warnings

import optuna
from boundsweep.studies._storage._optuna import quiet_study_creation
from boundsweep.studies.robustness._campaign_data import ArmData
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

# Small forests keep the report quick (benchmarks/bench_report.py times it).
FANOVA_TREES = 16
FANOVA_DEPTH = 6
MIN_TRIALS = 8


def _distribution(values: list[float]) -> FloatDistribution:
    low, high = min(values), max(values)
    log = low > 0 and high / low >= 10
    return FloatDistribution(low, high, log=log)


def importance(arm: ArmData) -> dict:
    """fANOVA and PED-ANOVA importances (normalised to sum to one) over varied params + seed."""
    varied = arm.varied()
    seeds = sorted({r.seed for r in arm.records})
    factors = varied + (["seed"] if len(seeds) > 1 else [])
    if len(factors) < 2 or len(arm.records) < MIN_TRIALS:
        return {
            "factors": factors,
            "fanova": None,
            "ped_anova": None,
            "reason": f"needs 2+ varying factors and {MIN_TRIALS}+ completed trials",
        }
    distributions: dict[str, BaseDistribution] = {
        name: _distribution([dict(r.config)[name] for r in arm.records]) for name in varied
    }
    if "seed" in factors:
        distributions["seed"] = CategoricalDistribution(seeds)
    # An in-memory copy holding only what importance needs: no second read of the database,
    # and the objective in report units whichever metric the report is about.
    with quiet_study_creation():
        study = optuna.create_study(direction=arm.direction)
    trials = []
    for r in arm.records:
        params = {k: v for k, v in r.config if k in distributions}
        if "seed" in distributions:
            params["seed"] = r.seed
        trials.append(
            optuna.trial.create_trial(
                params=params,
                distributions={k: distributions[k] for k in params},
                value=r.value,
            )
        )
    study.add_trials(trials)
    # Optuna's fANOVA fits scikit-learn forests, and importing scikit-learn takes a second
    # or more: loaded with the first importance asked for, not with every report.
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    out: dict = {"factors": factors}
    evaluators = {
        "fanova": FanovaImportanceEvaluator(n_trees=FANOVA_TREES, max_depth=FANOVA_DEPTH, seed=0),
        "ped_anova": PedAnovaImportanceEvaluator(),
    }
    for key, evaluator in evaluators.items():
        with warnings.catch_warnings():
            # PED-ANOVA warns when the top quantile of a small study is tiny; the numbers are
            # still what it computes, and the report states the trial count beside them.
            warnings.simplefilter("ignore")
            try:
                scores = optuna.importance.get_param_importances(
                    study, evaluator=evaluator, params=factors
                )
            except (ValueError, RuntimeError) as error:
                out[key] = None
                out[f"{key}_error"] = str(error)
                continue
        out[key] = {k: (float(v) if math.isfinite(v) else 0.0) for k, v in scores.items()}
    return out
