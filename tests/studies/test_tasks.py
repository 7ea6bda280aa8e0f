"""Every task in the registry: its metadata, its model, and a few real training steps."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from boundsweep.studies.tasks import (
    TASKS,
    Budget,
    Task,
    TrainableTask,
    make_mnist_mlp,
    trainable,
    write_random_datasets,
)
from boundsweep.studies.tasks._densenet import densenet121_cifar
from boundsweep.studies.tasks._registry import BUILTIN_TASKS
from boundsweep.studies.tasks._resnet import resnet34_cifar
from boundsweep.studies.training import train
from torch import nn

PAPER_TASKS = {
    "mnist_mlp": ("accuracy", "maximize", 100),
    "cifar10_resnet34": ("accuracy", "maximize", 200),
    "cifar10_densenet121": ("accuracy", "maximize", 200),
    "ptb_lstm1": ("perplexity", "minimize", 200),
    "ptb_lstm2": ("perplexity", "minimize", 200),
    "ptb_lstm3": ("perplexity", "minimize", 200),
    "digits_mlp": ("accuracy", "maximize", 30),
    "mnist1d_mlp": ("accuracy", "maximize", 30),
    "quadratic_deep": ("loss", "minimize", 100),
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    """Tiny MNIST, CIFAR-10 and PTB files in their real formats."""
    return write_random_datasets(tmp_path_factory.mktemp("data"))


def test_registry_holds_exactly_the_papers_tasks_and_the_published_benchmark() -> None:
    # Built in: the paper's tasks and the published benchmark; installed plugins come on top.
    assert set(BUILTIN_TASKS) == set(PAPER_TASKS) <= set(TASKS)
    for name, (metric, direction, epochs) in PAPER_TASKS.items():
        task = TASKS[name]
        assert (task.name, task.metric, task.direction, task.default_epochs) == (
            name,
            metric,
            direction,
            epochs,
        )
        # Chance accuracy, the vocabulary's perplexity, or (None) the loss before training.
        expected_diverged = {"accuracy": 0.1, "perplexity": 10_000.0, "loss": None}[metric]
        assert task.diverged_value == expected_diverged


def test_metric_metadata_defaults_keep_the_reports_units_and_margins() -> None:
    """Accuracy: a fraction shown in points, margin 0.5 points; perplexity: 2% of the best;
    the quadratic's loss declares 2% of the best too."""
    for task in BUILTIN_TASKS.values():
        if task.metric == "loss":
            assert (task.margin, task.margin_relative, task.scale, task.unit) == (
                0.02,
                True,
                1.0,
                "loss",
            )
        elif task.metric == "accuracy":
            assert (task.margin, task.margin_relative, task.scale, task.unit) == (
                0.5,
                False,
                100.0,
                "points",
            )
            assert task.absolute_margin(91.0) == 0.5
        else:
            assert (task.margin, task.margin_relative, task.scale, task.unit) == (
                0.02,
                True,
                1.0,
                "perplexity",
            )
            assert task.absolute_margin(80.0) == pytest.approx(1.6)


def test_any_metric_name_declares_its_margin() -> None:
    """A metric without built-in defaults must declare its margin; bad metadata names the field."""
    digits = TASKS["digits_mlp"]
    unset = {"margin": None, "margin_relative": None, "scale": None, "unit": None}
    loss = replace(digits, metric="loss", direction="minimize", **unset | {"margin": 0.1})
    assert (loss.metric, loss.margin, loss.margin_relative, loss.scale, loss.unit) == (
        "loss",
        0.1,
        False,
        1.0,
        "loss",
    )
    assert loss.absolute_margin(-3.0) == 0.1
    relative = replace(
        digits,
        metric="mse",
        direction="minimize",
        **unset | {"margin": 0.05, "margin_relative": True},
    )
    assert relative.absolute_margin(-2.0) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="metric 'return' has no default margin; set margin"):
        replace(digits, metric="return", **unset)
    bad = {
        "margin": ({"margin": 0.0}, "margin must be a finite number > 0"),
        "nan": ({"margin": float("nan")}, "margin must be a finite number > 0"),
        "scale": ({"scale": -1.0}, "scale must be a finite number > 0"),
        "relative": ({"margin": 1.0, "margin_relative": True}, "relative margin"),
        "unit": ({"unit": ""}, "unit must be a non-empty word"),
        "metric": ({"metric": ""}, "metric must be a non-empty name"),
        "direction": ({"direction": "up"}, "direction must be one of maximize, minimize"),
    }
    for fields, message in bad.values():
        with pytest.raises(ValueError, match=message):
            replace(digits, **unset | fields)


