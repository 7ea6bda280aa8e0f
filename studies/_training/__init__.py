"""The training loop behind :mod:`studies.training`."""

from __future__ import annotations

from boundsweep.studies._training._hparams import resolve_hparams
from boundsweep.studies._training._loop import seed_everything, train
from boundsweep.studies._training._records import EpochRecord, TrainResult

__all__ = ["EpochRecord", "TrainResult", "resolve_hparams", "seed_everything", "train"]
