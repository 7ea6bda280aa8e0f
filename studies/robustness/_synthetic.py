"""A synthetic campaign with known answers, stored exactly as real campaigns are.

Used by the tests and the report benchmark. Accuracy is an analytic function of the
configuration: a quadratic in log10 distance from each arm's best learning rate (and, when
asked, from the best final_lr / gamma), plus seed noise. With ``final_lr_matters=False`` the
bounded arms ignore final_lr, so "robust to final_lr" must come out supported; with True,
final_lr hurts as much as the baselines' lr does, so it must come out not supported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import product

import numpy as np
import optuna
from boundsweep.studies._storage._attrs import ATTR_ARM, ATTR_CAMPAIGN, ATTR_CANCELLED, ATTR_SPEC
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.storages import BaseStorage
from optuna.trial import create_trial

TASK = "mnist1d_mlp"
LR_GRID = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
FINAL_LR_GRID = [1e-3, 1e-2, 1e-1, 1.0, 10.0]
GAMMA_GRID = [1e-4, 1e-3, 1e-2, 1e-1]
CHANCE = 0.1
CURVATURE = 0.04  # accuracy lost per squared decade away from the best value
SEED_NOISE = 0.003
STEPS_PER_EPOCH = 32

# name -> (optimizer, peak accuracy, best lr, time constant of the learning curve in epochs)
ARMS = {
    "adabound": ("adabound", 0.92, 1e-3, 1.5),
    "amsbound": ("amsbound", 0.915, 1e-3, 1.5),
    "adam": ("adam", 0.90, 1e-3, 1.5),
    "amsgrad": ("amsgrad", 0.895, 1e-3, 1.6),
    "sgdm": ("sgdm", 0.91, 1e-1, 4.0),
}


def _spec(
    name: str,
    seeds: list[int],
    epochs: int,
    chosen: list[str],
    grids: dict[str, list[float]],
) -> dict:
    arms = []
    for arm, (optimizer, *_rest) in ARMS.items():
        if arm not in chosen:
            continue
        if optimizer in ("adabound", "amsbound"):
            space = {"final_lr": {"grid": grids["final_lr"]}, "gamma": {"grid": grids["gamma"]}}
        else:
            space = {"lr": {"grid": grids["lr"]}}
        arms.append(
            {
                "name": arm,
                "optimizer": optimizer,
                "space": space,
                "sampler": "grid",
                "n_trials": None,
            }
        )
    return {
        "name": name,
        "task": TASK,
        "budget": {"epochs": epochs, "data_fraction": 1.0, "max_steps": None},
        "seeds": seeds,
        "arms": arms,
        "pruner": "none",
        "description": "synthetic campaign with known answers",
    }


def _accuracy(
    arm: str, params: dict[str, float], final_lr_matters: bool, gamma_matters: bool
) -> float:
    _, peak, best_lr, _ = ARMS[arm]
    if "lr" in params:
        loss = CURVATURE * math.log10(params["lr"] / best_lr) ** 2
    else:
        loss = 0.0
        if final_lr_matters:
            loss += CURVATURE * math.log10(params["final_lr"] / 0.1) ** 2
        if gamma_matters:
            loss += CURVATURE * math.log10(params["gamma"] / 1e-3) ** 2
    return max(CHANCE, peak - loss)


def build_synthetic_campaign(
    storage: str | BaseStorage,
    name: str,
    *,
    final_lr_matters: bool,
    gamma_matters: bool = False,
    seeds: list[int] | None = None,
    epochs: int = 10,
    shift: float = 0.0,
    arms: list[str] | None = None,
    gamma_grid: list[float] | None = None,
    final_lr_grid: list[float] | None = None,
    lr_grid: list[float] | None = None,
    arithmetic: Sequence[str] = ("cpu AVX512",),
) -> int:
    """Create the arm studies of a finished synthetic campaign. Returns the number of trials.

    Args:
        shift: added to every accuracy (a nightly run that got better or worse).
        arms: which of ARMS to create (default: all).
        gamma_grid: the bounded arms' gamma values (default GAMMA_GRID).
        final_lr_grid: the bounded arms' final_lr values (default FINAL_LR_GRID).
        lr_grid: the baselines' lr values (default LR_GRID).
        arithmetic: the machines' kinds the trials record, taken in turn (two or more: a
            campaign run on machines that round differently).
    """
    seeds = list(seeds if seeds is not None else [0, 1, 2])
    chosen = list(ARMS) if arms is None else arms
    grids = {
        "gamma": gamma_grid or GAMMA_GRID,
        "final_lr": final_lr_grid or FINAL_LR_GRID,
        "lr": lr_grid or LR_GRID,
    }
    spec = _spec(name, seeds, epochs, chosen, grids)
    total = total_made = 0
    for index, (arm, (_optimizer, _peak, _lr, tau)) in enumerate(ARMS.items()):
        if arm not in chosen:
            continue
        study = optuna.create_study(
            storage=storage, study_name=f"{name}/{arm}", direction="maximize"
        )
        study.set_user_attr(ATTR_CAMPAIGN, name)
        study.set_user_attr(ATTR_ARM, arm)
        if arm == next(a for a in ARMS if a in chosen):  # once, as create_campaign stores it
            study.set_user_attr(ATTR_SPEC, spec)
        study.set_user_attr(ATTR_CANCELLED, False)
        grid = next(a["space"] for a in spec["arms"] if a["name"] == arm)
        axes = {k: v["grid"] for k, v in grid.items()}
        distributions = {k: FloatDistribution(min(v), max(v), log=True) for k, v in axes.items()}
        distributions["seed"] = IntDistribution(min(seeds), max(seeds))
        configs = [dict(zip(axes, values, strict=True)) for values in product(*axes.values())]
        trials = []
        for config in configs:
            clean = _accuracy(arm, config, final_lr_matters, gamma_matters)
            for seed in seeds:
                noise = np.random.default_rng(
                    [seed, index, *(int(abs(math.log10(v)) * 10) for v in config.values())]
                )
                val = min(1.0, max(0.0, clean + shift + SEED_NOISE * noise.standard_normal()))
                diverged = clean <= CHANCE
                curve = []
                for epoch in range(1, epochs + 1):
                    reached = val if diverged else val * (1 - math.exp(-epoch / tau))
                    curve.append(
                        {
                            "epoch": epoch,
                            "train_loss": 1.0 - reached,
                            "val_metric": reached,
                            "test_metric": reached - 0.005,
                            "lr": config.get("lr", 1e-3),
                            "lower_bound": None,
                            "upper_bound": None,
                            "seconds": 0.5,
                            "step": epoch * STEPS_PER_EPOCH,
                        }
                    )
                hparams = {"lr": 1e-3, **config}
                total_made += 1
                trials.append(
                    create_trial(
                        params={**config, "seed": seed},
                        distributions={k: distributions[k] for k in [*config, "seed"]},
                        value=val,
                        user_attrs={
                            "hparams": hparams,
                            "seed": seed,
                            "val_metric": val,
                            "test_metric": val - 0.005,
                            "status": "diverged" if diverged else "completed",
                            "curve": curve,
                            "wall_time": 0.5 * epochs,
                            "device": "cpu",
                            "arithmetic": arithmetic[total_made % len(arithmetic)],
                            "worker": "synthetic:0",
                        },
                    )
                )
        study.add_trials(trials)
        total += len(trials)
    return total
