"""The public verdict API on plain data: edge cases never crash and say why they cannot decide."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from boundsweep.studies.robustness import (
    MIN_SEEDS,
    Configuration,
    Metric,
    analyze_campaign,
    campaign_verdicts,
    dynamics_verdict,
    family_verdicts,
    robustness_verdict,
    summary_lines,
    tuning_gain_verdict,
)
from boundsweep.studies.robustness._family import holm
from optuna.distributions import CategoricalDistribution

ACCURACY = Metric(maximize=True, margin=0.5, unit="points", name="accuracy")
SEEDS = [0, 1, 2, 3, 4]


def _sweep(
    name: str, values: list[float], means: list[float], noise: float, seed: int, shared: float = 1.0
) -> list[Configuration]:
    """Configurations over ``name`` with per-seed scores: mean + seed effect + noise."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(0, shared, len(SEEDS))
    return [
        Configuration({name: v}, list(SEEDS), m + effect + rng.normal(0, noise, len(SEEDS)))
        for v, m in zip(values, means, strict=True)
    ]


LRS = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]


def _baselines(spread: float = 25.0, noise: float = 1.0) -> dict[str, list[Configuration]]:
    shape = [1.0, 0.3, 0.0, 0.15, 0.6]
    return {
        "adam": _sweep("lr", LRS, [90 - spread * s for s in shape], noise, 1),
        "sgdm": _sweep("lr", LRS, [90 - 1.2 * spread * s for s in shape], noise, 2),
    }


def test_robust_and_sensitive_hyperparameters_are_told_apart() -> None:
    flat = _sweep("final_lr", [0.01, 0.03, 0.1, 0.3, 1.0], [89.0] * 5, 1.0, 3)
    steep = _sweep("final_lr", [0.01, 0.03, 0.1, 0.3, 1.0], [60, 85, 89, 80, 55], 1.0, 4)
    robust = robustness_verdict("adabound", "final_lr", flat, _baselines(), ACCURACY)
    assert robust["outcome"] == "supported", robust["sentence"]
    assert robust["ratio"]["ci"][0] == 0.0  # a flat sweep's interval reaches 0
    assert robust["spread"]["value"] < robust["spread"]["max_minus_min"]  # held out: no noise bias
    sensitive = robustness_verdict("adabound", "final_lr", steep, _baselines(), ACCURACY)
    assert sensitive["outcome"] == "not supported", sensitive["sentence"]
    assert sensitive["ratio"]["ci"][0] >= 0.5
    assert sensitive["reference"] == "adam"  # the smaller spread: the hardest comparison
    assert {b["arm"] for b in sensitive["baselines"]} == {"adam", "sgdm"}


def test_a_zero_spread_reference_is_inconclusive_not_a_crash() -> None:
    """A reference with spread exactly 0 raised ZeroDivisionError (API 500) before."""
    arm = _sweep("final_lr", [0.01, 0.1, 1.0], [80, 85, 90], 0.5, 5)
    constant = [Configuration({"lr": lr}, list(SEEDS), np.full(5, 62.5)) for lr in LRS[:3]]
    verdict = robustness_verdict("adabound", "final_lr", arm, {"adam": constant}, ACCURACY)
    assert verdict["outcome"] == "inconclusive"
    assert "cannot tell sensitivities apart" in verdict["reason"]
    # everything tied everywhere: no division, no NaN outcome
    tied = [Configuration({"final_lr": v}, list(SEEDS), np.full(5, 62.5)) for v in (0.01, 0.1, 1)]
    both = robustness_verdict("adabound", "final_lr", tied, {"adam": constant}, ACCURACY)
    assert both["outcome"] == "inconclusive"
    gain = tuning_gain_verdict("adabound", "final_lr", tied, ACCURACY, default=0.1)
    assert gain["outcome"] == "supported" and gain["gain"]["ci"] == [0.0, 0.0]


