"""Writers for the datasets' real file formats: MNIST idx, CIFAR-10 python batches, PTB text.

The loaders read only these formats; the writers let tests, benchmarks and users make files a
loader accepts (a subset of the real data, synthetic data of the real shape) without any
special path through the loaders.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from boundsweep.studies.tasks._cifar import CIFAR_TRAIN_FILES, cifar_folder
from boundsweep.studies.tasks._mnist import mnist_raw_folder
from boundsweep.studies.tasks._ptb import ptb_folder

_IDX_UBYTE = 0x08


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """Write a uint8 array as an idx file (big-endian header: magic, then each dimension)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", (_IDX_UBYTE << 8) | array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def write_mnist(
    data_dir: Path,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    compress: bool = False,
) -> Path:
    """Write the four MNIST idx files under ``<data_dir>/MNIST/raw/`` (``.gz`` if ``compress``).

    Returns:
        The folder written.
    """
    raw = mnist_raw_folder(data_dir)
    raw.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    for prefix, images, labels in (
        ("train", train_images, train_labels),
        ("t10k", test_images, test_labels),
    ):
        write_idx(raw / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
    return raw


def write_cifar10(
    data_dir: Path,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    label_names: Sequence[str] = tuple(f"class{i}" for i in range(10)),
) -> Path:
    """Write CIFAR-10 python batches under ``<data_dir>/cifar-10-batches-py/``.

    Images are (N, 3, 32, 32) uint8; the training set is spread over the five
    ``data_batch_*`` files as in the real archive.

    Returns:
        The folder written.
    """
    folder = cifar_folder(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    parts = np.array_split(np.arange(len(train_labels)), len(CIFAR_TRAIN_FILES))
    batches = [
        (name, train_images[p], train_labels[p])
        for name, p in zip(CIFAR_TRAIN_FILES, parts, strict=True)
    ]
    batches.append(("test_batch", test_images, test_labels))
    for name, images, labels in batches:
        entry = {
            "batch_label": name,
            "labels": [int(v) for v in labels],
            "data": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(labels), -1),
            "filenames": [f"{name}_{i}.png" for i in range(len(labels))],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(
            {"label_names": list(label_names), "num_cases_per_batch": 10000, "num_vis": 3072}, f
        )
    return folder


def write_ptb(
    data_dir: Path, train: Sequence[str], valid: Sequence[str], test: Sequence[str]
) -> Path:
    """Write ``ptb.{train,valid,test}.txt`` under ``<data_dir>/ptb/``, one sentence per line.

    Returns:
        The folder written.
    """
    folder = ptb_folder(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in (("train", train), ("valid", valid), ("test", test)):
        # The real files start every line with a space.
        (folder / f"ptb.{name}.txt").write_text("".join(f" {line} \n" for line in lines))
    return folder


def write_random_datasets(
    data_dir: Path,
    *,
    mnist: tuple[int, int] = (64, 16),
    cifar: tuple[int, int] = (12, 4),
    ptb_sentences: tuple[int, int, int] = (30, 5, 5),
    ptb_vocabulary: int = 30,
    seed: int = 0,
) -> Path:
    """MNIST, CIFAR-10 and PTB files of random content in their real formats, at the sizes
    asked ((train, test) images; (train, valid, test) sentences of 8 words drawn from
    ``ptb_vocabulary`` words), so every paper task loads them as it loads the real data.

    Returns:
        ``data_dir``.
    """
    rng = np.random.default_rng(seed)
    write_mnist(
        data_dir,
        rng.integers(0, 256, (mnist[0], 28, 28), dtype=np.uint8),
        rng.integers(0, 10, mnist[0]),
        rng.integers(0, 256, (mnist[1], 28, 28), dtype=np.uint8),
        rng.integers(0, 10, mnist[1]),
    )
    write_cifar10(
        data_dir,
        rng.integers(0, 256, (cifar[0], 3, 32, 32), dtype=np.uint8),
        rng.integers(0, 10, cifar[0]),
        rng.integers(0, 256, (cifar[1], 3, 32, 32), dtype=np.uint8),
        rng.integers(0, 10, cifar[1]),
    )
    words = [f"w{i}" for i in range(ptb_vocabulary)]
    sentences = [" ".join(rng.choice(words, size=8)) for _ in range(sum(ptb_sentences))]
    train, valid = ptb_sentences[0], ptb_sentences[0] + ptb_sentences[1]
    write_ptb(data_dir, sentences[:train], sentences[train:valid], sentences[valid:])
    return data_dir
