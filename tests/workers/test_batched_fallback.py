"""A batched worker on a campaign whose arms mix an optimizer ``BatchedOptimizer`` steps with
ones it cannot (a plugin's, a torch.optim one): the latter train one by one, nothing FAILs.
A real ``boundsweep worker --batch-trials 4`` process."""

from __future__ import annotations

from pathlib import Path

import optuna
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.storage import campaign_progress, create_campaign, open_storage

from tests._plugins import boundsweep, env, submit

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


DROPOUT_PLUGIN = """
from boundsweep.studies.tasks import TASKS, Task
from boundsweep_examples.wine import load_data  # the same CSV as wine_mlp
from torch import nn

TASKS.register(Task(
    name="wine_dropout", description="wine with a dropout MLP, declared batchable",
    kind="classification", metric="accuracy", direction="maximize", default_epochs=2,
    diverged_value=1 / 3, batch_size=16, train_size=114, batchable=True,
    code="bs_dropout",
))


def build_model(data):
    # Dropout draws random numbers inside the stacked (vmapped) model: it cannot be batched.
    return nn.Sequential(nn.Linear(13, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
"""


def test_a_task_declared_batchable_that_cannot_stack_runs_one_by_one(tmp_path: Path) -> None:
    """A plugin may declare a model batchable that the stacked path cannot train (here
    dropout under vmap): the batch's trials go back uncounted and the worker trains that task
    one by one from then on. Nothing FAILs, nothing is counted as a retry."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "bs_dropout.py").write_text(DROPOUT_PLUGIN)
    run_env = env(PYTHONPATH=str(plugins), BOUNDSWEEP_PLUGINS="bs_dropout")
    url = f"sqlite:///{tmp_path / 'dropout.db'}"
    spec = {
        "name": "dropout",
        "task": "wine_dropout",
        "seeds": [0, 1],
        "budget": {"epochs": 2},
        "arms": [{"optimizer": "adam", "space": {"lr": {"grid": [0.001, 0.01]}}}],
    }
    submit(url, spec, tmp_path, run_env)
    done = boundsweep(
        "worker", "--storage", url, "--until-idle", "--batch-trials", "4",
        "--poll-interval", "0.2", env=run_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "batched training of task wine_dropout failed" in done.stderr
    assert "trains wine_dropout one by one from now on" in done.stderr
    (arm,) = campaign_progress(open_storage(url), "dropout")
    assert (arm.complete, arm.fail) == (4, 0)
    trials = optuna.load_study(study_name="dropout/adam", storage=url).trials
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    given_back = [t for t in trials if t.state.name == "FAIL"]
    # The batch went back as a SIGTERM gives trials back: each its FAIL and its queued copy,
    # not a retry (empty retry history); every copy then trained alone and completed.
    assert len(complete) == len(given_back) == 4
    assert all("batch_trials" not in t.user_attrs for t in complete)
    assert all(t.system_attrs["retry_history"] == [] for t in complete)
    assert {t.system_attrs["failed_trial"] for t in complete} == {t.number for t in given_back}