def test_diverged_configurations_count_as_what_they_are() -> None:
    """Configurations that diverged score chance (10%) on every seed: a real, huge spread."""
    arm = _sweep("final_lr", [0.01, 0.1, 1.0, 10.0], [88, 89, 88, 10], 1.0, 6)
    arm[-1] = Configuration(arm[-1].params, list(SEEDS), np.full(5, 10.0))
    verdict = robustness_verdict("adabound", "final_lr", arm, _baselines(), ACCURACY)
    assert verdict["outcome"] == "not supported", verdict["sentence"]
    assert verdict["spread"]["max_minus_min"] == pytest.approx(79, abs=2)


def test_fewer_than_min_seeds_says_so() -> None:
    assert MIN_SEEDS == 3
    two = [Configuration({"final_lr": v}, [0, 1], np.array([80.0, 81.0])) for v in (0.01, 0.1, 1)]
    verdict = robustness_verdict("adabound", "final_lr", two, _baselines(), ACCURACY)
    assert verdict["outcome"] == "inconclusive"
    assert "share 2 seed(s); a decisive verdict needs 3 (MIN_SEEDS)" in verdict["reason"]
    reference = [Configuration({"lr": 1e-3}, [0, 1], np.array([80.0, 81.0]))]
    dynamics = dynamics_verdict("adabound", two, "sgdm", reference, ACCURACY)
    assert dynamics["outcome"] == "inconclusive" and "MIN_SEEDS" in dynamics["reason"]


def test_tuning_gain_against_a_known_truth() -> None:
    values = [0.01, 0.03, 0.1, 0.3, 1.0]
    worse_default = _sweep("final_lr", values, [85, 88, 84, 90, 86], 0.3, 7)
    gain = tuning_gain_verdict("adabound", "final_lr", worse_default, ACCURACY, default=0.1)
    assert gain["outcome"] == "not supported", gain["sentence"]
    assert gain["gain"]["best_value"] == 0.3
    assert gain["gain"]["ci"][0] <= 6.0 <= gain["gain"]["ci"][1]
    assert tuning_gain_verdict("adabound", "final_lr", worse_default, ACCURACY, default=5.0) is None


def test_any_metric_and_direction() -> None:
    """A minimised metric (MSE) with a relative margin: lower is better everywhere."""
    mse = Metric(maximize=False, margin=0.05, unit="MSE", name="mse", relative=True)
    flat = _sweep("lr", LRS, [0.20] * 5, 0.002, 8, shared=0.002)
    steep = {"adam": _sweep("lr", LRS, [0.9, 0.3, 0.2, 0.25, 0.6], 0.002, 9, shared=0.002)}
    verdict = robustness_verdict("lion", "lr", flat, steep, mse)
    assert verdict["outcome"] == "supported", verdict["sentence"]
    worse = _sweep("lr", LRS, [0.9, 0.3, 0.25, 0.26, 0.6], 0.002, 10, shared=0.002)
    dynamics = dynamics_verdict("lion", worse, "adam", steep["adam"], mse)
    # 0.25 vs 0.20: 0.05 worse, far beyond the margin of 5% of 0.25
    assert dynamics["outcome"] == "not supported", dynamics["sentence"]
    assert dynamics["difference"]["value"] == pytest.approx(-0.05, abs=0.01)


def test_identical_arms_are_one_piece_of_evidence() -> None:
    values = [0.01, 0.1, 1.0]
    adabound = _sweep("final_lr", values, [89, 89.2, 88.9], 1.0, 11)
    amsbound = [Configuration(dict(c.params), list(c.seeds), c.values.copy()) for c in adabound]
    report = campaign_verdicts(
        {"adabound": adabound, "amsbound": amsbound, **_baselines()},
        ACCURACY,
        under_test=["adabound", "amsbound"],
        baselines=["adam", "sgdm"],
    )
    first, second = report["verdicts"]
    assert first["p"] is not None and second["p"] is None
    assert second["duplicate_of"] == "adabound"
    assert "scored exactly as adabound in 3/3 configurations" in second["sentence"]
    assert report["identical"] == [{"arm": "amsbound", "same_as": "adabound", "configurations": 3}]
    assert report["family"]["claims"] == 1


