"""The training loop on the bundled real-data tasks: curves, budgets, determinism, divergence."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import pytest
from boundsweep.studies._training._loop import _device_data
from boundsweep.studies.tasks import TASKS, Budget
from boundsweep.studies.training import EpochRecord, TrainResult, train

QUICK = Budget(epochs=2, data_fraction=0.25)


def _curve(result: TrainResult) -> list[dict]:
    # Wall time is the one field allowed to differ between identical runs.
    return [{k: v for k, v in asdict(r).items() if k != "seconds"} for r in result.epochs]


@pytest.mark.parametrize("task", ["digits_mlp", "mnist1d_mlp"])
def test_records_every_epoch_with_json_safe_values(task: str) -> None:
    seen: list[EpochRecord] = []
    result = train(task, "adabound", {}, seed=1, budget=QUICK, on_epoch=seen.append)

    assert result.status == "completed"
    assert [r.epoch for r in result.epochs] == [1, 2]
    assert seen == result.epochs
    assert result.epochs[-1].step == result.steps == 2 * TASKS[task].steps_per_epoch(QUICK)
    assert result.val_metric == result.epochs[-1].val_metric
    assert result.test_metric == result.epochs[-1].test_metric
    for record in result.epochs:
        assert 0.0 <= record.val_metric <= 1.0 and 0.0 <= record.test_metric <= 1.0
        assert 0.0 < record.lower_bound < record.upper_bound
    json.dumps([asdict(r) for r in result.epochs], allow_nan=False)
    assert result.device == "cpu"


def test_unbounded_optimizer_has_no_bounds() -> None:
    result = train("digits_mlp", "adam", {"lr": 3e-3}, seed=0, budget=Budget(epochs=1))
    assert result.epochs[0].lower_bound is None and result.epochs[0].upper_bound is None
    assert result.hparams["lr"] == 3e-3


def test_same_seed_same_curve_other_seed_other_curve() -> None:
    budget = Budget(epochs=2, data_fraction=0.3)
    _device_data.cache_clear()  # the first run loads the data, the second finds it cached
    first = train("mnist1d_mlp", "adabound", {"lr": 3e-3}, seed=7, budget=budget)
    again = train("mnist1d_mlp", "adabound", {"lr": 3e-3}, seed=7, budget=budget)
    other = train("mnist1d_mlp", "adabound", {"lr": 3e-3}, seed=8, budget=budget)
    assert _curve(first) == _curve(again)
    assert _curve(first) != _curve(other)


def test_max_steps_stops_mid_epoch_and_still_records_it() -> None:
    result = train("digits_mlp", "sgdm", {}, seed=0, budget=Budget(epochs=5, max_steps=7))
    assert result.steps == 7
    assert [r.step for r in result.epochs] == [7]


def test_training_learns_digits() -> None:
    result = train("digits_mlp", "adam", {}, seed=0, budget=Budget(epochs=3))
    losses = [r.train_loss for r in result.epochs]
    assert losses[-1] < losses[0]
    assert result.test_metric > 0.8


def test_diverging_run_stops_with_status_instead_of_raising() -> None:
    result = train(
        "digits_mlp", "sgdm", {"lr": 10.0, "momentum": 0.99}, seed=0, budget=Budget(epochs=3)
    )
    assert result.status == "diverged"
    assert result.val_metric == result.test_metric == TASKS["digits_mlp"].diverged_value
    assert result.steps < 3 * TASKS["digits_mlp"].steps_per_epoch()
    for record in result.epochs:
        assert math.isfinite(record.train_loss)


def test_on_epoch_exception_propagates_and_stops() -> None:
    class Stop(Exception):
        pass

    calls: list[int] = []

    def on_epoch(record: EpochRecord) -> None:
        calls.append(record.epoch)
        raise Stop

    with pytest.raises(Stop):
        train("digits_mlp", "adam", {}, seed=0, budget=Budget(epochs=3), on_epoch=on_epoch)
    assert calls == [1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": "imagenet"}, "unknown task 'imagenet'; valid: mnist_mlp"),
        ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'; valid: adabelief, adabound"),
        ({"hparams": {"momentum": 0.9}}, "momentum"),
    ],
)
def test_bad_names_are_clear_errors(kwargs: dict, match: str) -> None:
    args = {"task": "digits_mlp", "optimizer": "adam", "hparams": {}} | kwargs
    with pytest.raises(ValueError, match=match):
        train(**args, seed=0, budget=Budget(max_steps=1))