def test_paper_budgets_and_schedules() -> None:
    for name in ("cifar10_resnet34", "cifar10_densenet121"):
        task = TASKS[name]
        assert (task.batch_size, task.weight_decay, task.scaled_milestones(200)) == (
            128,
            5e-4,
            [150],
        )
    for layers in (1, 2, 3):
        task = TASKS[f"ptb_lstm{layers}"]
        assert (task.batch_size, task.grad_clip, task.scaled_milestones(200)) == (
            20,
            0.25,
            [100, 145],
        )
    assert TASKS["mnist_mlp"].scaled_milestones(100) == []
    # A shorter budget keeps the decays at the same relative place.
    assert TASKS["ptb_lstm1"].scaled_milestones(20) == [10, 14]


def test_steps_per_epoch_follow_the_budget() -> None:
    mnist = TASKS["mnist_mlp"]
    assert mnist.steps_per_epoch() == 422  # 54,000 training images / 128
    assert mnist.steps_per_epoch(Budget(data_fraction=0.5)) == 211
    assert mnist.steps_per_epoch(Budget(max_steps=10)) == 10
    assert TASKS["cifar10_resnet34"].steps_per_epoch() == 352  # 45,000 / 128
    assert TASKS["ptb_lstm1"].steps_per_epoch() == 664  # 929,589 tokens / 20 streams / 70


def test_cifar_models_have_the_published_sizes() -> None:
    # Parameter counts of the CIFAR variants: ResNet-34 ~21.3M, DenseNet-121 (k=32) ~7.0M.
    resnet, densenet = resnet34_cifar(), densenet121_cifar()
    assert sum(p.numel() for p in resnet.parameters()) == 21_282_122
    assert sum(p.numel() for p in densenet.parameters()) == 6_956_298
    x = torch.zeros(2, 3, 32, 32)
    assert resnet(x).shape == densenet(x).shape == (2, 10)
    blocks = [
        len([m for m in resnet.stages if m.conv1.out_channels == w]) for w in (64, 128, 256, 512)
    ]
    assert blocks == [3, 4, 6, 3]


@pytest.mark.parametrize(
    "task",
    ["mnist_mlp", "cifar10_resnet34", "cifar10_densenet121", "ptb_lstm1", "ptb_lstm2", "ptb_lstm3"],
)
def test_every_task_trains_a_few_steps_on_files_in_its_format(task: str, data_dir) -> None:
    result = train(
        task, "adabound", {}, seed=0, budget=Budget(epochs=2, max_steps=2), data_dir=data_dir
    )
    assert result.status == "completed"
    assert result.steps == 2
    assert result.epochs[-1].step == 2
    for record in result.epochs:
        assert np.isfinite(record.train_loss) and record.train_loss > 0
        if TASKS[task].metric == "perplexity":
            # Near-uniform guesses over a 31-word vocabulary after two steps.
            assert 1.0 < record.val_metric < 1_000 and 1.0 < record.test_metric < 1_000
        else:
            assert 0.0 <= record.val_metric <= 1.0


