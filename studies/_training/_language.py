"""Truncated-backprop training and perplexity of a word-level language model."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from boundsweep.studies._training._steps import EpochOutcome, LossWatch, autocast, optimizer_step
from boundsweep.studies.tasks import Task
from torch import nn
from torch.nn import functional as F

EVAL_BATCH = 10


def batchify(tokens: torch.Tensor, streams: int) -> torch.Tensor:
    """Cut a token stream into ``streams`` parallel columns, (length, streams); the tail is dropped."""
    length = len(tokens) // streams
    if length < 2:
        raise ValueError(
            f"{len(tokens)} tokens are too few for {streams} streams of at least 2 tokens"
        )
    return tokens[: length * streams].view(streams, length).t().contiguous()


def _windows(columns: torch.Tensor, bptt: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, targets) of each window of ``bptt`` tokens; targets are the next tokens."""
    for start in range(0, len(columns) - 1, bptt):
        end = min(start + bptt, len(columns) - 1)
        yield columns[start:end], columns[start + 1 : end + 1]


def _detach(state: list[tuple[torch.Tensor, torch.Tensor]] | None):
    # Truncated backprop: the state carries over windows, its history does not.
    if state is None:
        return None
    return [(h.detach(), c.detach()) for h, c in state]


def train_language_epoch(
    task: Task,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    columns: torch.Tensor,
    step_limit: int | None,
) -> EpochOutcome:
    """One pass over the batchified training stream in windows of ``task.bptt`` tokens."""
    assert task.bptt is not None, f"task {task.name} needs bptt"
    model.train()
    watch = LossWatch(columns.device)
    state = None
    for inputs, targets in _windows(columns, task.bptt):
        if step_limit is not None and watch.steps >= step_limit:
            break
        with autocast(columns.device):
            logits, state = model(inputs, _detach(state))
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1)
            )
        optimizer_step(loss, model, optimizer, task.grad_clip)
        if not watch.add(loss, targets.numel()):
            return EpochOutcome(watch.mean(), watch.steps, diverged=True)
    return EpochOutcome(watch.mean(), watch.steps, diverged=not watch.finite())


@torch.no_grad()
def perplexity(task: Task, model: nn.Module, tokens: torch.Tensor) -> float:
    """exp of the mean next-word cross-entropy over ``tokens`` (inf when it overflows)."""
    assert task.bptt is not None, f"task {task.name} needs bptt"
    model.eval()
    columns = batchify(tokens, min(EVAL_BATCH, max(1, len(tokens) // 2)))
    total = torch.zeros((), dtype=torch.float64, device=tokens.device)
    count = 0
    state = None
    for inputs, targets in _windows(columns, task.bptt):
        with autocast(tokens.device):
            logits, state = model(inputs, state)
        total += F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction="sum"
        ).to(torch.float64)
        count += targets.numel()
    mean = float(total) / max(1, count)
    return math.exp(mean) if mean < 700 else math.inf