def test_a_metric_coarser_than_the_margin_cannot_decide_the_margin() -> None:
    """144 validation images: accuracy moves in 0.69-point steps, the margin is 0.5."""
    rng = np.random.default_rng(12)

    def on_lattice(mean: float) -> np.ndarray:
        return np.round((mean + rng.normal(0, 1.0, 5)) * 1.44) / 1.44

    arms = {
        "adabound": [
            Configuration({"final_lr": v}, list(SEEDS), on_lattice(90)) for v in (0.01, 0.1, 1)
        ],
        "sgdm": [
            Configuration({"lr": v}, list(SEEDS), on_lattice(m))
            for v, m in zip(LRS, [60, 80, 90, 85, 70], strict=True)
        ],
    }
    report = campaign_verdicts(
        arms,
        Metric(True, 0.5, "points", "accuracy", step=None),
        under_test=["adabound"],
        baselines=["sgdm"],
        defaults={"adabound": {"final_lr": 0.1}},
        final_reference="sgdm",
    )
    assert report["step"] == pytest.approx(100 / 144)
    (dynamics,) = report["dynamics"]
    assert dynamics["outcome"] == "inconclusive" and dynamics["p"] is None
    assert (
        "moves in steps of 0.69 points, coarser than the 0.50 points margin" in dynamics["reason"]
    )
    assert "steps of 0.69" in report["tuning"][0]["reason"]


