"""`analyze_campaign`: every number of the robustness report, as one JSON-able dict."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import numpy as np
from boundsweep.optimizers import OPTIMIZERS
from boundsweep.studies.campaign import PAPER_BASELINES, CampaignSpec, VerdictSpec
from boundsweep.studies.robustness._bounds import log_spaced_bounds
from boundsweep.studies.robustness._campaign_data import (
    ArmData,
    CampaignData,
    load_campaign,
    task_of,
)
from boundsweep.studies.robustness._claims import campaign_verdicts
from boundsweep.studies.robustness._expected_max import (
    expected_max_unbiased,
    expected_max_with_replacement,
    tunability,
)
from boundsweep.studies.robustness._importance import importance as arm_importance
from boundsweep.studies.robustness._metric import Metric
from boundsweep.studies.robustness._published import (
    context_notes,
    published_runs,
    published_source,
    seed_run_lines,
)
from boundsweep.studies.robustness._spread import (
    Configuration,
    best_configuration,
    configurations,
    goodness,
    summary,
    sweep,
)
from boundsweep.studies.storage import Storage
from boundsweep.studies.tasks import TASKS
from boundsweep.studies.tasks._task import METRIC_DEFAULTS

SCHEMA = "boundsweep.report/1"
EARLY_FRACTION = 0.1
BOUNDED_HYPERPARAMETERS = ("final_lr", "gamma")


def jsonable(value: Any) -> Any:
    """Plain JSON types only: numpy scalars unwrapped, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _metric(campaign: CampaignData, delta: float | None, maximize: bool) -> Metric:
    """The campaign's metric as the verdicts judge it: the task's declared margin (absolute,
    or relative to the best score), unit and direction; ``delta`` overrides the margin.

    A campaign whose task is not installed here (or that has no stored spec) falls back on
    the built-in defaults of its metric (accuracy when maximised, else perplexity).
    """
    task = task_of(campaign.spec)
    if task is not None:
        margin, relative, unit = task.margin, bool(task.margin_relative), task.unit
    else:
        defaults = METRIC_DEFAULTS[campaign.metric_name]
        margin, relative, unit = defaults.margin, defaults.relative, defaults.unit
    if delta is not None:
        margin = float(delta)
    assert margin is not None and unit is not None  # resolved by Task.__post_init__
    return Metric(maximize, margin, unit, campaign.metric_name, None, relative)


def _records_of(arm: ArmData, config: Configuration) -> list:
    key = tuple(sorted(config.params.items()))
    return sorted(arm.configurations().get(key, []), key=lambda r: r.seed)


def _learning_curve(records: list) -> dict | None:
    curves = [r.curve for r in records if r.curve]
    if not curves:
        return None
    length = min(len(c) for c in curves)
    stack = np.array([c[:length] for c in curves], dtype=float)
    mean = np.nanmean(stack, axis=0)
    sd = np.nanstd(stack, axis=0, ddof=1) if len(curves) > 1 else np.zeros(length)
    return {
        "epochs": list(range(1, length + 1)),
        "mean": mean.tolist(),
        "lo": (mean - sd).tolist(),
        "hi": (mean + sd).tolist(),
        "seeds": len(curves),
    }


def _sweep_plots(configs: list[Configuration], varied: list[str], best: Configuration) -> dict:
    """Each varied hyperparameter's sweep through the best configuration (2+ values)."""
    plots = {}
    for h in varied:
        points = sweep(configs, h, best)
        if len(points) >= 2:
            plots[h] = _sweep_plot(points, h)
    return plots


def _sweep_plot(points: list[Configuration], hyperparameter: str) -> dict:
    means = np.array([p.mean for p in points])
    sds = np.array([p.sd if p.sd is not None else 0.0 for p in points])
    return {
        "values": [p.params[hyperparameter] for p in points],
        "mean": means.tolist(),
        "lo": (means - sds).tolist(),
        "hi": (means + sds).tolist(),
        "seeds": [len(p.values) for p in points],
    }


def _heatmap(configs: list[Configuration], best: Configuration) -> dict | None:
    x_name, y_name = BOUNDED_HYPERPARAMETERS
    others = {k: v for k, v in best.params.items() if k not in BOUNDED_HYPERPARAMETERS}
    cells = {
        (c.params[x_name], c.params[y_name]): c.mean
        for c in configs
        if x_name in c.params
        and y_name in c.params
        and all(math.isclose(c.params.get(k, math.nan), v) for k, v in others.items())
    }
    xs = sorted({x for x, _ in cells})
    ys = sorted({y for _, y in cells})
    if len(xs) < 2 or len(ys) < 2:
        return None
    return {
        "x": x_name,
        "y": y_name,
        "xs": xs,
        "ys": ys,
        "z": [[cells.get((x, y)) for x in xs] for y in ys],
        "held_at": others,
    }


