"""In-memory datasets as tensors, and the fixed validation hold-out every trial shares."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

# The validation split is drawn with this seed, never the trial's, so every trial of every
# campaign on a task is tuned on the same held-out examples.
SPLIT_SEED = 20190506
VALIDATION_FRACTION = 0.1


@dataclass(frozen=True)
class ClassificationData:
    """Train / validation / test tensors of one classification task.

    ``train_x`` is in a fixed shuffled order (from the hold-out split), so a prefix of it is a
    fixed random subset: that is how ``Budget.data_fraction`` reduces the training set.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int

    def to(self, device: torch.device | str) -> ClassificationData:
        """The same data on ``device`` (one copy, made once per process and task)."""
        fields = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")
        return replace(self, **{f: getattr(self, f).to(device) for f in fields})

    def subset(self, fraction: float) -> ClassificationData:
        """Keep the first ``ceil(fraction * n)`` training examples (at least one)."""
        if fraction >= 1.0:
            return self
        n = max(1, math.ceil(fraction * len(self.train_y)))
        return replace(self, train_x=self.train_x[:n], train_y=self.train_y[:n])


@dataclass(frozen=True)
class LanguageData:
    """Token ids of a word-level corpus: the train, valid and test streams, and the vocabulary."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocabulary: tuple[str, ...]

    def to(self, device: torch.device | str) -> LanguageData:
        """The same corpus on ``device``."""
        return replace(
            self,
            train=self.train.to(device),
            valid=self.valid.to(device),
            test=self.test.to(device),
        )

    def subset(self, fraction: float) -> LanguageData:
        """Keep the first ``ceil(fraction * n)`` training tokens (at least two)."""
        if fraction >= 1.0:
            return self
        n = max(2, math.ceil(fraction * len(self.train)))
        return replace(self, train=self.train[:n])


def hold_out_validation(
    x: torch.Tensor, y: torch.Tensor, fraction: float = VALIDATION_FRACTION
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a training set into (train_x, train_y, val_x, val_y) with a fixed random permutation.

    Args:
        x: Inputs, first dimension the examples.
        y: Labels.
        fraction: Share of the examples held out for validation (at least one example, and at
            least one left for training).

    Returns:
        The training part (in the permuted order) and the validation part.
    """
    n = len(y)
    if n < 2:
        raise ValueError(f"need at least 2 training examples to hold out validation, got {n}")
    n_val = min(n - 1, max(1, round(fraction * n)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]
