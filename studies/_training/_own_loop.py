"""A task's own training loop: the function a ``loop`` task names, given a :class:`TrialContext`.

boundsweep hands the loop what a trial fixes (its seed and seeded generators, its device, its
budget, the data folder, the optimizer with the trial's hyperparameters) and takes back what
the study needs: a value per epoch through ``report`` (curves, pruning, divergence) and the
final metric as the return value.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from boundsweep.optimizers import build_optimizer, current_bounds
from boundsweep.studies._training._records import EpochRecord, TrainResult
from boundsweep.studies.tasks import Budget, Task, loop_function, resolve_data_dir

__all__ = ["TrialContext", "train_own_loop"]


class _Diverged(Exception):
    """Raised out of ``report`` to end a loop whose metric is no longer finite."""


@dataclass
class TrialContext:
    """What a ``loop`` task's function gets: one trial of one configuration and one seed.

    Attributes:
        seed: The trial's seed (Python, numpy and torch's global generators are seeded with it
            before the loop starts).
        generator: A torch generator on ``device`` seeded with ``seed``, for data order.
        rng: A numpy generator seeded with ``seed``, for environments and sampling.
        device: The torch device to train on.
        epochs: How many epochs (``report`` calls) the budget gives.
        budget: The campaign's budget (``epochs``, ``data_fraction``, ``max_steps``).
        data_dir: The dataset folder (``$BOUNDSWEEP_DATA_DIR`` or ``./data``).
        optimizer: The arm's optimizer name.
        hparams: The trial's hyperparameters, defaults filled in.
    """

    seed: int
    generator: torch.Generator
    rng: np.random.Generator
    device: torch.device
    epochs: int
    budget: Budget
    data_dir: Path
    optimizer: str
    hparams: dict[str, float]
    _on_report: Callable[[int, float, dict[str, float]], None] = field(repr=False, default=None)  # type: ignore[assignment]
    _optimizers: list[torch.optim.Optimizer] = field(repr=False, default_factory=list)

    def make_optimizer(self, params: Iterable[Any]) -> torch.optim.Optimizer:
        """The trial's optimizer over ``params`` (parameters, or param groups: a group's own
        ``lr`` and other settings are kept, the trial's apply to the rest)."""
        optimizer = build_optimizer(self.optimizer, params, self.hparams)
        self._optimizers.append(optimizer)
        return optimizer

    def report(self, epoch: int, value: float, **metrics: float) -> None:
        """Record ``value`` (the task's metric) after ``epoch`` (1-based): it feeds the curve
        and the pruner, which may end the trial here (``optuna.TrialPruned`` propagates).
        ``metrics`` are kept beside it (``test`` is the test score, ``train_loss`` the loss).
        A value that is not finite ends the run as diverged."""
        self._on_report(int(epoch), float(value), {k: float(v) for k, v in metrics.items()})


def train_own_loop(
    task: Task,
    optimizer: str,
    hparams: Mapping[str, float],
    seed: int,
    budget: Budget,
    device: torch.device,
    on_epoch: Callable[[EpochRecord], None] | None,
    data_dir: str | os.PathLike[str] | None,
    seed_everything: Callable[[int, torch.device], torch.Generator],
) -> TrainResult:
    """Run ``task``'s own loop for one trial (``studies.training.train`` calls it)."""
    started = time.perf_counter()
    run = loop_function(task)
    generator = seed_everything(seed, device)
    records: list[EpochRecord] = []
    last = {"at": time.perf_counter()}

    def on_report(epoch: int, value: float, metrics: dict[str, float]) -> None:
        if not math.isfinite(value):
            raise _Diverged
        optimizer_ = context._optimizers[0] if context._optimizers else None
        bounds = current_bounds(optimizer_) if optimizer_ is not None else None
        now = time.perf_counter()
        extra = {k: v for k, v in metrics.items() if math.isfinite(v)}
        record = EpochRecord(
            epoch=epoch,
            train_loss=extra.pop("train_loss", 0.0),
            val_metric=value,
            test_metric=extra.pop("test", value),
            lr=float(optimizer_.param_groups[0]["lr"]) if optimizer_ is not None else 0.0,
            lower_bound=None if bounds is None else float(bounds[0]),
            upper_bound=None if bounds is None else float(bounds[1]),
            seconds=now - last["at"],
            step=epoch,
            metrics=extra,
        )
        last["at"] = now
        records.append(record)
        if on_epoch is not None:
            on_epoch(record)

    context = TrialContext(
        seed=seed,
        generator=generator,
        rng=np.random.default_rng(seed),
        device=device,
        epochs=task.epochs(budget),
        budget=budget,
        data_dir=resolve_data_dir(data_dir).resolve(),
        optimizer=optimizer,
        hparams=dict(hparams),
        _on_report=on_report,
    )
    status = "completed"
    try:
        final = run(context)
    except _Diverged:
        final = None
        status = "diverged"
    if status == "completed":
        if final is None:
            final = records[-1].val_metric if records else task.diverged_value
        final = float(final)
        if not math.isfinite(final):
            status = "diverged"
    if status == "diverged":
        final = task.diverged_value
    assert final is not None
    test = records[-1].test_metric if records and status == "completed" else final
    return TrainResult(
        status=status,  # type: ignore[arg-type]
        epochs=records,
        val_metric=final,
        test_metric=test,
        wall_time=time.perf_counter() - started,
        device=str(device),
        steps=len(records),
        hparams=dict(hparams),
    )
