"""``train``: one configuration, one seed, one task — setup, data, model, then the epoch loop."""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from boundsweep.optimizers import build_optimizer, current_bounds
from boundsweep.studies._training._classification import accuracy, train_classifier_epoch
from boundsweep.studies._training._hparams import resolve_hparams
from boundsweep.studies._training._language import batchify, perplexity, train_language_epoch
from boundsweep.studies._training._own_loop import train_own_loop
from boundsweep.studies._training._quadratic import (
    batch_mean_loss,
    fixed_order_batches,
    train_quadratic_epoch,
)
from boundsweep.studies._training._records import EpochRecord, TrainResult
from boundsweep.studies._training._steps import EpochOutcome
from boundsweep.studies.tasks import (
    TASKS,
    Budget,
    ClassificationData,
    LanguageData,
    QuadraticData,
    Task,
    TrainableTask,
    resolve_data_dir,
    trainable,
)


def seed_everything(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """Seed Python, numpy and torch's global generators; return the trial's own generator.

    The returned generator (on ``device``) drives the data order and the augmentation; the
    global ones initialise the model and drive dropout. Same seed, same run (on CPU, bit for
    bit).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)


@lru_cache(maxsize=2)
def _device_data(
    task: TrainableTask, data_dir: Path, device: str
) -> ClassificationData | LanguageData | QuadraticData:
    # A worker trains many trials of one task: read and move the data once per process.
    return task.load_data(data_dir).to(device)


def train(
    task: str | Task,
    optimizer: str,
    hparams: Mapping[str, float],
    seed: int,
    budget: Budget | None = None,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[EpochRecord], None] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    keep_parameters: bool = False,
) -> TrainResult:
    """Train ``task``'s model with ``optimizer`` under ``budget`` and record every epoch.

    Args:
        task: A ``TASKS`` key (or a :class:`Task`, or a :class:`TrainableTask` with its own
            data loader and model). A ``loop`` task runs its own loop
            (``studies.training.TrialContext``).
        optimizer: An ``optimizers.OPTIMIZERS`` key.
        hparams: Registry hyperparameter names to values; the rest take the registry default,
            except ``weight_decay``, which takes the task's when not given (see
            ``resolve_hparams``).
        seed: Seeds model initialisation, data order, augmentation and dropout; for
            ``quadratic_deep`` it also picks the Hessian (``Task.seeds``).
        budget: Epochs / data fraction / step cap; ``None`` is the paper's budget.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        on_epoch: Called with each :class:`EpochRecord`; what it raises (e.g.
            ``optuna.TrialPruned``) propagates and ends training.
        data_dir: Dataset folder; default ``$BOUNDSWEEP_DATA_DIR`` or ``./data``.
        keep_parameters: Return the model's final parameters in the result (tests).

    Returns:
        The per-epoch curve and final metrics. A NaN/inf loss or metric ends the run early
        with ``status="diverged"`` and both final metrics set to ``task.diverged_value`` (or,
        where that is ``None``, to the metrics before training).

    Raises:
        ValueError: Unknown task, optimizer or hyperparameter, or a seed the task does not
            take.
        MissingDataError: The task's data files are missing and cannot be downloaded.
    """
    started = time.perf_counter()
    budget = budget or Budget()
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    meta = TASKS[task] if isinstance(task, str) and task in TASKS else task
    if isinstance(meta, Task) and meta.kind == "loop":
        resolved = resolve_hparams(meta, optimizer, hparams)
        meta.check_seed(seed)
        return train_own_loop(
            meta, optimizer, resolved, seed, budget, device, on_epoch, data_dir, seed_everything
        )
    spec = trainable(task)
    resolved = resolve_hparams(spec, optimizer, hparams)
    spec.check_seed(seed)

    data = _device_data(spec, resolve_data_dir(data_dir).resolve(), str(device))
    data = data.subset(budget.data_fraction)
    # Seeded after loading, so a first (uncached) load cannot shift the model's initialisation.
    generator = seed_everything(seed, device)
    if isinstance(data, QuadraticData):
        data = data.for_seed(seed)
    channels_last = spec.channels_last and device.type == "cuda"
    model = spec.build_model(data).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(optimizer, model.parameters(), resolved)
    epochs = spec.epochs(budget)
    schedule = torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=spec.scaled_milestones(epochs), gamma=spec.lr_decay
    )
    columns = batchify(data.train, spec.batch_size) if isinstance(data, LanguageData) else None
    batches = (
        fixed_order_batches(data.train_x, data.order, spec.batch_size)
        if isinstance(data, QuadraticData)
        else None
    )

    def run_epoch(step_limit: int | None) -> EpochOutcome:
        if columns is not None:
            return train_language_epoch(spec, model, opt, columns, step_limit)
        if batches is not None:
            return train_quadratic_epoch(model, opt, batches, step_limit)
        return train_classifier_epoch(spec, model, opt, data, generator, step_limit, channels_last)

    def evaluate() -> tuple[float, float]:
        if isinstance(data, LanguageData):
            return perplexity(spec, model, data.valid), perplexity(spec, model, data.test)
        if isinstance(data, QuadraticData):
            return (
                batch_mean_loss(model, data.valid_x, spec.batch_size),
                batch_mean_loss(model, data.test_x, spec.batch_size),
            )
        return (
            accuracy(spec, model, data.val_x, data.val_y, channels_last),
            accuracy(spec, model, data.test_x, data.test_y, channels_last),
        )

    diverged_scores = (
        evaluate() if spec.diverged_value is None else (spec.diverged_value, spec.diverged_value)
    )
    records: list[EpochRecord] = []
    steps = 0
    status = "completed"
    for epoch in range(1, epochs + 1):
        if budget.max_steps is not None and steps >= budget.max_steps:
            break
        epoch_started = time.perf_counter()
        lr = float(opt.param_groups[0]["lr"])
        limit = None if budget.max_steps is None else budget.max_steps - steps
        outcome = run_epoch(limit)
        steps += outcome.steps
        if outcome.diverged:
            status = "diverged"
            break
        val_metric, test_metric = evaluate()
        if not (math.isfinite(val_metric) and math.isfinite(test_metric)):
            status = "diverged"
            break
        schedule.step()
        bounds = current_bounds(opt)
        record = EpochRecord(
            epoch=epoch,
            train_loss=outcome.train_loss,
            val_metric=val_metric,
            test_metric=test_metric,
            lr=lr,
            lower_bound=None if bounds is None else float(bounds[0]),
            upper_bound=None if bounds is None else float(bounds[1]),
            seconds=time.perf_counter() - epoch_started,
            step=steps,
        )
        records.append(record)
        if on_epoch is not None:
            on_epoch(record)

    if status == "diverged" or not records:
        final_val, final_test = diverged_scores
    else:
        final_val, final_test = records[-1].val_metric, records[-1].test_metric
    return TrainResult(
        status=status,
        epochs=records,
        val_metric=final_val,
        test_metric=final_test,
        wall_time=time.perf_counter() - started,
        device=str(device),
        steps=steps,
        hparams=resolved,
        parameters=(
            {n: p.detach().clone() for n, p in model.named_parameters()}
            if keep_parameters
            else None
        ),
    )
