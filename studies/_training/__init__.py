"""The training loop behind :mod:`studies.training`."""

from __future__ import annotations

from boundsweep.studies._training._batched import batchable_tasks, train_batched
from boundsweep.studies._training._hparams import resolve_hparams
from boundsweep.studies._training._loop import seed_everything, train
from boundsweep.studies._training._own_loop import TrialContext
from boundsweep.studies._training._records import EpochRecord, TrainResult

__all__ = [
    "EpochRecord",
    "TrainResult",
    "TrialContext",
    "batchable_tasks",
    "resolve_hparams",
    "seed_everything",
    "train",
    "train_batched",
]
