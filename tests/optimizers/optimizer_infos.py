"""The table every generic optimizer test runs over, in the spirit of torch's ``OptimizerInfo``.

One ``OptimizerInfo`` per registry entry and, for the bounded optimizers, per implementation,
so every implementation goes through every generic test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from boundsweep.optimizers import REGISTRY, build_optimizer
from torch.optim import Optimizer


@dataclass(frozen=True)
class OptimizerInfo:
    """One optimizer configuration under test.

    Attributes:
        name: The registry key.
        impl: The bounded optimizers' implementation (``None`` for torch's optimizers).
        hparams: Registry hyperparameters for the generic tests (registry defaults otherwise).
    """

    name: str
    impl: str | None = None
    hparams: dict[str, float] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.name if self.impl is None else f"{self.name}-{self.impl}"

    def build(self, params: Any, **overrides: float) -> Optimizer:
        optimizer = build_optimizer(self.name, params, {**self.hparams, **overrides})
        if self.impl is not None:
            optimizer._impl = self.impl  # the registry builds with impl=auto; pin one
        return optimizer


BOUNDED_IMPLS = ("single_tensor", "foreach", "fused", "triton", "auto")

# Learning rates that make a 100-step toy problem move for every optimizer; the bounded ones
# get a fast bound (gamma) so their SGD-like phase is reached within the test.
_TEST_HPARAMS: dict[str, dict[str, float]] = {
    "sgdm": {"lr": 0.05},
    "adam": {"lr": 0.01},
    "amsgrad": {"lr": 0.01},
    "adagrad": {"lr": 0.1},
    "adamw": {"lr": 0.01},
    "adabound": {"lr": 0.01, "final_lr": 0.05, "gamma": 0.01, "weight_decay": 1e-4},
    "amsbound": {"lr": 0.01, "final_lr": 0.05, "gamma": 0.01, "weight_decay": 1e-4},
    "adaboundw": {"lr": 0.01, "final_lr": 0.05, "gamma": 0.01},
}

OPTIMIZER_INFOS: list[OptimizerInfo] = [
    info
    for name, entry in REGISTRY.items()
    for info in (
        [OptimizerInfo(name, impl, _TEST_HPARAMS[name]) for impl in BOUNDED_IMPLS]
        if entry.bounded
        else [OptimizerInfo(name, None, _TEST_HPARAMS[name])]
    )
]

optimizer_infos = pytest.mark.parametrize("info", OPTIMIZER_INFOS, ids=lambda i: i.id)


def toy_problem(dtype: torch.dtype = torch.float32, seed: int = 0) -> tuple[Any, ...]:
    """A small regression problem: (model, inputs, targets)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(128, 8, generator=generator, dtype=dtype)
    targets = torch.tanh(inputs @ torch.randn(8, 1, generator=generator, dtype=dtype))
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1)).to(
        dtype
    )
    return model, inputs, targets


def train_steps(
    model: Any, optimizer: Optimizer, inputs: Any, targets: Any, steps: int, scheduler: Any = None
) -> list[float]:
    """Run ``steps`` full-batch steps; return the losses before each step."""
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
    return losses