def test_cifar_weight_decay_default_and_lr_milestone(data_dir) -> None:
    # The CIFAR task's data path, schedule and weight decay, with a linear model for speed.
    task = replace(
        trainable("cifar10_resnet34"),
        build_model=lambda data: nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)),
    )
    # 11 training images -> 1 step per epoch; 4 epochs put the scaled milestone (150/200) at 3.
    result = train(task, "adam", {"lr": 0.01}, seed=0, budget=Budget(epochs=4), data_dir=data_dir)
    assert result.hparams["weight_decay"] == 5e-4
    assert [r.lr for r in result.epochs] == pytest.approx([0.01, 0.01, 0.01, 0.001])
    given = train(
        task, "adam", {"weight_decay": 0.0}, seed=0, budget=Budget(max_steps=1), data_dir=data_dir
    )
    assert given.hparams["weight_decay"] == 0.0


def test_language_model_same_seed_same_curve(data_dir) -> None:
    budget = Budget(epochs=2, max_steps=3)
    first = train("ptb_lstm1", "adam", {}, seed=3, budget=budget, data_dir=data_dir)
    again = train("ptb_lstm1", "adam", {}, seed=3, budget=budget, data_dir=data_dir)
    assert [r.val_metric for r in first.epochs] == [r.val_metric for r in again.epochs]
    assert [r.train_loss for r in first.epochs] == [r.train_loss for r in again.epochs]


def test_cifar_augmented_path_same_seed_same_curve(data_dir) -> None:
    task = replace(
        trainable("cifar10_resnet34"),
        build_model=lambda data: nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)),
    )
    runs = [
        train(task, "sgdm", {"lr": 0.05}, seed=s, budget=Budget(epochs=3), data_dir=data_dir)
        for s in (4, 4, 5)
    ]
    losses = [[r.train_loss for r in run.epochs] for run in runs]
    assert losses[0] == losses[1]
    assert losses[0] != losses[2]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"data_fraction": 0.0}, "data_fraction"),
        ({"data_fraction": 1.5}, "data_fraction"),
        ({"max_steps": -1}, "max_steps"),
        ({"steps": 10}, "steps"),
    ],
)
def test_budget_rejects_bad_fields_by_name(fields: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Budget(**fields)


def test_missing_data_reaches_the_caller_as_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BOUNDSWEEP_DOWNLOAD", "0")
    monkeypatch.setenv("BOUNDSWEEP_DATA_DIR", str(tmp_path))
    with pytest.raises(
        FileNotFoundError, match=r"ptb\.train\.txt.*ptb\.valid\.txt.*ptb\.test\.txt"
    ):
        train("ptb_lstm1", "adam", {}, seed=0, budget=Budget(max_steps=1))


def test_task_metadata_imports_no_torch_and_the_trainable_half_loads_it() -> None:
    code = (
        "import sys\n"
        "from boundsweep.studies.tasks import TASKS, Budget\n"
        "assert TASKS['mnist_mlp'].steps_per_epoch(Budget(epochs=2)) == 422\n"
        "assert 'torch' not in sys.modules, 'the task metadata loaded torch'\n"
        "from boundsweep.studies.tasks import trainable\n"
        "assert trainable('mnist_mlp').build_model is not None and 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_task_is_trainable_and_keeps_its_metadata() -> None:
    for name, task in TASKS.items():
        if task.kind == "loop":  # a plugin with its own loop (cartpole_reinforce): no parts
            with pytest.raises(ValueError, match=f"task '{name}' runs its own training loop"):
                trainable(name)
            continue
        full = trainable(name)
        assert isinstance(full, TrainableTask) and isinstance(full, Task)
        assert (full.name, full.batch_size, full.metric) == (name, task.batch_size, task.metric)
    assert trainable("cifar10_resnet34").train_inputs is not None
    with pytest.raises(ValueError, match="unknown task 'nope'; valid: mnist_mlp"):
        trainable("nope")


def test_a_task_registered_with_its_parts_is_its_own_trainable() -> None:
    wide = make_mnist_mlp(1000, "mnist_mlp_1000")
    TASKS["mnist_mlp_1000"] = wide
    try:
        assert trainable("mnist_mlp_1000") is wide
        assert "784-1000-10" in wide.description
    finally:
        del TASKS["mnist_mlp_1000"]
