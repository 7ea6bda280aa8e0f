"""Where datasets live, and the error raised when a dataset's files are not there."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

DATA_DIR_ENV = "BOUNDSWEEP_DATA_DIR"
DOWNLOAD_ENV = "BOUNDSWEEP_DOWNLOAD"


class MissingDataError(FileNotFoundError):
    """A dataset's files are missing and could not be downloaded.

    The message names every missing file and the folder it belongs in, so a user on a machine
    without a network can copy them there by hand.
    """

    def __init__(self, dataset: str, folder: Path, missing: Iterable[str], source: str) -> None:
        self.dataset = dataset
        self.folder = folder
        self.missing = list(missing)
        names = ", ".join(self.missing)
        super().__init__(
            f"{dataset} data not found: missing {names} in {folder}. "
            f"Put the files there (from {source}), or set {DATA_DIR_ENV} to the folder that "
            f"holds them; downloading was not possible or is disabled ({DOWNLOAD_ENV}=0)."
        )


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: ``data_dir`` if given, else ``$BOUNDSWEEP_DATA_DIR``, else ``./data``."""
    if data_dir is not None:
        return Path(data_dir)
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def download_allowed() -> bool:
    """Whether loaders may try to download missing files (``BOUNDSWEEP_DOWNLOAD=0`` forbids it)."""
    return os.environ.get(DOWNLOAD_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


def missing_files(folder: Path, names: Iterable[str]) -> list[str]:
    """The ``names`` that are not in ``folder``, in order."""
    return [name for name in names if not (folder / name).exists()]


def require_files(
    dataset: str,
    folder: Path,
    names: tuple[str, ...],
    source: str,
    download: Callable[[], object],
) -> None:
    """Make sure ``folder`` holds every file in ``names``, calling ``download`` if some are missing.

    ``download`` runs only when downloading is allowed (see :func:`download_allowed`); a
    download that fails (no network, a checksum mismatch) is not an error in itself.

    Raises:
        MissingDataError: Files are still missing afterwards; it names them, ``folder`` and
            ``source``.
    """
    if missing_files(folder, names) and download_allowed():
        # No network: the error below names what to put where.
        with contextlib.suppress(RuntimeError, OSError):
            download()
    missing = missing_files(folder, names)
    if missing:
        raise MissingDataError(dataset, folder, missing, source)
