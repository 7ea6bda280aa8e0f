"""scikit-learn's bundled 8x8 digits: real data that ships with the package, for CI."""

from __future__ import annotations

from pathlib import Path

import torch
from boundsweep.studies.tasks._splits import SPLIT_SEED, ClassificationData, hold_out_validation
from sklearn.datasets import load_digits

DIGITS_TEST_FRACTION = 0.2


def load_digits_data(data_dir: Path | None = None) -> ClassificationData:
    """The 1,797 digits: a fixed 20% test split, 10% of the rest held out for validation.

    Features (pixel intensities 0..16) are standardised with the training split's statistics.
    ``data_dir`` is unused: the data ships with scikit-learn.
    """
    del data_dir
    bunch = load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32)
    y = torch.as_tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED + 1))
    n_test = round(DIGITS_TEST_FRACTION * len(y))
    test, train = order[:n_test], order[n_test:]
    train_x, train_y, val_x, val_y = hold_out_validation(x[train], y[train])
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-3)

    def scale(t: torch.Tensor) -> torch.Tensor:
        return (t - mean) / std

    return ClassificationData(
        scale(train_x), train_y, scale(val_x), val_y, scale(x[test]), y[test], num_classes=10
    )
