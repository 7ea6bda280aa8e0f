"""Published figures to set a campaign's results beside (see published.json for the source)."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np
from boundsweep.optimizers import OPTIMIZERS
from boundsweep.studies.robustness._campaign_data import ArmData, CampaignData, ScoredTrial

_PATH = Path(__file__).with_name("published.json")


@cache
def _published() -> dict:
    return json.loads(_PATH.read_text())


def published_runs(task: str | None) -> list[dict]:
    """The authors' released runs on ``task`` (empty for tasks they did not publish)."""
    return [
        {k: v for k, v in run.items() if k != "test_accuracy"}
        for run in _published()["runs"]
        if run["task"] == task
    ]


def published_source() -> str:
    return _published()["source"]


def context_notes() -> list[str]:
    """Independent re-runs of the paper's experiments, as one line each."""
    return list(_published()["context"])


# Published runs that name their seed, by task: each sets one trial beside one run.
_SEED_RUNS = {"quadratic_deep": Path(__file__).with_name("published_quadratic_deep.json")}
_SEED_RUNS_NOTE = (
    "one published run per configuration and seed, final test loss; a trial with the run's "
    "seed retraces its Hessian and minibatch order"
)


@cache
def _seed_runs(task: str) -> dict:
    return json.loads(_SEED_RUNS[task].read_text())


def seed_run_lines(campaign: CampaignData) -> dict | None:
    """Each published run beside this campaign's trials of its optimizer, hyperparameters and seed.

    A trial matches a run when its arm's optimizer is the run's, every hyperparameter the run
    names is within 1e-6 (relative) of the trial's, and its seed is the one that runs the same
    problem (``boundsweep_seed``). ``None`` for a task without such runs.
    """
    task = campaign.spec.task if campaign.spec is not None else None
    if task not in _SEED_RUNS:
        return None
    published = _seed_runs(task)
    rows = []
    for arm in campaign.arms:
        for run in published["runs"]:
            if run["optimizer"] != arm.optimizer:
                continue
            values = [
                test
                for record in arm.records
                if record.seed == run["boundsweep_seed"]
                and _same_hparams(_hparams(arm, record), run["hparams"])
                and (test := _test_metric(record)) is not None
            ]
            if values:
                rows.append(_seed_row(arm.name, run, values))
    return {"source": published["source"], "note": _SEED_RUNS_NOTE, "rows": rows}


def _hparams(arm: ArmData, record: ScoredTrial) -> dict[str, float]:
    # The set the run was built with, as the trial recorded it; else rebuilt from the spec.
    stored = record.user_attrs.get("hparams")
    if isinstance(stored, dict):
        return stored
    fixed = arm.spec.fixed() if arm.spec is not None else {}
    return {**OPTIMIZERS[arm.optimizer].defaults(), **fixed, **dict(record.config)}


def _test_metric(record: ScoredTrial) -> float | None:
    value = record.user_attrs.get("test_metric")
    finite = isinstance(value, int | float) and math.isfinite(value)
    return float(value) if finite else None


def _same_hparams(trial: dict[str, float], run: dict[str, float]) -> bool:
    return all(
        isinstance(trial.get(name), int | float)
        and math.isclose(trial[name], value, rel_tol=1e-6, abs_tol=1e-12)
        for name, value in run.items()
    )


def _seed_row(arm: str, run: dict, values: list[float]) -> dict:
    ours = float(np.mean(values))
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else None
    difference = round(ours / run["final_test_loss"] - 1.0, 6) + 0.0  # no "-0.00%"
    seed = run["boundsweep_seed"]
    same_problem = "" if seed == run["seed"] else f", published seed {run['seed']}"
    note = f"; {run['note']}" if "note" in run else ""
    return {
        "arm": arm,
        "optimizer": run["optimizer"],
        "label": run["label"],
        "seed": seed,
        "published_final": run["final_test_loss"],
        "published_best": None,
        "published_hparams": run["hparams"],
        "this_campaign": ours,
        "this_campaign_sd": sd,
        "relative_difference": difference,
        "line": f"{arm}, seed {seed}{same_problem} ({run['label']}): published final test loss "
        f"{run['final_test_loss']:.3f} · this campaign {ours:.3f} ({difference:+.2%}){note}",
    }
