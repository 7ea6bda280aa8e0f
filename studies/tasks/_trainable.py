"""The torch half of a task: how its data is loaded, its model built, its batches transformed.

A :class:`TrainableTask` is a :class:`Task` (the metadata ``TASKS`` holds, no torch) plus the
callables training needs. :func:`trainable` gives the one for a registry name; a task
registered in ``TASKS`` as a ``TrainableTask`` (``make_mnist_mlp``) is its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

import torch
from boundsweep.optimizers._plugins import load_code
from boundsweep.studies.tasks._augment import cifar_train_inputs, normalise_cifar
from boundsweep.studies.tasks._cifar import load_cifar10
from boundsweep.studies.tasks._densenet import densenet121_cifar
from boundsweep.studies.tasks._digits import load_digits_data
from boundsweep.studies.tasks._lstm import LSTMLanguageModel
from boundsweep.studies.tasks._mlp import MLP
from boundsweep.studies.tasks._mnist import load_mnist
from boundsweep.studies.tasks._mnist1d import load_mnist1d
from boundsweep.studies.tasks._ptb import load_ptb
from boundsweep.studies.tasks._quadratic import (
    QuadraticData,
    build_noisy_quadratic,
    load_quadratic_deep,
)
from boundsweep.studies.tasks._registry import MNIST_HIDDEN, TASKS, mnist_mlp_task
from boundsweep.studies.tasks._resnet import resnet34_cifar
from boundsweep.studies.tasks._splits import ClassificationData, LanguageData
from boundsweep.studies.tasks._task import Task
from torch import nn

Data = ClassificationData | LanguageData | QuadraticData


@dataclass(frozen=True, kw_only=True)
class TrainableTask(Task):
    """A task with its data loader, its model and its batch transforms.

    Attributes:
        load_data: Reads the data from a data folder.
        build_model: Builds the model for the loaded data.
        train_inputs: Per-batch transform of training inputs on the device (augmentation),
            given the trial's generator; ``None`` feeds the stored tensors as they are.
        eval_inputs: Per-batch transform of evaluation inputs; ``None`` as they are.
    """

    load_data: Callable[[Path], Data] = field(repr=False)
    build_model: Callable[[Data], nn.Module] = field(repr=False)
    train_inputs: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = field(
        default=None, repr=False
    )
    eval_inputs: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batchable:
            assert self.train_inputs is None, f"batchable task {self.name} has no augmentation"


def _mlp(hidden: tuple[int, ...], data: ClassificationData) -> nn.Module:
    return MLP(data.train_x.shape[1], hidden, data.num_classes)


def _lstm(layers: int, data: LanguageData) -> nn.Module:
    return LSTMLanguageModel(len(data.vocabulary), layers)


def _cifar(build: Callable[[int], nn.Module]) -> dict[str, Any]:
    return {
        "load_data": load_cifar10,
        "build_model": lambda data: build(data.num_classes),
        "train_inputs": cifar_train_inputs,
        "eval_inputs": normalise_cifar,
    }


# Each registry task's torch half, by the name ``TASKS`` holds its metadata under.
_PARTS: dict[str, dict[str, Any]] = {
    "mnist_mlp": {"load_data": load_mnist, "build_model": partial(_mlp, (MNIST_HIDDEN,))},
    "cifar10_resnet34": _cifar(resnet34_cifar),
    "cifar10_densenet121": _cifar(densenet121_cifar),
    "ptb_lstm1": {"load_data": load_ptb, "build_model": partial(_lstm, 1)},
    "ptb_lstm2": {"load_data": load_ptb, "build_model": partial(_lstm, 2)},
    "ptb_lstm3": {"load_data": load_ptb, "build_model": partial(_lstm, 3)},
    "digits_mlp": {"load_data": load_digits_data, "build_model": partial(_mlp, (128,))},
    "mnist1d_mlp": {"load_data": load_mnist1d, "build_model": partial(_mlp, (100, 100))},
    "quadratic_deep": {"load_data": load_quadratic_deep, "build_model": build_noisy_quadratic},
}


def _with_parts(task: Task, **parts: Any) -> TrainableTask:
    metadata = {f.name: getattr(task, f.name) for f in dataclasses.fields(Task)}
    return TrainableTask(**metadata, **parts)


def trainable(task: str | Task) -> TrainableTask:
    """The trainable form of a ``TASKS`` name (or of a registry ``Task``).

    Raises:
        ValueError: An unknown task, listing the valid names.
    """
    if isinstance(task, TrainableTask):
        return task
    name = task if isinstance(task, str) else task.name
    registered = TASKS.get(name)
    if isinstance(registered, TrainableTask):
        return registered
    if registered is not None and registered.code is not None and registered.kind != "loop":
        return _plugin_trainable(registered)
    if registered is not None and registered.kind == "loop":
        raise ValueError(
            f"task {name!r} runs its own training loop: it has no data and model for "
            "boundsweep's loop to train"
        )
    if registered is None or name not in _PARTS:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    return _with_parts(registered, **_PARTS[name])


_PLUGIN_PARTS = ("load_data", "build_model", "train_inputs", "eval_inputs")


@cache
def _plugin_trainable(task: Task) -> TrainableTask:
    """A plugin task on our loop: its metadata plus what its ``code`` object provides."""
    assert task.code is not None
    source = load_code(task.code, f"task {task.name!r}")
    parts = {p: getattr(source, p) for p in _PLUGIN_PARTS if getattr(source, p, None) is not None}
    missing = [p for p in ("load_data", "build_model") if p not in parts]
    if missing:
        raise ValueError(f"task {task.name!r}: {task.code} has no {' or '.join(missing)}")
    return _with_parts(task, **parts)


def loop_function(task: Task) -> Callable[..., float]:
    """The training loop of a ``loop`` task (its ``code``), loaded on first use."""
    assert task.kind == "loop" and task.code is not None, f"task {task.name} is not a loop task"
    run = load_code(task.code, f"task {task.name!r}")
    if not callable(run):
        raise ValueError(f"task {task.name!r}: {task.code} is not a function")
    return run


def make_mnist_mlp(hidden: int = MNIST_HIDDEN, name: str = "mnist_mlp") -> TrainableTask:
    """The paper's MNIST task with a one-hidden-layer MLP of width ``hidden``.

    Register another width with ``TASKS["mnist_mlp_1000"] = make_mnist_mlp(1000, "mnist_mlp_1000")``.
    """
    return _with_parts(
        mnist_mlp_task(hidden, name), load_data=load_mnist, build_model=partial(_mlp, (hidden,))
    )
