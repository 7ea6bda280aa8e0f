"""Training and evaluation of the noisy quadratic, as DeepOBS's TensorFlow runner did them.

Two things differ from the classifiers' loop, both because the published runs did them: the
minibatch order is the seed's one order, repeated every epoch (TensorFlow DeepOBS re-initialised
its seeded shuffle each epoch; the order is rebuilt in ``studies.tasks._tensorflow_shuffle``),
and a split's loss is the mean of its full batches' mean losses, the remainder dropped. Full
float32 without autocast, as TensorFlow computed it: bf16 would lose the 6 significant digits
the initial loss is checked to.
"""

from __future__ import annotations

import torch
from boundsweep.studies._training._steps import EpochOutcome, LossWatch, optimizer_step
from torch import nn


def fixed_order_batches(
    train_x: torch.Tensor, order: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """Every epoch's batches, ``(steps, batch, dim)``: the points in ``order``, cut into full
    batches.

    The points past the last full batch are never trained on (DeepOBS's ``drop_remainder``);
    a training set smaller than one batch is one partial batch.
    """
    steps = max(1, len(train_x) // batch_size)
    size = min(batch_size, len(train_x))
    return train_x.index_select(0, order[: steps * size]).view(steps, size, -1)


def train_quadratic_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: torch.Tensor,
    step_limit: int | None,
) -> EpochOutcome:
    """One pass over the fixed batches (or ``step_limit`` steps); a batch's loss is its mean."""
    watch = LossWatch(batches.device)
    for x in batches:
        if step_limit is not None and watch.steps >= step_limit:
            break
        loss = model(x).mean()
        optimizer_step(loss, model, optimizer, None)
        if not watch.add(loss, len(x)):
            return EpochOutcome(watch.mean(), watch.steps, diverged=True)
    return EpochOutcome(watch.mean(), watch.steps, diverged=not watch.finite())


@torch.no_grad()
def batch_mean_loss(model: nn.Module, x: torch.Tensor, batch_size: int) -> float:
    """DeepOBS's evaluation: the mean over the in-order full batches of each batch's mean loss.

    Each batch's mean is a float32 value, as TensorFlow computed it; their mean is taken in
    float64, as the runner summed them in Python.
    """
    steps = max(1, len(x) // batch_size)
    size = min(batch_size, len(x))
    losses = model(x[: steps * size]).view(steps, size).mean(1)
    return float(losses.to(torch.float64).mean())