def _hparam(arm: ArmData, best_records: list, name: str) -> list[float]:
    """Values of ``name`` the arm used: varied values, or the fixed one from trial hparams."""
    values = sorted({dict(r.config)[name] for r in arm.records if name in dict(r.config)})
    if values:
        return values
    for record in best_records:
        hparams = record.user_attrs.get("hparams") or {}
        if name in hparams:
            return [float(hparams[name])]
    return []


def _total_steps(spec: CampaignSpec | None, records: list) -> int | None:
    curves = [r for r in records if r.curve and r.steps_per_epoch]
    if curves:
        r = curves[0]
        return int(round(r.steps_per_epoch * len(r.curve)))
    if spec is None:
        return None
    task = TASKS[spec.task]
    return int(task.steps_per_epoch(spec.budget) * task.epochs(spec.budget))


def _bounds_plot(
    arm: ArmData, best: Configuration, best_records: list, spec: CampaignSpec | None
) -> dict | None:
    final_lr = best.params.get("final_lr") or next(
        iter(_hparam(arm, best_records, "final_lr")), None
    )
    gammas = _hparam(arm, best_records, "gamma")
    steps = _total_steps(spec, best_records)
    if final_lr is None or not gammas or not steps:
        return None
    return {
        "final_lr": final_lr,
        "total_steps": steps,
        "schedules": [{"gamma": g, **log_spaced_bounds(final_lr, g, steps)} for g in gammas],
    }


def _edges(
    configs: list[Configuration], best: Configuration, maximize: bool, delta_abs: float
) -> dict[str, str]:
    """Hyperparameters whose best value is at an end of the values tried and still climbing.

    "Climbing": the best beats the next value inward (others held) by more than delta. Then the
    arm's optimum may lie outside the grid, so its best score and its spread (and any verdict
    that uses them) may be understated. A flat end (the hyperparameter barely matters) is not
    flagged.
    """
    out = {}
    for h, value in best.params.items():
        points = sweep(configs, h, best)
        if len(points) < 3:
            continue
        tried = [p.params[h] for p in points]
        if math.isclose(value, tried[0]):
            side, inward = "low", points[1]
        elif math.isclose(value, tried[-1]):
            side, inward = "high", points[-2]
        else:
            continue
        if goodness(best.mean - inward.mean, maximize) > delta_abs:
            out[h] = side
    return out


def _machine_caveats(campaign: CampaignData) -> list[str]:
    """One line when the campaign's trials ran on machines that round differently (the
    ``arithmetic`` each trial records: torch's CPU kernels or the GPU)."""
    kinds = Counter(
        str(record.user_attrs["arithmetic"])
        for arm in campaign.arms
        for record in arm.records
        if record.user_attrs.get("arithmetic")
    )
    if len(kinds) < 2:
        return []
    mix = ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items()))
    return [
        f"The trials ran on machines that round differently ({mix} trials): a trial's score "
        "may differ between them within rounding, so a verdict whose evidence is marginal "
        "could differ on another mix."
    ]


def _caveats(arms: list[dict]) -> list[str]:
    lines = []
    for arm in arms:
        for h, side in (arm.get("best_at_edge") or {}).items():
            value = arm["best_configuration"]["params"][h]
            lines.append(
                f"{arm['name']}'s best {h} ({value:.3g}) is at the {side} end of the values tried: "
                f"its best score and its {h} spread may be understated; widen the grid to be sure."
            )
    return lines


def _arm_report(
    arm: ArmData,
    campaign: CampaignData,
    metric: Metric,
    rng: np.random.Generator,
    with_importance: bool,
) -> tuple[dict, list[Configuration]]:
    configs = configurations(arm)
    base = {
        "name": arm.name,
        "optimizer": arm.optimizer,
        "bounded": arm.bounded,
        "direction": "maximize" if arm.maximize else "minimize",
        "space": arm.spec.model_dump(mode="json")["space"] if arm.spec else {},
        "sampler": arm.spec.sampler if arm.spec else None,
        "n_trials": arm.n_trials,
        "n_complete": len(arm.records),
        "n_diverged": sum(r.diverged for r in arm.records),
        "n_configurations": len(configs),
        "seeds": sorted({r.seed for r in arm.records}),
        "varied": arm.varied(),
    }
    if not configs:
        return base, configs
    best = best_configuration(configs, arm.maximize)
    delta_abs = metric.at(best.mean).margin
    best_records = _records_of(arm, best)
    means = np.array([c.mean for c in configs])
    good = goodness(means, arm.maximize)
    sign = 1.0 if arm.maximize else -1.0
    base.update(
        best_at_edge=_edges(configs, best, arm.maximize, delta_abs),
        summary=summary(configs, arm.maximize, delta_abs, rng),
        best_configuration={
            "params": best.params,
            "mean": best.mean,
            "sd": best.sd,
            "seeds": best.seeds,
            "values": best.values.tolist(),
        },
        configurations=[
            {
                "params": c.params,
                "mean": c.mean,
                "sd": c.sd,
                "seeds": c.seeds,
                "values": c.values.tolist(),
            }
            for c in configs
        ],
        expected_max={
            "k": list(range(1, len(configs) + 1)),
            "unbiased": (sign * expected_max_unbiased(good)).tolist(),
            "with_replacement": (sign * expected_max_with_replacement(good)).tolist(),
        },
        sweeps=_sweep_plots(configs, base["varied"], best),
        learning_curve=_learning_curve(best_records),
        importance=arm_importance(arm) if with_importance else None,
    )
    if arm.bounded:
        base["heatmap"] = _heatmap(configs, best)
        base["bound_schedule"] = _bounds_plot(arm, best, best_records, campaign.spec)
    return base, configs


