"""MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from boundsweep.studies.tasks._splits import ClassificationData, hold_out_validation
from mnist1d.data import get_dataset_args, make_dataset


def load_mnist1d(data_dir: Path | None = None) -> ClassificationData:
    """The package's default MNIST-1D: 4,000 train / 1,000 test signals of length 40.

    ``make_dataset`` seeds numpy's and Python's global generators (seed 42) to be reproducible;
    their state is restored afterwards so generating the data does not change a caller's
    random stream. 10% of the 4,000 training signals are held out for validation.
    ``data_dir`` is unused: nothing is downloaded.
    """
    del data_dir
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x = torch.as_tensor(data["x"], dtype=torch.float32)
    y = torch.as_tensor(data["y"], dtype=torch.long)
    train_x, train_y, val_x, val_y = hold_out_validation(x, y)
    return ClassificationData(
        train_x,
        train_y,
        val_x,
        val_y,
        torch.as_tensor(data["x_test"], dtype=torch.float32),
        torch.as_tensor(data["y_test"], dtype=torch.long),
        num_classes=10,
    )
