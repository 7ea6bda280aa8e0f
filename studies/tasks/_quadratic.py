"""The torch half of ``quadratic_deep``: its three point sets, the seed's Hessian and minibatch
order, the model θ."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from boundsweep.studies.tasks._quadratic_deep import (
    examples,
    facts,
    hessian,
    instance_of_seed,
    minibatch_order,
)
from torch import nn


@dataclass(frozen=True)
class QuadraticData:
    """The noisy quadratic's fixed points and, once a seed picked them, its Hessian and order.

    The points are the same for every seed (DeepOBS draws them from fixed seeds); the Hessian
    and the minibatch order are the seed's (``for_seed``), so a worker loads the points once
    and each trial adds its own.
    """

    train_x: torch.Tensor
    valid_x: torch.Tensor
    test_x: torch.Tensor
    hessian: torch.Tensor | None = None
    order: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> QuadraticData:
        """The same data on ``device``."""
        fields = ("train_x", "valid_x", "test_x", "hessian", "order")
        present = [f for f in fields if getattr(self, f) is not None]
        return replace(self, **{f: getattr(self, f).to(device) for f in present})

    def subset(self, fraction: float) -> QuadraticData:
        """Keep the first ``ceil(fraction * n)`` training points (at least one)."""
        if fraction >= 1.0:
            return self
        n = max(1, math.ceil(fraction * len(self.train_x)))
        return replace(self, train_x=self.train_x[:n])

    def for_seed(self, seed: int) -> QuadraticData:
        """The problem a trial with ``seed`` trains on: the Hessian (in float32, as DeepOBS fed
        it) and the minibatch order of the published run with that seed.

        Raises:
            ValueError: A seed outside the task's range, naming it.
        """
        device = self.train_x.device
        matrix = torch.from_numpy(hessian(instance_of_seed(seed)).astype("float32"))
        order = torch.tensor(minibatch_order(seed, len(self.train_x)), device=device)
        return replace(self, hessian=matrix.to(device), order=order)


def load_quadratic_deep(data_dir: Path | None = None) -> QuadraticData:
    """DeepOBS's train, validation and test points. ``data_dir`` is unused: they are drawn."""
    del data_dir
    return QuadraticData(
        *(torch.from_numpy(examples(split)) for split in ("train", "valid", "test"))
    )


class NoisyQuadratic(nn.Module):
    """θ ∈ R^(1×100), started at all ones; a point x costs ``0.5 (θ − x)ᵀ H (θ − x)``."""

    def __init__(self, matrix: torch.Tensor) -> None:
        super().__init__()
        dim = matrix.shape[0]
        self.theta = nn.Parameter(torch.full((1, dim), facts()["initial_theta"]))
        self.register_buffer("hessian", matrix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Each point's loss, shape ``(len(x),)``."""
        offset = self.theta - x
        return 0.5 * ((offset @ self.hessian) * offset).sum(1)


def build_noisy_quadratic(data: QuadraticData) -> NoisyQuadratic:
    """The model of a seed's problem (``data.for_seed(seed)`` gave it its Hessian)."""
    assert data.hessian is not None, "quadratic data without a Hessian: call for_seed(seed) first"
    return NoisyQuadratic(data.hessian)
