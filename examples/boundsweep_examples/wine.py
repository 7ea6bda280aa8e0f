"""The wine task's torch half: read the CSV shipped in this package, build a small MLP."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import torch
from boundsweep.studies.tasks import ClassificationData
from torch import nn

TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
SPLIT_SEED = 1234  # the split is the data's, not the trial's: the same for every seed


def load_data(data_dir: Path) -> ClassificationData:
    """The 178 wines: a fixed 20% test split, 10% of the rest for validation, features
    standardised with the training split's statistics. ``data_dir`` is unused (the CSV ships
    in the package)."""
    del data_dir
    with resources.files(__package__).joinpath("data/wine.csv").open() as f:
        rows = list(csv.reader(f))[1:]
    x = torch.tensor([[float(v) for v in row[:-1]] for row in rows])
    y = torch.tensor([int(row[-1]) for row in rows])
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = round(TEST_FRACTION * len(y))
    test, rest = order[:n_test], order[n_test:]
    n_val = round(VALIDATION_FRACTION * len(rest))
    val, train = rest[:n_val], rest[n_val:]
    mean, std = x[train].mean(0), x[train].std(0).clamp_min(1e-6)

    def scale(t: torch.Tensor) -> torch.Tensor:
        return (t - mean) / std

    return ClassificationData(
        scale(x[train]), y[train], scale(x[val]), y[val], scale(x[test]), y[test], num_classes=3
    )


def build_model(data: ClassificationData) -> nn.Module:
    """13 -> 32 -> 3 with a ReLU: a plain MLP, so the task is batchable."""
    return nn.Sequential(nn.Linear(data.train_x.shape[1], 32), nn.ReLU(), nn.Linear(32, 3))