def test_holm_by_hand_and_the_family_holds_back_weak_claims() -> None:
    assert holm([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    # weighted: the first claim weighs 2 of 5; order by p / weight, scale by remaining weight
    assert holm([0.01, 0.04, 0.03, 0.2], [2, 1, 1, 1]) == pytest.approx([0.025, 0.09, 0.09, 0.2])
    claims = [
        {"claim": "a", "body": "a", "outcome": "supported", "p": 0.001},
        {"claim": "b", "body": "b", "outcome": "not supported", "p": 0.03},
        {"claim": "c", "body": "c", "outcome": "inconclusive", "p": 0.5},
        {"claim": "d", "outcome": "inconclusive", "reason": "too few seeds", "p": None},
    ]
    summary = family_verdicts(claims)
    assert summary == {
        "method": "Holm",
        "alpha": 0.05,
        "weights": {},
        "claims": 3,
        "untested": 1,
        "decisive": 1,
    }
    assert claims[0]["outcome"] == "supported" and claims[0]["p_adjusted"] == pytest.approx(0.003)
    assert claims[1]["outcome"] == "inconclusive" and claims[1]["outcome_alone"] == "not supported"
    assert "Holm p = 0.06" in claims[1]["sentence"]
    assert "p_adjusted" not in claims[3]


def test_unknown_arm_names_the_arms() -> None:
    with pytest.raises(ValueError, match="unknown arm 'lion'; arms: adam, sgdm"):
        campaign_verdicts(_baselines(), ACCURACY, under_test=["lion"], baselines=["adam"])
    with pytest.raises(ValueError, match="margin must be >= 0"):
        Metric(True, -1.0)


def test_a_stored_campaign_with_a_zero_spread_baseline_reports(tmp_path) -> None:
    """The report (and so the API) answers for a reference whose spread is exactly 0."""
    url = f"sqlite:///{tmp_path / 'zero.db'}"
    spec = {
        "name": "zero",
        "task": "digits_mlp",
        "seeds": [0, 1, 2],
        "arms": [
            {"optimizer": "adabound", "space": {"final_lr": {"grid": [0.01, 0.1, 1.0]}}},
            {"optimizer": "adam", "space": {"lr": {"grid": [1e-4, 1e-3, 1e-2]}}},
        ],
    }
    table = {
        "adabound": ("final_lr", [0.01, 0.1, 1.0], [0.8, 0.85, 0.9]),
        "adam": ("lr", [1e-4, 1e-3, 1e-2], [0.625] * 3),
    }
    for arm, (name, grid, accuracy) in table.items():
        study = optuna.create_study(storage=url, study_name=f"zero/{arm}", direction="maximize")
        study.set_user_attr("boundsweep:campaign", "zero")
        study.set_user_attr("boundsweep:arm", arm)
        study.set_user_attr("boundsweep:spec", spec)
        dist = {name: CategoricalDistribution(grid), "seed": CategoricalDistribution([0, 1, 2])}
        for value, acc in zip(grid, accuracy, strict=True):
            for seed in (0, 1, 2):
                v = acc if arm == "adam" else acc + 0.001 * seed
                study.add_trial(
                    optuna.trial.create_trial(
                        params={name: value, "seed": seed},
                        distributions=dist,
                        value=v,
                        user_attrs={
                            "seed": seed,
                            "test_metric": v,
                            "status": "completed",
                            "curve": [],
                        },
                    )
                )
    report = analyze_campaign(url, "zero", importance=False)
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    verdict = report["verdicts"][0]
    assert verdict["outcome"] == "inconclusive" and "cannot tell" in verdict["reason"]
    assert any(
        "adabound is robust to final_lr: inconclusive" in line for line in summary_lines(report)
    )


def test_a_stored_campaign_names_its_arm_under_test_and_baselines(tmp_path) -> None:
    """Issue 22: any arm under test, any baselines, from the spec's ``verdicts``."""
    url = f"sqlite:///{tmp_path / 'roles.db'}"
    lrs = [1e-3, 1e-2, 1e-1]
    spec = {
        "name": "roles",
        "task": "digits_mlp",
        "seeds": [0, 1, 2, 3],
        "arms": [
            {"optimizer": "adamw", "space": {"lr": {"grid": lrs}}},
            {"optimizer": "sgdm", "space": {"lr": {"grid": lrs}}},
            {"optimizer": "adabound", "space": {"final_lr": {"grid": [0.01, 0.1, 1.0]}}},
        ],
        "verdicts": {"under_test": ["adamw"], "baselines": ["sgdm"], "final_reference": "sgdm"},
    }
    table = {
        "adamw": ("lr", lrs, [0.90, 0.905, 0.895]),  # flat in its lr
        "sgdm": ("lr", lrs, [0.60, 0.80, 0.90]),  # 30 points over the same decades
        "adabound": ("final_lr", [0.01, 0.1, 1.0], [0.5, 0.7, 0.9]),  # not under test here
    }
    rng = np.random.default_rng(13)
    for arm, (name, grid, accuracy) in table.items():
        study = optuna.create_study(storage=url, study_name=f"roles/{arm}", direction="maximize")
        study.set_user_attr("boundsweep:campaign", "roles")
        study.set_user_attr("boundsweep:arm", arm)
        study.set_user_attr("boundsweep:spec", spec)
        dist = {name: CategoricalDistribution(grid), "seed": CategoricalDistribution([0, 1, 2, 3])}
        for value, acc in zip(grid, accuracy, strict=True):
            for seed in (0, 1, 2, 3):
                v = float(acc + rng.normal(0, 0.003))
                study.add_trial(
                    optuna.trial.create_trial(
                        params={name: value, "seed": seed},
                        distributions=dist,
                        value=v,
                        user_attrs={
                            "seed": seed,
                            "test_metric": v,
                            "status": "completed",
                            "curve": [],
                        },
                    )
                )
    report = analyze_campaign(url, "roles", importance=False)
    assert report["roles"]["under_test"] == ["adamw"] and report["roles"]["baselines"] == ["sgdm"]
    (verdict,) = report["verdicts"]
    assert (verdict["arm"], verdict["hyperparameter"], verdict["reference"]) == (
        "adamw",
        "lr",
        "sgdm",
    )
    assert verdict["outcome"] == "supported", verdict["sentence"]
    # adamw's registry default lr (1e-3) was run: its tuning gain is claimed too
    assert [t["hyperparameter"] for t in report["tuning"]] == ["lr"]
    assert [d["reference"] for d in report["dynamics"]] == ["sgdm"]
    assert not any(v["arm"] == "adabound" for v in report["verdicts"])
