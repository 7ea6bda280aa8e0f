"""The catalogs find the installed example package's real entry points, name where each task
and optimizer comes from, and refuse a clash, a bad name or a broken operator module in one
clear line. The loop-task shape trains, prunes, diverges and resumes nothing it should not."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch
from boundsweep.optimizers import OPTIMIZERS, REGISTRY, NotInstalledError, build_optimizer
from boundsweep.studies.campaign import STORED, CampaignSpec
from boundsweep.studies.storage import arm_studies, create_campaign, open_storage
from boundsweep.studies.tasks import TASKS, Budget, Task
from boundsweep.studies.training import train, train_batched
from boundsweep.workers._run import batch_limit

from tests._plugins import boundsweep, env

EXAMPLES = "boundsweep-examples"


def test_the_example_package_s_entry_points_are_found_with_their_distribution() -> None:
    for catalog, names in (
        (TASKS, ("cartpole_reinforce", "wine_mlp")),
        (OPTIMIZERS, ("lion", "adabelief")),
    ):
        for name in names:
            assert catalog.origin(name).distribution == EXAMPLES, name
    assert OPTIMIZERS.origin("adabound").distribution == "boundsweep"
    assert TASKS["cartpole_reinforce"].metric == "return"
    assert TASKS["cartpole_reinforce"].margin == 10.0
    # torch.optim's optimizers are arms too, built by their class.
    model = torch.nn.Linear(3, 2)
    assert type(build_optimizer("radam", model.parameters(), {})) is torch.optim.RAdam
    assert type(build_optimizer("lion", model.parameters(), {})).__name__ == "Lion"


def test_cli_lists_what_is_installed() -> None:
    done = boundsweep("optimizers", "--json", env=env())
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)["data"]}
    assert rows["lion"]["distribution"] == EXAMPLES and rows["lion"]["version"] == "0.1.0"
    assert rows["lion"]["hyperparameters"]["lr"] == {
        "default": 1e-4,
        "low": 1e-6,
        "high": 0.1,
        "log": True,
    }
    assert rows["rmsprop"]["distribution"] == "boundsweep"
    done = boundsweep("tasks", env=env())
    line = next(line for line in done.stdout.splitlines() if line.startswith("cartpole_reinforce"))
    assert EXAMPLES in line and "return (maximize), own loop" in line


def _installed_clash(root: Path) -> Path:
    """A second real distribution (a dist-info on the path) that also provides ``lion``."""
    (root / "clashing_opt.py").write_text("from boundsweep_examples import LION\n")
    info = root / "clashing_opt-2.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: clashing-opt\nVersion: 2.0\n")
    (info / "entry_points.txt").write_text("[boundsweep.optimizers]\nlion = clashing_opt:LION\n")
    return root


def test_a_name_clash_is_one_error_naming_both_distributions(tmp_path: Path) -> None:
    root = _installed_clash(tmp_path)
    done = boundsweep("optimizers", env=env(PYTHONPATH=str(root)))
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "'lion' is provided by both" in line
    assert "boundsweep-examples 0.1.0" in line and "clashing-opt 2.0" in line


def test_an_installed_plugin_that_does_not_import_is_skipped_and_listed(tmp_path: Path) -> None:
    info = tmp_path / "broken_rl-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-rl\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[boundsweep.tasks]\nbroken_task = broken_rl:TASK\n")
    done = boundsweep("tasks", "--json", env=env(PYTHONPATH=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert "cartpole_reinforce" in {t["name"] for t in listing["data"]}
    assert listing["broken"]["broken_task"].startswith("broken-rl 1.0: ModuleNotFoundError")


def test_operator_modules_register_and_bad_ones_say_so(tmp_path: Path) -> None:
    (tmp_path / "bs_ops.py").write_text(
        "from boundsweep.optimizers import OPTIMIZERS, REGISTRY\n"
        "from dataclasses import replace\n"
        "OPTIMIZERS.register(replace(OPTIMIZERS['radam'], name='radam_local'))\n"
    )
    (tmp_path / "bs_bad_name.py").write_text(
        "from boundsweep.optimizers import OPTIMIZERS\n"
        "from dataclasses import replace\n"
        "OPTIMIZERS.register(replace(OPTIMIZERS['radam'], name='Bad Name'))\n"
    )
    ok = boundsweep(
        "optimizers", "--json", env=env(PYTHONPATH=str(tmp_path), BOUNDSWEEP_PLUGINS="bs_ops")
    )
    rows = {row["name"]: row for row in json.loads(ok.stdout)["data"]}
    assert rows["radam_local"]["distribution"] == "module:bs_ops"
    (tmp_path / "bs_no_factory.py").write_text(
        "from boundsweep.optimizers import OPTIMIZERS, OptimizerEntry\n"
        "OPTIMIZERS.register(OptimizerEntry('half', 'no factory', {}))\n"
    )
    for module, expected in (
        ("bs_no_factory", "optimizer plugin 'half' of module:bs_no_factory local: factory must"),
        ("bs_bad_name", "name 'Bad Name' is not valid"),
        ("no_such_module_here", "does not import"),
    ):
        bad = boundsweep("tasks", env=env(PYTHONPATH=str(tmp_path), BOUNDSWEEP_PLUGINS=module))
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
        assert expected in bad.stderr


def _spec(task: str, optimizer: str) -> dict:
    return {
        "name": "p", "task": task, "seeds": [0], "budget": {"epochs": 2},
        "arms": [{"optimizer": optimizer, "space": {"lr": {"grid": [1e-3, 1e-2]}}}],
    }  # fmt: skip


def test_a_stored_spec_of_a_missing_plugin_is_not_installed_a_submitted_one_is_invalid() -> None:
    with pytest.raises(NotInstalledError, match="task 'gone_task' is not installed here"):
        CampaignSpec.model_validate(_spec("gone_task", "adam"), context=STORED)
    with pytest.raises(NotInstalledError, match="optimizer 'gone_opt' is not installed here"):
        CampaignSpec.model_validate(_spec("digits_mlp", "gone_opt"), context=STORED)
    with pytest.raises(
        ValueError, match="unknown task 'gone_task'; valid tasks: cartpole_reinforce"
    ):
        CampaignSpec.model_validate(_spec("gone_task", "adam"))
    spec = CampaignSpec.model_validate(_spec("wine_mlp", "lion"))
    assert spec.arms[0].optimizer == "lion"


def test_a_campaign_records_its_plugins_and_the_error_names_what_to_install(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    spec = CampaignSpec.model_validate({**_spec("cartpole_reinforce", "lion"), "name": "rec"})
    create_campaign(open_storage(url), spec)
    [arm] = arm_studies(open_storage(url), "rec")
    assert arm.plugins == {
        "cartpole_reinforce": "boundsweep-examples 0.1.0", "lion": "boundsweep-examples 0.1.0",
    }  # fmt: skip
    missing = TASKS.missing("cartpole_gone").in_campaign("rec", {"cartpole_gone": "acme-rl 2.1"})
    assert str(missing).startswith(
        "campaign 'rec': task 'cartpole_gone' is not installed here: it came from acme-rl 2.1: "
        "`pip install acme-rl==2.1`; installed tasks: "
    )


def test_batching_falls_back_to_one_by_one_for_an_arm_it_cannot_batch() -> None:
    spec = CampaignSpec.model_validate(
        {
            **_spec("wine_mlp", "lion"),
            "arms": [
                {"name": "lion", "optimizer": "lion", "space": {"lr": {"grid": [1e-3, 1e-2]}}},
                {"name": "adam", "optimizer": "adam", "space": {"lr": {"grid": [1e-3, 1e-2]}}},
            ],
        }  # fmt: skip
    )
    assert TASKS["wine_mlp"].batchable and "lion" not in REGISTRY
    assert batch_limit(8, "cpu", spec, "lion") == 1
    assert batch_limit(8, "cpu", spec, "adam") == 8


def test_the_loop_shape_same_seed_same_curve_pruning_and_divergence() -> None:
    budget = Budget(epochs=3)
    first = train("cartpole_reinforce", "adam", {"lr": 0.01}, 0, budget)
    again = train("cartpole_reinforce", "adam", {"lr": 0.01}, 0, budget)
    other = train("cartpole_reinforce", "adam", {"lr": 0.01}, 1, budget)
    assert first.status == "completed" and len(first.epochs) == 3
    assert [r.val_metric for r in first.epochs] == [r.val_metric for r in again.epochs]
    assert [r.val_metric for r in first.epochs] != [r.val_metric for r in other.epochs]
    assert first.val_metric == first.epochs[-1].val_metric > 0
    assert first.epochs[0].metrics == {} and first.epochs[0].train_loss != 0.0

    def prune_at_two(record) -> None:
        if record.epoch == 2:
            raise optuna.TrialPruned()

    with pytest.raises(optuna.TrialPruned):
        train("cartpole_reinforce", "adam", {"lr": 0.01}, 0, budget, on_epoch=prune_at_two)


@pytest.fixture
def own_loops() -> Iterator[None]:
    """Two loop tasks registered in this process (as a BOUNDSWEEP_PLUGINS module would)."""
    common = {"kind": "loop", "metric": "score", "direction": "maximize", "default_epochs": 3,
              "diverged_value": -1.0, "margin": 0.5, "description": "test"}  # fmt: skip
    TASKS.register(Task(name="nan_loop", code="tests.studies._loops:nan_at_two", **common))
    TASKS.register(Task(name="groups_loop", code="tests.studies._loops:param_groups", **common))
    try:
        yield
    finally:
        del TASKS["nan_loop"], TASKS["groups_loop"]


def test_a_loop_that_reports_nan_is_diverged_and_param_groups_keep_their_lr(own_loops) -> None:
    diverged = train("nan_loop", "adam", {}, 0, Budget())
    assert diverged.status == "diverged" and diverged.val_metric == -1.0
    assert [r.val_metric for r in diverged.epochs] == [1.0]
    groups = train("groups_loop", "lion", {"lr": 0.01}, 0, Budget())
    assert groups.val_metric == 0.01 and groups.epochs[0].metrics == {
        "body_lr": pytest.approx(0.001)
    }


def test_data_and_model_shape_on_our_loop_one_by_one_and_batched_alike() -> None:
    result = train("wine_mlp", "adabelief", {"lr": 0.01}, 0, Budget(epochs=3))
    assert result.status == "completed" and 0.34 < result.val_metric <= 1.0
    assert math.isfinite(result.test_metric)
    runs = [({"lr": 0.01}, 0), ({"lr": 0.001}, 1)]
    batched = train_batched("wine_mlp", "adam", runs, Budget(epochs=2))
    for (hparams, seed), stacked in zip(runs, batched, strict=True):
        alone = train("wine_mlp", "adam", hparams, seed, Budget(epochs=2))
        assert [r.val_metric for r in stacked.epochs] == [r.val_metric for r in alone.epochs]
