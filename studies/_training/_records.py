"""What a training run reports: one record per epoch and the result of the whole run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch


@dataclass
class EpochRecord:
    """One epoch of one trial. Every float is finite (JSON-safe).

    Attributes:
        epoch: 1-based epoch number.
        train_loss: Mean training cross-entropy over the epoch's examples (tokens for PTB).
        val_metric: Metric on the validation split (what studies optimise).
        test_metric: Metric on the test split (recorded, never tuned on).
        lr: Learning rate of the first param group during this epoch.
        lower_bound: Bounded optimizers: the step-size lower bound after the epoch; else None.
        upper_bound: Bounded optimizers: the step-size upper bound after the epoch; else None.
        seconds: Wall time of the epoch, evaluation included.
        step: Optimizer steps taken so far in the run (a ``loop`` task: its epoch).
        metrics: Further metrics a ``loop`` task reported with the epoch (name -> value).
    """

    epoch: int
    train_loss: float
    val_metric: float
    test_metric: float
    lr: float
    lower_bound: float | None
    upper_bound: float | None
    seconds: float
    step: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    """The outcome of one training run.

    Attributes:
        status: ``"completed"``, or ``"diverged"`` when a loss or metric became NaN/inf.
        epochs: The records of every epoch finished (a diverged epoch is not recorded).
        val_metric: Final validation metric; ``task.diverged_value`` when diverged.
        test_metric: Final test metric; ``task.diverged_value`` when diverged.
        wall_time: Seconds for the whole run, data loading included.
        device: The device trained on, e.g. ``"cpu"`` or ``"cuda:0"``.
        steps: Optimizer steps taken.
        hparams: Every hyperparameter the optimizer was built with (registry defaults, the
            task's weight decay and the given ones resolved).
        parameters: The model's final parameters by name, when asked for (``keep_parameters``).
    """

    status: Literal["completed", "diverged"]
    epochs: list[EpochRecord]
    val_metric: float
    test_metric: float
    wall_time: float
    device: str
    steps: int
    hparams: dict[str, float] = field(default_factory=dict)
    parameters: dict[str, torch.Tensor] | None = field(default=None, repr=False)
