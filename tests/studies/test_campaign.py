"""The campaign spec: validation errors name the field and the valid choices; presets; YAML/JSON."""

from __future__ import annotations

import json

import pytest
from boundsweep.optimizers import REGISTRY
from boundsweep.studies.campaign import (
    MAX_GRID_POINTS,
    MAX_TRIALS_PER_CAMPAIGN,
    PRESETS,
    CampaignSpec,
    Grid,
    Range,
    half_decade_grid,
    preset,
)
from boundsweep.studies.tasks import TASKS
from pydantic import ValidationError


def _spec(**changes: object) -> dict:
    data = {
        "name": "c1",
        "task": "digits_mlp",
        "seeds": [0, 1],
        "arms": [{"optimizer": "adabound", "space": {"final_lr": {"grid": [0.01, 0.1]}}}],
    }
    data.update(changes)
    return data


def _error(data: dict) -> tuple[str, str]:
    """(location, message) of the first validation error."""
    with pytest.raises(ValidationError) as info:
        CampaignSpec.model_validate(data)
    error = info.value.errors()[0]
    return ".".join(str(p) for p in error["loc"]), error["msg"]


def test_a_valid_spec_parses_and_fills_defaults() -> None:
    spec = CampaignSpec.model_validate(_spec())
    arm = spec.arms[0]
    assert arm.name == "adabound"
    assert arm.space["final_lr"] == Grid(grid=[0.01, 0.1])
    assert arm.planned_trials(spec.seeds) == 4
    assert arm.queued_params(spec.seeds) == [
        {"final_lr": 0.01, "seed": 0},
        {"final_lr": 0.01, "seed": 1},
        {"final_lr": 0.1, "seed": 0},
        {"final_lr": 0.1, "seed": 1},
    ]
    assert spec.pruner == "none"


def test_sampled_arm_queues_n_trials_slots_with_seeds_in_turn() -> None:
    arm = {
        "optimizer": "adam",
        "sampler": "tpe",
        "n_trials": 5,
        "space": {"lr": {"low": 1e-4, "high": 1e-1, "log": True}, "beta1": 0.8},
    }
    spec = CampaignSpec.model_validate(_spec(arms=[arm], seeds=[7, 8]))
    assert spec.arms[0].space["lr"] == Range(low=1e-4, high=1e-1, log=True)
    assert spec.arms[0].fixed() == {"beta1": 0.8}
    assert spec.arms[0].queued_params(spec.seeds) == [{"seed": s} for s in (7, 8, 7, 8, 7)]
    assert spec.total_trials() == 5


def test_unknown_optimizer_lists_the_valid_ones() -> None:
    loc, msg = _error(_spec(arms=[{"optimizer": "adabund"}]))
    assert loc == "arms.0.optimizer"
    assert "adabund" in msg
    for name in REGISTRY:
        assert name in msg


def test_unknown_task_lists_the_valid_ones() -> None:
    loc, msg = _error(_spec(task="cifar11"))
    assert loc == "task"
    for name in TASKS:
        assert name in msg


def test_unknown_hyperparameter_lists_the_optimizers() -> None:
    loc, msg = _error(_spec(arms=[{"optimizer": "adam", "space": {"final_lr": 0.1}}]))
    assert loc == "arms.0"
    assert "space.final_lr" in msg
    for name in REGISTRY["adam"].hyperparams:
        assert name in msg


@pytest.mark.parametrize(
    "space",
    [
        {"gamma": 5.0},
        {"gamma": {"grid": [1e-3, 5.0]}},
        {"gamma": {"low": 1e-3, "high": 5.0}},
    ],
)
def test_out_of_range_value_names_the_field(space: dict) -> None:
    sampler = {"sampler": "random", "n_trials": 2} if "low" in str(space) else {}
    loc, msg = _error(_spec(arms=[{"optimizer": "adabound", "space": space, **sampler}]))
    assert "space.gamma" in msg
    assert "5.0" in msg


def test_grid_too_large_is_refused_with_the_cap() -> None:
    big = {"grid": [round(0.001 * (i + 1), 6) for i in range(40)]}
    loc, msg = _error(
        _spec(arms=[{"optimizer": "adabound", "space": {"final_lr": big, "gamma": big}}])
    )
    assert "1600 points" in msg and str(MAX_GRID_POINTS) in msg


