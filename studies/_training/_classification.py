"""Training and evaluation of a classifier straight from dataset tensors on the device."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from boundsweep.studies._training._steps import EpochOutcome, LossWatch, autocast, optimizer_step
from boundsweep.studies.tasks import ClassificationData, TrainableTask
from torch import nn
from torch.nn import functional as F

EVAL_BATCH = 1024
GATHER_BATCHES = 32


def training_batches(
    task: TrainableTask,
    data: ClassificationData,
    generator: torch.Generator,
    channels_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled training batches, gathered and augmented on the data's device.

    The order is a permutation drawn from ``generator`` (which lives on the data's device).
    Examples are gathered ``GATHER_BATCHES`` batches at a time and each batch is a slice of
    that block, plus the task's batch transform: no per-example Python work, no copies to or
    from the host, and few, large gathers — on a busy CPU each parallel kernel pays a thread
    synchronisation, and one per block costs far less than one per batch.
    """
    device = data.train_x.device
    order = torch.randperm(len(data.train_y), generator=generator, device=device)
    block = task.batch_size * GATHER_BATCHES
    for block_start in range(0, len(order), block):
        index = order[block_start : block_start + block]
        block_x = data.train_x.index_select(0, index)
        block_y = data.train_y.index_select(0, index)
        for start in range(0, len(index), task.batch_size):
            x = block_x[start : start + task.batch_size]
            if task.train_inputs is not None:
                x = task.train_inputs(x, generator)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, block_y[start : start + task.batch_size]


def train_classifier_epoch(
    task: TrainableTask,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: ClassificationData,
    generator: torch.Generator,
    step_limit: int | None,
    channels_last: bool,
) -> EpochOutcome:
    """One shuffled pass over ``data``'s training split (or ``step_limit`` steps)."""
    model.train()
    watch = LossWatch(data.train_x.device)
    for x, y in training_batches(task, data, generator, channels_last):
        if step_limit is not None and watch.steps >= step_limit:
            break
        with autocast(x.device):
            loss = F.cross_entropy(model(x), y)
        optimizer_step(loss, model, optimizer, task.grad_clip)
        if not watch.add(loss, len(y)):
            return EpochOutcome(watch.mean(), watch.steps, diverged=True)
    return EpochOutcome(watch.mean(), watch.steps, diverged=not watch.finite())


@torch.no_grad()
def accuracy(
    task: TrainableTask, model: nn.Module, x: torch.Tensor, y: torch.Tensor, channels_last: bool
) -> float:
    """Share of correctly classified examples, evaluated in large batches."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    for start in range(0, len(y), EVAL_BATCH):
        xb = x[start : start + EVAL_BATCH]
        if task.eval_inputs is not None:
            xb = task.eval_inputs(xb)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast(y.device):
            logits = model(xb)
        correct += (logits.argmax(1) == y[start : start + EVAL_BATCH]).sum()
    return float(correct) / max(1, len(y))
