"""The paper's tasks: data loaders, models and default budgets, by registry name.

``TASKS[name]`` is a :class:`Task` (metadata: budget, metric, direction; no torch), and
:class:`Budget` shrinks one for tests and quick looks. ``trainable(name)`` adds the torch
half (data loader, model, batch transforms), which loads on first use of one of its names
(PEP 562), so validating a spec never imports torch. Training lives in :mod:`studies.training`.
"""

from __future__ import annotations

from boundsweep.optimizers._lazy import lazy_front
from boundsweep.studies.tasks._budget import Budget
from boundsweep.studies.tasks._catalog import describe_task
from boundsweep.studies.tasks._datadir import MissingDataError, resolve_data_dir
from boundsweep.studies.tasks._registry import TASKS
from boundsweep.studies.tasks._task import Task

# The torch half: each public name and the module that defines it.
_TORCH_NAMES = {
    "ClassificationData": "_splits",
    "LanguageData": "_splits",
    "QuadraticData": "_quadratic",
    "TrainableTask": "_trainable",
    "loop_function": "_trainable",
    "make_mnist_mlp": "_trainable",
    "trainable": "_trainable",
    "write_cifar10": "_formats",
    "write_idx": "_formats",
    "write_mnist": "_formats",
    "write_ptb": "_formats",
    "write_random_datasets": "_formats",
}

__all__ = [
    "TASKS",
    "Budget",
    "ClassificationData",
    "LanguageData",
    "MissingDataError",
    "QuadraticData",
    "Task",
    "describe_task",
    "TrainableTask",
    "loop_function",
    "make_mnist_mlp",
    "resolve_data_dir",
    "trainable",
    "write_cifar10",
    "write_idx",
    "write_mnist",
    "write_ptb",
    "write_random_datasets",
]


__getattr__, __dir__ = lazy_front(__name__, _TORCH_NAMES, __all__)
