"""What every epoch shares: the autocast context, the step, and the divergence watch."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn


def autocast(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast on CUDA; full precision on CPU, where it would be slower and less exact."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def optimizer_step(
    loss: torch.Tensor, model: nn.Module, optimizer: torch.optim.Optimizer, clip: float | None
) -> None:
    """Backward, optional global-norm clipping, step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()


@dataclass
class EpochOutcome:
    """What one pass over the training data produced."""

    train_loss: float
    steps: int
    diverged: bool


class LossWatch:
    """Sums a loss on the device and notices when it stops being finite.

    Reading a CUDA scalar waits for the GPU, so there the check runs every ``every`` steps
    (and at the end); on CPU it is free and runs every step, so a diverged run stops at once.
    """

    def __init__(self, device: torch.device) -> None:
        self.total = torch.zeros((), dtype=torch.float64, device=device)
        self.weight = 0
        self.every = 25 if device.type == "cuda" else 1
        self.steps = 0

    def add(self, loss: torch.Tensor, weight: int) -> bool:
        """Add a batch's mean loss; returns False once the sum is NaN/inf (when checked)."""
        self.total += loss.detach().to(torch.float64) * weight
        self.weight += weight
        self.steps += 1
        return self.steps % self.every != 0 or self.finite()

    def finite(self) -> bool:
        """Whether the sum so far is finite."""
        return bool(torch.isfinite(self.total))

    def mean(self) -> float:
        """Mean loss per example (token) so far."""
        return float(self.total) / max(1, self.weight)
