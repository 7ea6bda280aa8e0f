"""Which hyperparameters an optimizer is built with for a task."""

from __future__ import annotations

from collections.abc import Mapping

from boundsweep.optimizers import OPTIMIZERS
from boundsweep.studies.tasks import Task


def resolve_hparams(task: Task, optimizer: str, hparams: Mapping[str, float]) -> dict[str, float]:
    """The full hyperparameter set: registry defaults, then the task's, then the given ones.

    The task's ``weight_decay`` (5e-4 for the CIFAR tasks, as in the paper) applies when
    ``hparams`` has no ``weight_decay`` key and the optimizer takes one; a given value, zero
    included, always wins.

    Raises:
        ValueError: For an unknown optimizer (listing the valid names).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: {', '.join(sorted(OPTIMIZERS))}")
    resolved = OPTIMIZERS[optimizer].defaults()
    if task.weight_decay and "weight_decay" in resolved:
        resolved["weight_decay"] = task.weight_decay
    resolved.update({name: float(value) for name, value in hparams.items()})
    return resolved
