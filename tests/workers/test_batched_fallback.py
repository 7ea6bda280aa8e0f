"""A batched worker on a campaign whose arms mix an optimizer ``BatchedOptimizer`` steps with
ones it cannot (a plugin's, a torch.optim one): the latter train one by one, nothing FAILs.
A real ``boundsweep worker --batch-trials 4`` process."""

from __future__ import annotations

from pathlib import Path

import optuna
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.storage import campaign_progress, create_campaign, open_storage

from tests._plugins import boundsweep, env

SPEC = {
    "name": "mixed-arms",
    "task": "wine_mlp",
    "seeds": [0, 1],
    "budget": {"epochs": 2},
    "arms": [
        {"optimizer": "adam", "space": {"lr": {"grid": [0.001, 0.01]}}},
        {"optimizer": "lion", "space": {"lr": {"grid": [0.0001, 0.001]}}},
        {"optimizer": "radam", "space": {"lr": {"grid": [0.001, 0.01]}}},
    ],
}


def test_a_batched_worker_runs_the_arms_it_cannot_batch_one_by_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mixed.db'}"
    create_campaign(open_storage(url), CampaignSpec.model_validate(SPEC))
    done = boundsweep(
        "worker", "--storage", url, "--until-idle", "--batch-trials", "4",
        "--poll-interval", "0.2", env=env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    arms = {a.arm: a for a in campaign_progress(open_storage(url), SPEC["name"])}
    assert {name: (a.complete, a.fail) for name, a in arms.items()} == {
        "adam": (4, 0), "lion": (4, 0), "radam": (4, 0),
    }  # fmt: skip
    for arm, batched in (("adam", True), ("lion", False), ("radam", False)):
        trials = optuna.load_study(study_name=f"mixed-arms/{arm}", storage=url).trials
        assert all(("batch_trials" in t.user_attrs) == batched for t in trials), arm
