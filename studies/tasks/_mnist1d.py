"""MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import random
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from boundsweep.studies.tasks._splits import ClassificationData, hold_out_validation
from mnist1d.data import get_dataset_args, make_dataset

_log = logging.getLogger(__name__)


CACHE_FOLDER = "mnist1d"
"""Where under the data folder the generated arrays are kept (``load_mnist1d``)."""


def load_mnist1d(data_dir: Path | None = None) -> ClassificationData:
    """The package's default MNIST-1D: 4,000 train / 1,000 test signals of length 40.

    ``make_dataset`` seeds numpy's and Python's global generators (seed 42) to be reproducible;
    their state is restored afterwards so generating the data does not change a caller's
    random stream. 10% of the 4,000 training signals are held out for validation.

    Generating takes about a second, which every worker paid at its first trial, so the
    arrays are kept in ``data_dir/mnist1d/`` (a ``.npz`` named by the package's version and
    arguments, written whole or not at all) and read from there next time. Nothing is
    downloaded; without a ``data_dir``, or where it cannot be written or read, the data is
    generated as before.
    """
    arrays = _cached(data_dir) if data_dir is not None else None
    if arrays is None:
        arrays = _generate()
        if data_dir is not None:
            _store(data_dir, arrays)
    x = torch.as_tensor(arrays["x"], dtype=torch.float32)
    y = torch.as_tensor(arrays["y"], dtype=torch.long)
    train_x, train_y, val_x, val_y = hold_out_validation(x, y)
    return ClassificationData(
        train_x,
        train_y,
        val_x,
        val_y,
        torch.as_tensor(arrays["x_test"], dtype=torch.float32),
        torch.as_tensor(arrays["y_test"], dtype=torch.long),
        num_classes=10,
    )


_ARRAYS = ("x", "y", "x_test", "y_test")


def _generate() -> dict[str, np.ndarray]:
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {name: np.asarray(data[name]) for name in _ARRAYS}


def cache_path(data_dir: Path) -> Path:
    """The cache file for this ``mnist1d`` version and its default arguments."""
    args = {k: v for k, v in sorted(vars(get_dataset_args()).items()) if k != "url"}
    key = json.dumps([importlib.metadata.version("mnist1d"), args], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(data_dir) / CACHE_FOLDER / f"mnist1d-{digest}.npz"


def _cached(data_dir: Path) -> dict[str, np.ndarray] | None:
    path = cache_path(data_dir)
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in _ARRAYS}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        if path.exists():
            _log.warning("MNIST-1D cache %s unreadable (%s): generating it again", path, error)
        return None
    return arrays


def _store(data_dir: Path, arrays: dict[str, np.ndarray]) -> None:
    path = cache_path(data_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, partial = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError as error:
        _log.info("MNIST-1D not cached in %s (%s)", path.parent, error)
        return
    try:
        with os.fdopen(descriptor, "wb") as out:
            np.savez(out, **arrays)
        os.replace(partial, path)  # whole or not at all, however many workers race
    except OSError as error:
        _log.info("MNIST-1D not cached in %s (%s)", path.parent, error)
        with contextlib.suppress(OSError):
            os.unlink(partial)
