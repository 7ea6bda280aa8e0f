"""The training loop behind :mod:`studies.training`."""

from __future__ import annotations

from studies._training._hparams import resolve_hparams
from studies._training._loop import seed_everything, train
from studies._training._records import EpochRecord, TrainResult

__all__ = ["EpochRecord", "TrainResult", "resolve_hparams", "seed_everything", "train"]
