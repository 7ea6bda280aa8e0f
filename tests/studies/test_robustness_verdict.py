"""The verdict comes out right both ways on synthetic campaigns with known answers."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from boundsweep.studies.robustness import (
    CampaignNotFoundError,
    analyze_campaign,
    render_html,
    summary_lines,
)
from boundsweep.studies.robustness._synthetic import build_synthetic_campaign
from optuna.distributions import FloatDistribution, IntDistribution

# Five seeds and three gammas: enough for every verdict to be decided under the family-wise
# control (a dynamics claim's t test has seeds - 1 degrees of freedom), and quick to store
# (the storage, not the analysis, is what a test of this size spends its time on).
GAMMAS = [1e-4, 1e-3, 1e-2]
SMALL = {"seeds": [0, 1, 2, 3, 4], "epochs": 4, "gamma_grid": GAMMAS}


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite file holding the synthetic campaigns the tests read (built once)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('robustness') / 'campaigns.db'}"
    build_synthetic_campaign(url, "final-lr-matters", final_lr_matters=True, **SMALL)
    # the other campaigns hold only the arms their tests read, to keep the suite quick
    few = ["adabound", "adam", "sgdm"]
    build_synthetic_campaign(
        url, "gamma-matters", final_lr_matters=False, gamma_matters=True, arms=few, **SMALL
    )
    build_synthetic_campaign(
        url,
        "one-seed",
        final_lr_matters=False,
        seeds=[0],
        epochs=3,
        arms=["adabound", "adam"],
        gamma_grid=GAMMAS,
    )
    build_synthetic_campaign(
        url, "no-baselines", final_lr_matters=False, arms=["adabound"], **SMALL
    )
    return url


def _verdict(report: dict, arm: str, hyperparameter: str) -> dict:
    return next(
        v for v in report["verdicts"] if v["arm"] == arm and v["hyperparameter"] == hyperparameter
    )


def test_final_lr_that_matters_is_not_supported_and_gamma_that_does_not_is(campaigns: str) -> None:
    report = analyze_campaign(campaigns, "final-lr-matters")
    for arm in ("adabound", "amsbound"):
        final_lr = _verdict(report, arm, "final_lr")
        gamma = _verdict(report, arm, "gamma")
        assert final_lr["outcome"] == "not supported", final_lr["sentence"]
        assert gamma["outcome"] == "supported", gamma["sentence"]
        # spread over final_lr 1e-3..10 around 0.1: 0.04 * 2^2 = 16 points, like adam's lr
        assert final_lr["spread"]["value"] == pytest.approx(16.0, abs=1.5)
        assert final_lr["spread"]["max_minus_min"] == pytest.approx(16.0, abs=1.5)
        low, high = final_lr["spread"]["ci"]
        assert low <= final_lr["spread"]["value"] <= high
        assert low <= 16.0 <= high
        assert final_lr["ratio"]["ci"][0] >= final_lr["threshold"]
        assert gamma["ratio"]["ci"][1] < gamma["threshold"]
        assert len(final_lr["sweep"]["values"]) == 5
        # final_lr matters at every gamma in this campaign, not just at the best one
        assert len(final_lr["spread_elsewhere"]) == 2
        assert all(e["spread"] > 10 for e in final_lr["spread_elsewhere"])
        assert all(len(b["sweep"]["values"]) == 5 for b in final_lr["baselines"])
        assert f"{arm} is robust to final_lr" in final_lr["sentence"]
        assert "not supported" in final_lr["sentence"]


def test_gamma_that_matters_is_not_supported_and_final_lr_that_does_not_is(campaigns: str) -> None:
    report = analyze_campaign(campaigns, "gamma-matters")
    assert _verdict(report, "adabound", "final_lr")["outcome"] == "supported"
    gamma = _verdict(report, "adabound", "gamma")
    assert gamma["outcome"] == "not supported", gamma["sentence"]
    # the sweep over gamma holds final_lr where the arm does best
    adabound = next(a for a in report["arms"] if a["name"] == "adabound")
    assert gamma["held_at"] == {"final_lr": adabound["best_configuration"]["params"]["final_lr"]}
    # the baseline window holds as many learning rates as gamma has values, around its best
    for baseline in gamma["baselines"]:
        assert len(baseline["sweep"]["values"]) == 3


def test_one_seed_is_inconclusive(campaigns: str) -> None:
    report = analyze_campaign(campaigns, "one-seed")
    for verdict in report["verdicts"]:
        assert verdict["outcome"] == "inconclusive"
        assert "MIN_SEEDS" in verdict["reason"]
    assert all(d["outcome"] == "inconclusive" for d in report["dynamics"])


def test_no_baseline_arm_is_inconclusive(campaigns: str) -> None:
    report = analyze_campaign(campaigns, "no-baselines")
    assert [a["name"] for a in report["arms"]] == ["adabound"]
    assert {v["outcome"] for v in report["verdicts"]} == {"inconclusive"}
    assert "baseline" in _verdict(report, "adabound", "final_lr")["reason"]


def test_dynamics_claims(campaigns: str) -> None:
    report = analyze_campaign(campaigns, "final-lr-matters")
    early = next(d for d in report["dynamics"] if d["arm"] == "adabound" and d["phase"] == "early")
    final = next(d for d in report["dynamics"] if d["arm"] == "adabound" and d["phase"] == "final")
    assert early["reference"] == "adam" and final["reference"] == "sgdm"
    assert early["epoch"] == 1  # 10% of 4 epochs rounds to 0: at least the first
    # synthetic peaks: adabound 92, sgdm 91; same early speed as adam with a higher peak
    assert final["difference"]["value"] == pytest.approx(1.0, abs=0.6)
    assert early["outcome"] == final["outcome"] == "supported"


def test_arm_summaries(campaigns: str) -> None:
    report = analyze_campaign(campaigns, "final-lr-matters")
    arms = {a["name"]: a for a in report["arms"]}
    adam = arms["adam"]
    assert adam["n_complete"] == 35 and adam["n_configurations"] == 7
    assert adam["seeds"] == [0, 1, 2, 3, 4]
    means = sorted(c["mean"] for c in adam["configurations"])
    assert adam["summary"]["best"] == max(means)
    assert adam["summary"]["worst"] == min(means)
    assert adam["summary"]["median"] == pytest.approx(np.median(means))
    assert adam["summary"]["iqr"] == pytest.approx(
        np.percentile(means, 75) - np.percentile(means, 25)
    )
    assert adam["best_configuration"]["params"] == {"lr": pytest.approx(1e-3)}
    assert adam["best_at_edge"] == {} and report["caveats"] == []
    # only the best lr lies within 0.5 points of the best (the next is 4 points down)
    assert adam["summary"]["robust_region"]["count"] == 1
    # expected max runs from the mean of the configurations to the best one
    em = adam["expected_max"]["unbiased"]
    assert em[0] == pytest.approx(np.mean(means)) and em[-1] == pytest.approx(max(means))
    assert adam["tunability"]["budget"] == 7
    # accuracy is stored as a fraction and reported in points
    assert 85 < adam["summary"]["best"] < 95
    # importance: lr dominates seed for the baselines
    fanova = adam["importance"]["fanova"]
    assert fanova["lr"] > fanova["seed"]
    # adabound where final_lr matters: final_lr is the most important factor
    assert (
        max(
            arms["adabound"]["importance"]["fanova"],
            key=arms["adabound"]["importance"]["fanova"].get,
        )
        == "final_lr"
    )


def test_seed_outweighs_final_lr_when_final_lr_does_not_matter(campaigns: str) -> None:
    report = analyze_campaign(campaigns, "gamma-matters")
    adabound = next(a for a in report["arms"] if a["name"] == "adabound")
    fanova = adabound["importance"]["fanova"]
    assert fanova["gamma"] > fanova["seed"] > 0
    assert fanova["final_lr"] < fanova["gamma"]


def test_report_is_json_and_test_metric_is_read_from_user_attrs(campaigns: str) -> None:
    val = analyze_campaign(campaigns, "final-lr-matters")
    test = analyze_campaign(campaigns, "final-lr-matters", metric="test")
    assert json.loads(json.dumps(test, allow_nan=False)) == test
    # the synthetic test metric sits 0.5 points under the validation metric
    for a, b in zip(val["arms"], test["arms"], strict=True):
        assert b["summary"]["best"] == pytest.approx(a["summary"]["best"] - 0.5)
    lines = summary_lines(val)
    assert lines[0].startswith("final-lr-matters (mnist1d_mlp")
    assert sum("robust to" in line for line in lines) == 4


def test_delta_widens_the_robust_region(campaigns: str) -> None:
    narrow = analyze_campaign(campaigns, "final-lr-matters", delta=0.5)
    wide = analyze_campaign(campaigns, "final-lr-matters", delta=5.0)
    n = {a["name"]: a["summary"]["robust_region"]["count"] for a in narrow["arms"]}
    w = {a["name"]: a["summary"]["robust_region"]["count"] for a in wide["arms"]}
    assert w["adam"] == 3 > n["adam"] == 1


def test_bad_input_names_the_field(campaigns: str) -> None:
    with pytest.raises(ValueError, match="metric.*val, test"):
        analyze_campaign(campaigns, "final-lr-matters", metric="train")
    with pytest.raises(ValueError, match="delta"):
        analyze_campaign(campaigns, "final-lr-matters", delta=-1)
    with pytest.raises(CampaignNotFoundError, match="nope"):
        analyze_campaign(campaigns, "nope")
    # a campaign whose name is a prefix of another is not mixed with it
    with pytest.raises(CampaignNotFoundError):
        analyze_campaign(campaigns, "final-lr")


def _perplexity_campaign(url: str) -> None:
    spec = {
        "name": "ptb",
        "task": "ptb_lstm1",
        "seeds": [0, 1, 2],
        "budget": {"epochs": 2},
        "arms": [
            {
                "name": "adabound",
                "optimizer": "adabound",
                "space": {"final_lr": {"grid": [1, 10, 100]}},
                "sampler": "grid",
            },
            {
                "name": "adam",
                "optimizer": "adam",
                "space": {"lr": {"grid": [1e-4, 1e-3, 1e-2]}},
                "sampler": "grid",
            },
        ],
    }
    # adabound: 80, 82, 84 (seed effects -0.2, +0.2, 0); adam: 80, 130, 180: final_lr
    # clearly matters less
    table = {
        "adabound": ("final_lr", [1, 10, 100], [80, 82, 84]),
        "adam": ("lr", [1e-3, 1e-2, 1e-4], [80, 130, 180]),
    }
    for arm, (name, grid, ppl) in table.items():
        study = optuna.create_study(storage=url, study_name=f"ptb/{arm}", direction="minimize")
        study.set_user_attr("boundsweep:campaign", "ptb")
        study.set_user_attr("boundsweep:arm", arm)
        study.set_user_attr("boundsweep:spec", spec)
        dist = {
            name: FloatDistribution(min(grid), max(grid), log=True),
            "seed": IntDistribution(0, 2),
        }
        for value, p in zip(grid, ppl, strict=True):
            for seed, offset in ((0, -0.2), (1, 0.2), (2, 0.0)):
                v = p + offset
                study.add_trial(
                    optuna.trial.create_trial(
                        params={name: value, "seed": seed},
                        distributions=dist,
                        value=v,
                        user_attrs={
                            "seed": seed,
                            "test_metric": v + 1,
                            "status": "completed",
                            "curve": [],
                        },
                    )
                )


@pytest.mark.postgres
def test_perplexity_campaign_on_postgres(postgres_url: str) -> None:
    _perplexity_campaign(postgres_url)
    report = analyze_campaign(postgres_url, "ptb")
    assert report["metric_name"] == "perplexity" and report["direction"] == "minimize"
    adabound = next(a for a in report["arms"] if a["name"] == "adabound")
    assert adabound["summary"]["best"] == pytest.approx(80.0)
    assert adabound["summary"]["worst"] == pytest.approx(84.0)
    # lower is better: the expected best after k trials falls with k
    assert adabound["expected_max"]["unbiased"] == pytest.approx([82.0, 80 + 2 / 3, 80.0])
    # delta 2% of the best perplexity (1.6): only 80 lies within 80 + 1.6
    assert adabound["summary"]["robust_region"]["count"] == 1
    verdict = next(v for v in report["verdicts"] if v["hyperparameter"] == "final_lr")
    assert verdict["spread"]["value"] == pytest.approx(4.0)
    assert verdict["baselines"][0]["spread"]["value"] == pytest.approx(100.0)
    assert verdict["outcome"] == "supported"
    # gamma is not varied in this campaign: no claim is made about it
    assert [v["hyperparameter"] for v in report["verdicts"]] == ["final_lr"]
    # adabound's best final_lr (1) is the smallest tried: said, since the optimum may lie below
    assert adabound["best_at_edge"] == {"final_lr": "low"}
    assert report["caveats"] and report["caveats"][0].startswith("adabound's best final_lr (1)")
    assert next(a for a in report["arms"] if a["name"] == "adam")["best_at_edge"] == {}


@pytest.mark.postgres
def test_campaign_on_postgres_gives_the_sqlite_verdicts(postgres_url: str) -> None:
    build_synthetic_campaign(
        postgres_url, "final-lr-matters", final_lr_matters=True, arms=["adabound", "adam"], **SMALL
    )
    report = analyze_campaign(postgres_url, "final-lr-matters")
    assert _verdict(report, "adabound", "final_lr")["outcome"] == "not supported"
    assert _verdict(report, "adabound", "gamma")["outcome"] == "supported"


def test_trials_from_machines_that_round_differently_are_said_once(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'mixed.db'}"
    kinds = ["cpu AVX512", "cpu AVX2"]
    small = {"seeds": [0, 1], "epochs": 2, "gamma_grid": GAMMAS, "arms": ["adabound", "adam"]}
    build_synthetic_campaign(url, "mixed", final_lr_matters=False, arithmetic=kinds, **small)
    build_synthetic_campaign(url, "same", final_lr_matters=False, **small)
    report = analyze_campaign(url, "mixed", importance=False)
    mixed = [c for c in report["caveats"] if "round differently" in c]
    assert len(mixed) == 1
    assert "cpu AVX2: " in mixed[0] and "cpu AVX512: " in mixed[0] and "marginal" in mixed[0]
    assert any("round differently" in line for line in summary_lines(report))
    assert "round differently" in render_html(report)
    same = analyze_campaign(url, "same", importance=False)
    assert not any("round differently" in c for c in same["caveats"])
