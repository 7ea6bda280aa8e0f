"""The paper's tasks: data loaders, models and default budgets, by registry name.

``TASKS[name]`` is a :class:`Task`; :class:`Budget` shrinks one for tests and quick looks.
Training lives in :mod:`studies.training`.
"""

from __future__ import annotations

from boundsweep.studies.tasks._budget import Budget
from boundsweep.studies.tasks._datadir import MissingDataError, resolve_data_dir
from boundsweep.studies.tasks._formats import write_cifar10, write_idx, write_mnist, write_ptb
from boundsweep.studies.tasks._registry import TASKS, make_mnist_mlp
from boundsweep.studies.tasks._splits import ClassificationData, LanguageData
from boundsweep.studies.tasks._task import Task

__all__ = [
    "TASKS",
    "Budget",
    "ClassificationData",
    "LanguageData",
    "MissingDataError",
    "Task",
    "make_mnist_mlp",
    "resolve_data_dir",
    "write_cifar10",
    "write_idx",
    "write_mnist",
    "write_ptb",
]
