"""MNIST from its idx files, read by torchvision's reader, as normalised flat tensors."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import torch
from boundsweep.studies.tasks._datadir import require_files
from boundsweep.studies.tasks._splits import ClassificationData, hold_out_validation

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# The usual MNIST statistics (the same constants the DataLoader baseline's Normalize uses).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def _torchvision_mnist() -> type:
    # torchvision takes seconds to import; only a task that reads these files should pay it.
    from torchvision.datasets import MNIST

    return MNIST


def mnist_raw_folder(data_dir: Path) -> Path:
    """Where torchvision's ``MNIST(root=data_dir)`` looks for the idx files."""
    return Path(data_dir) / "MNIST" / "raw"


def _unpack_gzipped(raw: Path) -> None:
    # The files are distributed as .gz; torchvision reads only the unpacked ones.
    for name in MNIST_FILES:
        packed = raw / f"{name}.gz"
        if not (raw / name).exists() and packed.exists():
            with gzip.open(packed, "rb") as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)


def load_mnist(data_dir: Path) -> ClassificationData:
    """Read MNIST under ``<data_dir>/MNIST/raw/`` (raw or .gz idx files), downloading if allowed.

    Returns:
        Flat 784-feature float32 inputs normalised with the MNIST mean and std; 10% of the
        60,000 training images held out for validation.

    Raises:
        MissingDataError: When files are missing and cannot be downloaded.
    """
    raw = mnist_raw_folder(data_dir)
    _unpack_gzipped(raw)
    require_files(
        "MNIST",
        raw,
        MNIST_FILES,
        "http://yann.lecun.com/exdb/mnist/",
        lambda: _torchvision_mnist()(str(data_dir), train=True, download=True),
    )
    train = _torchvision_mnist()(str(data_dir), train=True, download=False)
    test = _torchvision_mnist()(str(data_dir), train=False, download=False)
    train_x, train_y, val_x, val_y = hold_out_validation(_normalise(train.data), train.targets)
    return ClassificationData(
        train_x, train_y, val_x, val_y, _normalise(test.data), test.targets.long(), num_classes=10
    )


def _normalise(images: torch.Tensor) -> torch.Tensor:
    flat = images.reshape(len(images), -1).to(torch.float32).div_(255.0)
    return flat.sub_(MNIST_MEAN).div_(MNIST_STD)
