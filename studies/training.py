"""Train one configuration of one task: ``train(task, optimizer, hparams, seed, budget, ...)``.

The dataset lives as tensors on the training device; batches are drawn by a permutation index
and augmented on the device; bf16 autocast and channels-last on CUDA. Deterministic on CPU.
"""

from __future__ import annotations

from boundsweep.studies._training import (
    EpochRecord,
    TrainResult,
    TrialContext,
    batchable_tasks,
    resolve_hparams,
    seed_everything,
    train,
    train_batched,
)

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