def test_campaign_trial_cap() -> None:
    grid = {"grid": [round(0.01 * (i + 1), 4) for i in range(100)]}
    arms = [{"name": f"a{i}", "optimizer": "adam", "space": {"lr": grid}} for i in range(11)]
    loc, msg = _error(_spec(arms=arms, seeds=list(range(10))))
    assert str(MAX_TRIALS_PER_CAMPAIGN) in msg and "11000" in msg


@pytest.mark.parametrize(
    ("arm", "needle"),
    [
        ({"optimizer": "adam", "space": {"lr": {"low": 1e-4, "high": 1e-2}}}, "space.lr"),
        ({"optimizer": "adam", "sampler": "grid", "n_trials": 3}, "n_trials"),
        ({"optimizer": "adam", "sampler": "tpe"}, "n_trials: required"),
        ({"optimizer": "adam", "space": {"lr": {"low": 1e-2, "high": 1e-4}}}, "low must be below"),
        ({"optimizer": "adam", "space": {"lr": {"grid": [0.1, 0.1]}}}, "distinct"),
    ],
)
def test_inconsistent_arms_are_refused(arm: dict, needle: str) -> None:
    loc, msg = _error(_spec(arms=[arm]))
    assert loc.startswith("arms.0")
    assert needle in msg


def test_names_seeds_and_pruner_are_checked() -> None:
    assert _error(_spec(name="a/b"))[0] == "name"
    assert "distinct" in _error(_spec(seeds=[1, 1]))[1]
    loc, msg = _error(_spec(pruner="asha"))
    assert loc == "pruner" and "median" in msg and "hyperband" in msg
    arms = [{"optimizer": "adam"}, {"optimizer": "adam"}]
    assert "unique" in _error(_spec(arms=arms))[1]
    assert _error(_spec(extra_field=1))[0] == "extra_field"
    assert _error(_spec(budget={"epochs": 0}))[0] == "budget.epochs"


def test_yaml_and_json_round_trip() -> None:
    spec = CampaignSpec.model_validate(
        _spec(
            arms=[
                {"optimizer": "adabound", "space": {"final_lr": {"grid": [0.01, 0.1]}, "lr": 3e-3}},
                {
                    "name": "adam-tpe",
                    "optimizer": "adam",
                    "sampler": "tpe",
                    "n_trials": 4,
                    "space": {"lr": {"low": 1e-4, "high": 1e-1, "log": True}},
                },
            ],
            budget={"epochs": 2, "max_steps": 10},
            pruner="median",
        )
    )
    assert CampaignSpec.from_yaml(spec.to_yaml()) == spec
    assert CampaignSpec.model_validate_json(spec.model_dump_json()) == spec
    assert json.loads(spec.model_dump_json())["arms"][1]["space"]["lr"]["log"] is True
    with pytest.raises(ValueError, match="mapping"):
        CampaignSpec.from_yaml("- just a list")


