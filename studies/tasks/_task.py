"""What a task is: the paper's budget, its batch shape, and how it is scored.

This is the metadata half of a task and imports no torch: specs validate against it and the
report computes step counts from it without loading torch. How a task's data is loaded and
its model built is the torch half, :class:`~boundsweep.studies.tasks._trainable.TrainableTask`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from boundsweep.studies.tasks._budget import Budget


@dataclass(frozen=True)
class Task:
    """One of the paper's tasks (or a small stand-in on the same code path).

    Attributes:
        name: Registry key.
        description: One line for people.
        kind: ``"classification"`` (cross-entropy, accuracy) or ``"language_model"``
            (next-word cross-entropy over BPTT windows, perplexity).
        metric: ``"accuracy"`` or ``"perplexity"``.
        direction: ``"maximize"`` or ``"minimize"``, the Optuna direction of ``metric``.
        default_epochs: The paper's number of epochs.
        diverged_value: The metric a diverged run is scored with: chance accuracy
            ``1/num_classes``, or perplexity equal to the vocabulary size.
        batch_size: Training batch size.
        train_size: Training examples (classification) or tokens (language models) of the real
            data after the validation hold-out; gives ``steps_per_epoch`` without loading data.
        milestones: Epochs (of ``default_epochs``) after which the lr is multiplied by
            ``lr_decay``. A budget with other epochs scales them proportionally.
        lr_decay: Factor applied at each milestone.
        weight_decay: Applied when the trial's hyperparameters do not set ``weight_decay``.
        grad_clip: Max global gradient norm, or ``None``.
        bptt: Language models: tokens per truncated-backprop window.
        channels_last: Convolutional nets: use the channels-last memory format on CUDA.
        batchable: ``studies.training.train_batched`` may train K configurations of it as one
            stacked model: a classifier whose training step is only forward, cross-entropy,
            backward and step (no augmentation, dropout, batch-norm statistics or clipping).
    """

    name: str
    description: str
    kind: Literal["classification", "language_model"]
    metric: Literal["accuracy", "perplexity"]
    direction: Literal["maximize", "minimize"]
    default_epochs: int
    diverged_value: float
    batch_size: int
    train_size: int
    milestones: tuple[int, ...] = ()
    lr_decay: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float | None = None
    bptt: int | None = None
    channels_last: bool = False
    batchable: bool = False

    def __post_init__(self) -> None:
        if self.batchable:
            assert self.kind == "classification", f"batchable task {self.name} is a classifier"
            assert self.grad_clip is None, f"batchable task {self.name} has no clipping"

    def epochs(self, budget: Budget | None = None) -> int:
        """Epochs a budget gives: ``budget.epochs`` or the paper's default."""
        if budget is None or budget.epochs is None:
            return self.default_epochs
        return budget.epochs

    def scaled_milestones(self, epochs: int) -> list[int]:
        """The lr milestones for a run of ``epochs`` epochs, at the paper's relative positions.

        With the default epochs they are the paper's (e.g. 150 of 200); a 20-epoch run decays
        at epoch 15. Milestones that would fall at 0 or at/after the last epoch are dropped.
        """
        scaled = (round(m * epochs / self.default_epochs) for m in self.milestones)
        return sorted({m for m in scaled if 0 < m < epochs})

    def steps_per_epoch(self, budget: Budget | None = None) -> int:
        """Optimizer steps in one epoch of the real data under ``budget`` (partial batch included)."""
        fraction = 1.0 if budget is None else budget.data_fraction
        if self.kind == "language_model":
            assert self.bptt is not None, f"task {self.name} needs bptt"
            tokens = max(2, math.ceil(fraction * self.train_size))
            per_stream = tokens // self.batch_size
            steps = math.ceil((per_stream - 1) / self.bptt)
        else:
            examples = max(1, math.ceil(fraction * self.train_size))
            steps = math.ceil(examples / self.batch_size)
        if budget is not None and budget.max_steps is not None:
            steps = min(steps, budget.max_steps)
        return max(1, steps)
