"""The objective trains a real digits_mlp trial and records it in the Optuna trial."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy as sa
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.objective import (
    StorageClock,
    make_objective,
    pruner_for,
    sampler_for,
    suggest,
)
from boundsweep.studies.storage import claim_waiting_trial, create_campaign, open_storage
from boundsweep.studies.tasks import TASKS
from optuna.trial import TrialState


def _run_one(storage_url: str, spec: CampaignSpec, arm: str) -> optuna.trial.FrozenTrial:
    storage = open_storage(storage_url)
    create_campaign(storage, spec)
    study = optuna.load_study(
        study_name=f"{spec.name}/{arm}",
        storage=storage,
        sampler=sampler_for(spec.arm(arm), f"{spec.name}/{arm}"),
        pruner=pruner_for(spec),
    )
    trial_id = claim_waiting_trial(storage, study._study_id)
    assert trial_id is not None
    study.get_trials(states=(TrialState.RUNNING,))
    trial = optuna.Trial(study, trial_id)
    clock = StorageClock()
    try:
        value = make_objective(spec, arm, clock=clock)(trial)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, value)
    assert clock.training > 0 and clock.storage > 0
    return study.get_trials()[0]


def test_a_completed_trial_carries_its_record(sqlite_url: str) -> None:
    spec = CampaignSpec.model_validate(
        {
            "name": "obj",
            "task": "digits_mlp",
            "seeds": [3],
            "budget": {"epochs": 2, "data_fraction": 0.5},
            "arms": [{"optimizer": "adabound", "space": {"gamma": {"grid": [1e-3]}, "lr": 3e-3}}],
        }
    )
    trial = _run_one(sqlite_url, spec, "adabound")
    assert trial.state == TrialState.COMPLETE
    assert trial.params == {"gamma": 1e-3, "seed": 3}
    attrs = trial.user_attrs
    assert attrs["status"] == "completed"
    assert attrs["seed"] == 3
    assert attrs["hparams"]["lr"] == 3e-3 and attrs["hparams"]["gamma"] == 1e-3
    assert attrs["hparams"]["final_lr"] == 0.1  # the registry default fills the rest
    assert trial.value == attrs["val_metric"]
    assert [r["epoch"] for r in attrs["curve"]] == [1, 2]
    assert trial.intermediate_values == {1: attrs["curve"][0]["val_metric"], 2: trial.value}
    assert all(r["lower_bound"] is not None for r in attrs["curve"])
    assert attrs["device"] == "cpu" and attrs["wall_time"] > 0 and ":" in attrs["worker"]


def test_a_diverged_run_is_complete_with_the_tasks_diverged_value(sqlite_url: str) -> None:
    spec = CampaignSpec.model_validate(
        {
            "name": "div",
            "task": "digits_mlp",
            "seeds": [0],
            "budget": {"epochs": 2},
            "arms": [{"optimizer": "sgdm", "space": {"lr": {"grid": [10.0]}}}],
        }
    )
    trial = _run_one(sqlite_url, spec, "sgdm")
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["status"] == "diverged"
    assert trial.value == TASKS["digits_mlp"].diverged_value


@pytest.mark.parametrize("sampler", ["random", "tpe", "qmc"])
def test_sampled_arms_draw_from_their_range(sqlite_url: str, sampler: str) -> None:
    spec = CampaignSpec.model_validate(
        {
            "name": "smp",
            "task": "digits_mlp",
            "seeds": [5, 6],
            "budget": {"epochs": 1, "max_steps": 2},
            "arms": [
                {
                    "optimizer": "adam",
                    "sampler": sampler,
                    "n_trials": 2,
                    "space": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}},
                }
            ],
        }
    )
    trial = _run_one(sqlite_url, spec, "adam")
    assert trial.state == TrialState.COMPLETE
    assert trial.params["seed"] == 5
    assert 1e-4 <= trial.params["lr"] <= 1e-2


def test_pruners_follow_the_spec() -> None:
    spec = {
        "name": "p",
        "task": "digits_mlp",
        "budget": {"epochs": 4},
        "arms": [{"optimizer": "adam"}],
    }
    built = {
        name: pruner_for(CampaignSpec.model_validate({**spec, "pruner": name}))
        for name in ("none", "median", "hyperband")
    }
    assert isinstance(built["none"], optuna.pruners.NopPruner)
    assert isinstance(built["median"], optuna.pruners.MedianPruner)
    assert isinstance(built["hyperband"], optuna.pruners.HyperbandPruner)


def test_a_queued_trial_is_suggested_its_own_values_without_a_write(sqlite_url: str) -> None:
    spec = CampaignSpec.model_validate(
        {
            "name": "q",
            "task": "digits_mlp",
            "seeds": [4, 9],
            "arms": [{"optimizer": "adabound", "space": {"gamma": {"grid": [1e-4, 1e-2]}}}],
        }
    )
    storage = open_storage(sqlite_url)
    create_campaign(storage, spec)
    study = optuna.load_study(study_name="q/adabound", storage=storage)
    study._storage = storage  # as the worker does for a grid arm: no trial cache in between
    written: list[str] = []
    sa.event.listen(
        storage.engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: (
            written.append(statement)
            if not statement.lstrip().upper().startswith("SELECT")
            else None
        ),
    )
    for _ in range(4):
        trial_id = claim_waiting_trial(storage, study._study_id)
        assert trial_id is not None
        trial = optuna.Trial(study, trial_id)
        written.clear()
        varied, seed = suggest(trial, spec.arm("adabound"), spec.seeds)
        assert written == []
        fixed = storage.get_trial(trial_id).system_attrs["fixed_params"]
        assert (varied, seed) == ({"gamma": fixed["gamma"]}, fixed["seed"])


@pytest.mark.postgres
def test_epochs_not_stored_during_an_outage_are_kept_for_later(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import time

    from boundsweep.studies import objective

    from tests.conftest import database_outage

    spec = CampaignSpec.model_validate(
        {
            "name": "curves",
            "task": "digits_mlp",
            "seeds": [0],
            "arms": [{"optimizer": "adam", "space": {"lr": {"grid": [0.001]}}}],
        }
    )
    storage = open_storage(postgres_url)
    create_campaign(storage, spec)
    study = optuna.load_study(study_name="curves/adam", storage=storage)
    trial_id = claim_waiting_trial(storage, study._study_id)
    assert trial_id is not None
    monkeypatch.setattr(objective, "REPORT_INTERVAL", 0.05)
    reports = objective._BackgroundReports(storage, trial_id)
    with database_outage(postgres_url):
        reports.report(1, 0.5)
        reports.report(2, 0.6)
        deadline = time.monotonic() + 30
        while "could not store epochs 1-2" not in caplog.text:
            assert time.monotonic() < deadline, "the write during the outage never failed"
            time.sleep(0.05)
        reports.report(3, 0.7)
    unwritten = reports.close()
    stored = storage.get_trial(trial_id).intermediate_values
    # Each epoch is either in the database by now (a later write) or handed back for the
    # record: none is lost, none is both.
    assert {**stored, **unwritten} == {1: 0.5, 2: 0.6, 3: 0.7}
    assert not set(stored) & set(unwritten)