def _published(campaign: CampaignData, arms: list[dict]) -> dict | None:
    per_seed = seed_run_lines(campaign)
    if per_seed is not None:
        return per_seed
    runs = published_runs(campaign.spec.task if campaign.spec else None)
    if not runs:
        return None
    by_optimizer = {r["optimizer"]: r for r in runs}
    rows = []
    for arm in arms:
        run = by_optimizer.get(arm["optimizer"])
        if run is None or "best_configuration" not in arm:
            continue
        best = arm["best_configuration"]
        sd = best["sd"]
        ours = f"{best['mean']:.2f}" + (f" ± {sd:.2f}" if sd is not None else "")
        rows.append(
            {
                "arm": arm["name"],
                "optimizer": arm["optimizer"],
                "published_final": run["final_test_accuracy"],
                "published_best": run["best_test_accuracy"],
                "published_hparams": run["hparams"],
                "this_campaign": best["mean"],
                "this_campaign_sd": sd,
                "line": f"{arm['name']}: published {run['final_test_accuracy']:.2f} · "
                f"this campaign {ours} ({campaign.metric} metric, best configuration)",
            }
        )
    note = "the authors' single run per optimizer, final test accuracy"
    return {"source": published_source(), "note": note, "rows": rows}


def analyze_campaign(
    storage: str | Storage,
    name: str,
    metric: str = "val",
    delta: float | None = None,
    importance: bool = True,
) -> dict:
    """Analyse a campaign's COMPLETE trials and test the paper's robustness claims.

    Args:
        storage: database URL or Optuna storage holding the arm studies `<name>/<arm>`.
        name: the campaign.
        metric: ``"val"`` (the trial value) or ``"test"`` (user attr ``test_metric``).
        delta: robust-region width: accuracy points (default 0.5) or, for perplexity and
            loss, a fraction of the arm's best (default 0.02).
        importance: compute each arm's fANOVA / PED-ANOVA importance. Only the figures and
            the JSON show it, and fANOVA's forests (scikit-learn) take a second or more to
            load: ``boundsweep report`` without ``--json``/``--html``/``--png-dir`` passes
            False, and each arm's ``importance`` is then None. Nothing else changes.

    Returns:
        The report as a JSON-able dict (outline in docs/report.md).

    Raises:
        ValueError: an invalid ``metric`` or ``delta``.
        CampaignNotFoundError: no arm study of that campaign.
    """
    if delta is not None and not (
        isinstance(delta, int | float) and math.isfinite(delta) and delta >= 0
    ):
        raise ValueError(f"Invalid delta {delta!r}: a finite number >= 0")
    campaign = load_campaign(storage, name, metric)
    maximize = campaign.arms[0].maximize
    judged = _metric(campaign, delta, maximize)
    rng = np.random.default_rng(0)
    arms, configs_by_arm = [], {}
    for arm in campaign.arms:
        report, configs = _arm_report(arm, campaign, judged, rng, importance)
        arms.append(report)
        configs_by_arm[arm.name] = configs
    sized = [a["n_configurations"] for a in arms if a["n_configurations"]]
    common_k = min(sized) if sized else 0
    for arm in arms:
        if "expected_max" in arm:
            arm["tunability"] = tunability(arm["expected_max"]["unbiased"], common_k)
    roles = _roles(campaign)
    claims = _claims(campaign, configs_by_arm, judged, roles)

    spec = campaign.spec
    report = {
        "schema": SCHEMA,
        "campaign": name,
        "task": spec.task if spec else None,
        "budget": spec.budget.model_dump(mode="json") if spec else None,
        "seeds": spec.seeds if spec else None,
        "metric": metric,
        "metric_name": campaign.metric_name,
        "unit": judged.unit,
        "scale": campaign.scale,
        "direction": "maximize" if maximize else "minimize",
        "delta": judged.margin,
        "delta_kind": f"relative to best {campaign.metric_name}"
        if judged.relative
        else f"absolute {judged.unit}",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "arms": arms,
        "roles": roles.model_dump(mode="json"),
        "verdicts": claims["verdicts"],
        "tuning": claims["tuning"],
        "dynamics": claims["dynamics"],
        "family": claims["family"],
        "identical_arms": claims["identical"],
        "metric_step": claims["step"],
        "min_seeds": claims["min_seeds"],
        "published": _published(campaign, arms),
        "context": context_notes(),
        "caveats": _caveats(arms) + _machine_caveats(campaign),
    }
    return jsonable(report)