def test_paper_robustness_preset() -> None:
    spec = preset("paper-robustness", task="digits_mlp", seeds=[0, 1, 2])
    arms = {arm.name: arm for arm in spec.arms}
    assert set(arms) == {"adabound", "amsbound", "adam", "amsgrad", "sgdm"}
    assert arms["adabound"].space["final_lr"] == Grid(grid=[0.01, 0.03, 0.1, 0.3, 1.0])
    assert arms["adabound"].space["gamma"] == Grid(grid=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    # Baselines get an lr grid of the same width, centred on their usual learning rate.
    assert arms["adam"].space["lr"] == Grid(grid=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    assert arms["sgdm"].space["lr"] == Grid(grid=[0.01, 0.03, 0.1, 0.3, 1.0])
    assert spec.total_trials() == (2 * 25 + 3 * 5) * 3
    small = preset("paper-robustness", task="digits_mlp", grid_width=3, name="demo")
    assert small.name == "demo"
    assert small.total_trials() == (2 * 9 + 3 * 3) * 3


def test_verdict_roles_default_to_the_papers_choice_and_a_spec_can_name_any_arms() -> None:
    paper = preset("paper-robustness", task="digits_mlp")
    roles = paper.verdict_roles()
    assert (roles.under_test, roles.baselines) == (
        ["adabound", "amsbound"],
        ["adam", "amsgrad", "sgdm"],
    )
    assert (roles.early_reference, roles.final_reference) == ("adam", "sgdm")
    # a campaign stored before the field existed gets the same roles from its optimizers
    data = paper.model_dump(mode="json")
    del data["verdicts"]
    assert CampaignSpec.model_validate(data).verdict_roles() == roles
    # any arm can be under test, against any baselines, over chosen hyperparameters
    arms = [
        {
            "optimizer": "adamw",
            "space": {"lr": {"grid": [1e-3, 1e-2, 1e-1]}, "weight_decay": {"grid": [0.0, 0.1]}},
        },
        {"optimizer": "sgdm", "space": {"lr": {"grid": [1e-2, 1e-1, 1.0]}}},
    ]
    verdicts = {
        "under_test": ["adamw"],
        "baselines": ["sgdm"],
        "hyperparameters": {"adamw": ["lr"]},
    }
    spec = CampaignSpec.model_validate(_spec(arms=arms, verdicts=verdicts))
    assert spec.verdict_roles().hyperparameters == {"adamw": ["lr"]}
    assert CampaignSpec.from_yaml(spec.to_yaml()) == spec


@pytest.mark.parametrize(
    ("verdicts", "location", "needle"),
    [
        ({"under_test": ["adam"]}, "", "verdicts.under_test: no arm 'adam'; arms: adabound"),
        ({"under_test": []}, "verdicts.under_test", "at least 1 item"),
        (
            {"under_test": ["adabound"], "baselines": ["adabound"]},
            "",
            "verdicts.baselines: adabound is also under test",
        ),
        (
            {"under_test": ["adabound"], "hyperparameters": {"adabound": ["gamma"]}},
            "",
            "verdicts.hyperparameters.adabound: adabound does not vary 'gamma'; it varies: final_lr",
        ),
        (
            {"under_test": ["adabound"], "early_reference": "sgdm"},
            "",
            "verdicts.early_reference: no arm 'sgdm'",
        ),
        ({"under_test": ["adabound"], "baseline": ["x"]}, "verdicts.baseline", "Extra inputs"),
    ],
)
def test_verdict_roles_name_the_field(verdicts: dict, location: str, needle: str) -> None:
    where, message = _error(_spec(verdicts=verdicts))
    assert where == location and needle in message, (where, message)


def test_adabound_betas_preset_and_errors() -> None:
    spec = preset("adabound-betas", seeds=[0])
    (arm,) = spec.arms
    assert arm.space["beta1"] == Grid(grid=[0.7, 0.8, 0.9, 0.95, 0.97])
    assert arm.space["beta2"] == Grid(grid=[0.99, 0.995, 0.999, 0.9995, 0.9999])
    assert set(PRESETS) == {"paper-robustness", "adabound-betas"}
    with pytest.raises(ValueError, match="valid presets: adabound-betas, paper-robustness"):
        preset("paper")
    with pytest.raises(ValueError, match="grid_width"):
        preset("paper-robustness", grid_width=12)
    with pytest.raises(ValidationError, match="unknown task"):
        preset("paper-robustness", task="imagenet")


def test_half_decade_grid() -> None:
    assert half_decade_grid(0.1, 1) == [0.1]
    assert half_decade_grid(0.1, 3) == [0.03, 0.1, 0.3]
    assert half_decade_grid(1e-3, 4) == [1e-4, 3e-4, 1e-3, 3e-3]


_LIMITS_EVERYWHERE = r"""
import sys
if sys.argv[1] == "pure-python":
    sys.modules["yaml._yaml"] = None  # PyYAML built without libyaml: its Python parser
import yaml
from boundsweep.studies.campaign import DocumentError, parse_yaml

assert hasattr(yaml, "CSafeLoader") == (sys.argv[1] == "libyaml"), yaml.__with_libyaml__
laughs = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] + [
    f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)
]
cases = {
    "laughs": "\n".join(laughs),
    "deep": "x: " + "[" * 5000 + "]" * 5000,
    "aliases": "x: &a 1\ny: [" + ", ".join(["*a"] * 65) + "]",
}
for name, text in cases.items():
    try:
        parse_yaml(text)
    except DocumentError as exc:
        print(name, exc)
print(parse_yaml("seeds: &s [0, 1]\nagain: *s"))
"""


@pytest.mark.parametrize("parser", ["libyaml", "pure-python"])
def test_yaml_limits_hold_with_either_parser(parser: str) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _LIMITS_EVERYWHERE, parser],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "laughs the document holds more than 50,000 values (the limit; a YAML alias counts "
        "as every value it repeats)",
        "deep nested deeper than the limit of 32 levels",
        "aliases the document uses more than 64 YAML aliases (the limit)",
        "{'seeds': [0, 1], 'again': [0, 1]}",
    ]
