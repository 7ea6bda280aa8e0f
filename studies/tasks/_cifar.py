"""CIFAR-10 from its python pickle batches, kept as uint8 NCHW tensors.

The real files are read by torchvision's ``CIFAR10`` (which checks their md5 sums). Files in the
same pickle format that fail those checksums (a subset, a re-export, the tiny files the tests
write) are read by :func:`read_cifar_batches`, which parses the same format itself.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from boundsweep.studies.tasks._datadir import require_files
from boundsweep.studies.tasks._splits import ClassificationData, hold_out_validation

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_FILES = (*CIFAR_TRAIN_FILES, "test_batch", "batches.meta")
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def _torchvision_cifar10() -> type:
    # torchvision takes seconds to import; only a task that reads these files should pay it.
    from torchvision.datasets import CIFAR10

    return CIFAR10


def cifar_folder(data_dir: Path) -> Path:
    """Where the unpacked ``cifar-10-python.tar.gz`` batches belong."""
    return Path(data_dir) / CIFAR_FOLDER


def read_cifar_batches(folder: Path, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Parse CIFAR-10 python batches: pickled dicts with ``data`` (N x 3072 uint8) and ``labels``.

    Returns:
        Images as (N, 3, 32, 32) uint8 and labels as int64.
    """
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        images.append(np.asarray(entry["data"], dtype=np.uint8))
        labels.extend(entry["labels"])
    return np.concatenate(images).reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _read_with_torchvision(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    train = _torchvision_cifar10()(str(root), train=True, download=False)
    test = _torchvision_cifar10()(str(root), train=False, download=False)
    # torchvision keeps HWC for PIL; the training loop wants NCHW.
    return (
        train.data.transpose(0, 3, 1, 2),
        np.asarray(train.targets, dtype=np.int64),
        test.data.transpose(0, 3, 1, 2),
        np.asarray(test.targets, dtype=np.int64),
    )


def load_cifar10(data_dir: Path) -> ClassificationData:
    """Read CIFAR-10 under ``<data_dir>/cifar-10-batches-py/``, downloading if allowed.

    Returns:
        uint8 (N, 3, 32, 32) images (normalisation and augmentation run per batch on the device);
        10% of the 50,000 training images held out for validation.

    Raises:
        MissingDataError: When files are missing and cannot be downloaded.
    """
    folder = cifar_folder(data_dir)
    require_files(
        "CIFAR-10",
        folder,
        CIFAR_FILES,
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        lambda: _torchvision_cifar10()(str(data_dir), train=True, download=True),
    )
    try:
        train_x, train_y, test_x, test_y = _read_with_torchvision(Path(data_dir))
    except RuntimeError:  # md5 mismatch: same format, not the published files
        train_x, train_y = read_cifar_batches(folder, CIFAR_TRAIN_FILES)
        test_x, test_y = read_cifar_batches(folder, ("test_batch",))
    tx, ty, vx, vy = hold_out_validation(
        torch.from_numpy(np.ascontiguousarray(train_x)), torch.from_numpy(train_y)
    )
    return ClassificationData(
        tx,
        ty,
        vx,
        vy,
        torch.from_numpy(np.ascontiguousarray(test_x)),
        torch.from_numpy(test_y),
        num_classes=10,
    )
