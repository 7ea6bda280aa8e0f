"""The loaders read tiny files written in each dataset's real format, through the real readers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from boundsweep.studies.tasks import (
    ClassificationData,
    MissingDataError,
    resolve_data_dir,
    write_cifar10,
    write_mnist,
    write_ptb,
)
from boundsweep.studies.tasks._augment import normalise_cifar, random_crop_flip
from boundsweep.studies.tasks._cifar import CIFAR_MEAN, CIFAR_STD, load_cifar10
from boundsweep.studies.tasks._digits import load_digits_data
from boundsweep.studies.tasks._mnist import MNIST_MEAN, MNIST_STD, load_mnist
from boundsweep.studies.tasks._mnist1d import cache_path, load_mnist1d
from boundsweep.studies.tasks._ptb import load_ptb
from torchvision.transforms.v2 import functional as TF


@pytest.fixture(autouse=True)
def _no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hermetic: a machine with a network must not fetch the real datasets here.
    monkeypatch.setenv("BOUNDSWEEP_DOWNLOAD", "0")


def _images(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _rows(t: torch.Tensor) -> set[tuple]:
    return {tuple(r.tolist()) for r in t.reshape(len(t), -1)}


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_files_read_by_torchvision(tmp_path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    train_x, train_y = _images(rng, 30, (28, 28)), rng.integers(0, 10, 30).astype(np.uint8)
    test_x, test_y = _images(rng, 7, (28, 28)), rng.integers(0, 10, 7).astype(np.uint8)
    write_mnist(tmp_path, train_x, train_y, test_x, test_y, compress=compress)

    data = load_mnist(tmp_path)

    assert data.train_x.shape == (27, 784) and data.val_x.shape == (3, 784)
    assert data.num_classes == 10
    expected_test = (torch.from_numpy(test_x).reshape(7, -1).float() / 255 - MNIST_MEAN) / MNIST_STD
    torch.testing.assert_close(data.test_x, expected_test)
    assert data.test_y.tolist() == test_y.tolist()
    # Validation is held out of the training set: together they are exactly the 30 images.
    expected_train = (
        torch.from_numpy(train_x).reshape(30, -1).float() / 255 - MNIST_MEAN
    ) / MNIST_STD
    assert _rows(torch.cat([data.train_x, data.val_x])) == _rows(expected_train)
    assert not _rows(data.train_x) & _rows(data.val_x)


def test_validation_split_is_fixed_whatever_the_trial_seed(tmp_path) -> None:
    rng = np.random.default_rng(1)
    write_mnist(
        tmp_path,
        _images(rng, 40, (28, 28)),
        rng.integers(0, 10, 40),
        _images(rng, 5, (28, 28)),
        rng.integers(0, 10, 5),
    )
    torch.manual_seed(123)
    first = load_mnist(tmp_path)
    torch.manual_seed(456)
    second = load_mnist(tmp_path)
    assert torch.equal(first.val_x, second.val_x) and torch.equal(first.train_y, second.train_y)


def test_cifar_batches_in_the_pickle_format(tmp_path) -> None:
    rng = np.random.default_rng(2)
    train_x, train_y = _images(rng, 20, (3, 32, 32)), rng.integers(0, 10, 20)
    test_x, test_y = _images(rng, 6, (3, 32, 32)), rng.integers(0, 10, 6)
    write_cifar10(tmp_path, train_x, train_y, test_x, test_y)

    data = load_cifar10(tmp_path)

    assert data.train_x.dtype == torch.uint8 and data.train_x.shape == (18, 3, 32, 32)
    assert data.val_x.shape == (2, 3, 32, 32)
    assert torch.equal(data.test_x, torch.from_numpy(test_x))
    assert data.test_y.tolist() == test_y.tolist()
    assert _rows(torch.cat([data.train_x, data.val_x])) == _rows(torch.from_numpy(train_x))


def test_ptb_text_files(tmp_path) -> None:
    write_ptb(
        tmp_path,
        train=["the cat sat", "the dog <unk> ran"],
        valid=["the cat ran"],
        test=["a dog sat"],
    )
    data = load_ptb(tmp_path)
    vocab = data.vocabulary
    assert vocab == ("the", "cat", "sat", "<eos>", "dog", "<unk>", "ran")
    assert [vocab[i] for i in data.train] == [
        "the",
        "cat",
        "sat",
        "<eos>",
        "the",
        "dog",
        "<unk>",
        "ran",
        "<eos>",
    ]
    assert [vocab[i] for i in data.valid] == ["the", "cat", "ran", "<eos>"]
    # "a" is not in the training vocabulary: it reads as <unk>.
    assert [vocab[i] for i in data.test] == ["<unk>", "dog", "sat", "<eos>"]


@pytest.mark.parametrize(
    ("loader", "folder", "first_file"),
    [
        (load_mnist, "MNIST/raw", "train-images-idx3-ubyte"),
        (load_cifar10, "cifar-10-batches-py", "data_batch_1"),
        (load_ptb, "ptb", "ptb.train.txt"),
    ],
)
def test_missing_files_error_names_them_and_the_folder(
    tmp_path, loader, folder, first_file
) -> None:
    with pytest.raises(MissingDataError, match=first_file) as info:
        loader(tmp_path)
    assert str(tmp_path / folder) in str(info.value)
    assert "BOUNDSWEEP_DATA_DIR" in str(info.value)


def test_partly_present_files_name_only_the_missing_ones(tmp_path) -> None:
    write_ptb(tmp_path, ["a b"], ["a"], ["b"])
    (tmp_path / "ptb" / "ptb.test.txt").unlink()
    with pytest.raises(MissingDataError) as info:
        load_ptb(tmp_path)
    assert info.value.missing == ["ptb.test.txt"]


def test_data_dir_from_argument_then_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("BOUNDSWEEP_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("BOUNDSWEEP_DATA_DIR")
    assert str(resolve_data_dir()) == "data"


def _check_split(
    data: ClassificationData, n_train: int, n_val: int, n_test: int, width: int
) -> None:
    assert data.train_x.shape == (n_train, width) and data.val_x.shape == (n_val, width)
    assert data.test_x.shape == (n_test, width)
    assert data.train_x.dtype == torch.float32
    assert set(data.train_y.tolist()) == set(range(10))
    assert not _rows(data.train_x) & _rows(data.val_x)


def test_digits_bundled_with_scikit_learn() -> None:
    data = load_digits_data()
    _check_split(data, 1294, 144, 359, 64)
    # Standardised with the training split's statistics.
    torch.testing.assert_close(data.train_x.mean(0), torch.zeros(64), atol=1e-4, rtol=0)


def test_mnist1d_generated_offline_with_its_published_split() -> None:
    state = np.random.get_state()
    data = load_mnist1d()
    _check_split(data, 3600, 400, 1000, 40)
    # Generating it leaves numpy's global random stream where it was.
    assert np.array_equal(np.random.get_state()[1], state[1])


def test_mnist1d_is_kept_in_the_data_folder_and_read_back(tmp_path) -> None:
    generated = load_mnist1d()
    first = load_mnist1d(tmp_path)  # generated, then stored
    path = cache_path(tmp_path)
    assert path.parent == tmp_path / "mnist1d" and path.is_file()
    assert not list(path.parent.glob("*.tmp"))  # no half-written file left
    for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        assert torch.equal(getattr(first, name), getattr(generated, name)), name
    # The next load reads the file: what is in it is what comes back.
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    np.savez(path, **{**arrays, "x_test": arrays["x_test"] + 1.0})
    shifted = torch.as_tensor(arrays["x_test"] + 1.0, dtype=torch.float32)
    assert torch.equal(load_mnist1d(tmp_path).test_x, shifted)
    # A damaged file is generated again and replaced.
    path.write_bytes(b"not an npz")
    assert torch.equal(load_mnist1d(tmp_path).test_x, generated.test_x)
    with np.load(path) as stored:
        assert np.array_equal(stored["x_test"], arrays["x_test"])
    # A folder that cannot hold it: generated every time, no error.
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "mnist1d").write_text("a file where the folder would go")
    assert torch.equal(load_mnist1d(blocked).train_x, generated.train_x)


def test_random_crop_flip_matches_torchvision_per_image() -> None:
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    out = random_crop_flip(images, torch.Generator().manual_seed(5))
    # Replay the same random draws, one image at a time, through torchvision's functional ops.
    g = torch.Generator().manual_seed(5)
    dy = torch.randint(0, 9, (16,), generator=g)
    dx = torch.randint(0, 9, (16,), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    for i in range(16):
        expected = TF.crop(TF.pad(images[i], [4]), int(dy[i]), int(dx[i]), 32, 32)
        if flip[i]:
            expected = TF.horizontal_flip(expected)
        assert torch.equal(out[i], expected), i
    assert flip.any() and not flip.all()


def test_cifar_normalisation_per_channel() -> None:
    images = torch.full((2, 3, 32, 32), 255, dtype=torch.uint8)
    out = normalise_cifar(images)
    for c in range(3):
        torch.testing.assert_close(
            out[:, c], torch.full((2, 32, 32), (1 - CIFAR_MEAN[c]) / CIFAR_STD[c])
        )