def _roles(campaign: CampaignData) -> VerdictSpec:
    """Which arms are under test and which are baselines: the spec's (``verdict_roles``), or
    for a campaign stored without a spec the paper's choice read off the arms' optimizers."""
    if campaign.spec is not None:
        return campaign.spec.verdict_roles()
    by_optimizer = {a.optimizer: a.name for a in reversed(campaign.arms)}
    return VerdictSpec.model_construct(
        under_test=[a.name for a in campaign.arms if a.bounded],
        baselines=[a.name for a in campaign.arms if a.optimizer in PAPER_BASELINES],
        hyperparameters={},
        early_reference=by_optimizer.get("adam"),
        final_reference=by_optimizer.get("sgdm"),
    )


def _early_epoch(arms: list[ArmData]) -> int | None:
    """EARLY_FRACTION of the epochs every compared trial's curve reaches (at least 1)."""
    lengths = [len(r.curve) for arm in arms for r in arm.records if r.curve]
    if not lengths:
        return None
    return max(1, round(EARLY_FRACTION * min(lengths)))


def _at_epoch(arm: ArmData, epoch: int) -> list[Configuration]:
    """The arm's configurations scored at ``epoch`` of their curves (seeds without it left out)."""
    out = []
    for config, records in arm.configurations().items():
        kept = sorted(
            (
                r
                for r in records
                if r.curve and len(r.curve) >= epoch and math.isfinite(r.curve[epoch - 1])
            ),
            key=lambda r: r.seed,
        )
        out.append(
            Configuration(
                dict(config),
                [r.seed for r in kept],
                np.array([r.curve[epoch - 1] for r in kept], dtype=float),
            )
        )
    return out


def _examined(arm: ArmData, roles: VerdictSpec) -> list[str]:
    """The hyperparameters an arm under test is examined over: the spec's choice, else those
    its spec varies, else those its trials vary; a bounded arm with none of these (no trials,
    no space) is still examined over the paper's final_lr and gamma, to say it cannot be."""
    if roles.hyperparameters.get(arm.name):
        return list(roles.hyperparameters[arm.name])
    if arm.spec is not None and arm.spec.varied():
        return sorted(arm.spec.varied())
    return arm.varied() or (list(BOUNDED_HYPERPARAMETERS) if arm.bounded else [])


def _defaults(arm: ArmData, examined: list[str]) -> dict[str, float]:
    """The registry defaults of the examined hyperparameters (the paper's final_lr 0.1, gamma
    1e-3), for the tuning-gain claims."""
    entry = OPTIMIZERS.get(arm.optimizer)
    if entry is None:
        return {}
    return {h: entry.hyperparams[h].default for h in examined if h in entry.hyperparams}


def _claims(
    campaign: CampaignData,
    configs_by_arm: dict[str, list[Configuration]],
    metric: Metric,
    roles: VerdictSpec,
) -> dict:
    """Every claim the roles ask for, through the public ``campaign_verdicts``."""
    by_name = {a.name: a for a in campaign.arms}
    under_test = [n for n in roles.under_test if n in by_name]
    baselines = [n for n in roles.baselines if n in by_name]
    early_ref = roles.early_reference if roles.early_reference in by_name else None
    final_ref = roles.final_reference if roles.final_reference in by_name else None
    examined = {n: _examined(by_name[n], roles) for n in under_test}
    compared = [by_name[n] for n in [*under_test, early_ref] if n is not None]
    epoch = _early_epoch(compared) if early_ref is not None else None
    early = {a.name: _at_epoch(a, epoch) for a in compared} if epoch is not None else None
    return campaign_verdicts(
        configs_by_arm,
        metric,
        under_test=under_test,
        baselines=baselines,
        hyperparameters=examined,
        defaults={n: _defaults(by_name[n], examined[n]) for n in under_test},
        early=early,
        early_epoch=epoch,
        early_reference=early_ref if early is not None else None,
        final_reference=final_ref,
    )
