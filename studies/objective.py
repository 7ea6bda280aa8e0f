"""The objective of an arm study: train one (configuration, seed) and score it.

``make_objective(spec, arm)`` returns ``objective(trial) -> float`` for any Optuna loop. It
suggests the arm's varied hyperparameters and the seed (a queued trial's values are taken as
they are), trains with ``studies.training.train``, reports the validation metric every epoch
(pruning, dashboard curves) and stores the run's record in the trial's ``user_attrs``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import optuna
from optuna.storages import RDBStorage

from studies._campaign._spec import SEED_PARAM, ArmSpec, CampaignSpec, Grid
from studies._storage._queue import set_intermediate_values, set_trial_user_attrs
from studies.tasks import TASKS
from studies.training import EpochRecord, TrainResult, resolve_hparams, train

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
log = logging.getLogger("boundsweep.worker")
REPORT_INTERVAL = 5.0
"""Seconds between two writes of a running trial's epoch values (without a pruner)."""


def suggest(trial: optuna.Trial, arm: ArmSpec, seeds: list[int]) -> tuple[dict[str, float], int]:
    """The varied hyperparameters and the seed of ``trial``, drawn from the arm's space.

    Grids are categorical (so a queued grid point is one of its choices), ranges floats.
    """
    varied: dict[str, float] = {}
    for name, value in sorted(arm.varied().items()):
        if isinstance(value, Grid):
            varied[name] = float(trial.suggest_categorical(name, value.grid))
        else:
            varied[name] = trial.suggest_float(name, value.low, value.high, log=value.log)
    seed = int(trial.suggest_categorical(SEED_PARAM, seeds))
    return varied, seed


class StorageClock:
    """Seconds spent in storage calls and in training, for the storage-overhead figures."""

    def __init__(self) -> None:
        self.storage = 0.0
        self.training = 0.0

    def timed(self, bucket: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` and add its wall time to ``bucket`` (``"storage"`` or ``"training"``)."""
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            setattr(self, bucket, getattr(self, bucket) + time.perf_counter() - start)


def make_objective(
    spec: CampaignSpec,
    arm: str,
    *,
    device: str = "cpu",
    data_dir: str | None = None,
    on_epoch: Callable[[optuna.Trial, EpochRecord], None] | None = None,
    clock: StorageClock | None = None,
) -> Callable[[optuna.Trial], float]:
    """The objective of the arm ``arm`` of ``spec``.

    Args:
        spec: The campaign.
        arm: Name of one of its arms.
        device: Torch device to train on.
        data_dir: Dataset folder (default ``$BOUNDSWEEP_DATA_DIR`` or ``./data``).
        on_epoch: Also called after every epoch (the worker logs progress with it).
        clock: Accumulates time in storage calls vs. training, when given.

    Returns:
        ``objective(trial)``: trains and returns the final validation metric (the task's
        ``diverged_value`` for a diverged run, which is COMPLETE with ``status=diverged``).
        Raises ``optuna.TrialPruned`` when the pruner stops the trial.
    """
    arm_spec = spec.arm(arm)
    task = TASKS[spec.task]
    clock = clock or StorageClock()

    def objective(trial: optuna.Trial) -> float:
        varied, seed = clock.timed("storage", suggest, trial, arm_spec, spec.seeds)
        hparams = resolve_hparams(task, arm_spec.optimizer, {**arm_spec.fixed(), **varied})
        clock.timed("storage", _set_user_attrs, trial, hparams=hparams, seed=seed,
                    device=device, worker=WORKER_ID)  # fmt: skip
        curve: list[dict[str, Any]] = []
        # Without a pruner nothing needs an epoch's value at once: a thread writes them and
        # training never waits on the database (a fast task's epoch can be a few ms).
        rdb = getattr(trial.study._storage, "_backend", trial.study._storage)
        background = spec.pruner == "none" and isinstance(rdb, RDBStorage)
        reports = _BackgroundReports(rdb, trial._trial_id) if background else None

        def report(record: EpochRecord) -> None:
            curve.append(asdict(record))
            if reports is not None:
                reports.report(record.epoch, record.val_metric)
            else:
                clock.timed("storage", trial.report, record.val_metric, record.epoch)
            if on_epoch is not None:
                on_epoch(trial, record)
            if reports is None and clock.timed("storage", trial.should_prune):
                clock.timed("storage", _set_user_attrs, trial, status="pruned", curve=curve)
                raise optuna.TrialPruned(f"pruned at epoch {record.epoch}")

        start, storage_before = time.perf_counter(), clock.storage
        try:
            result: TrainResult = train(
                task.name, arm_spec.optimizer, hparams, seed, budget=spec.budget, device=device,
                on_epoch=report, data_dir=data_dir,
            )  # fmt: skip
        except BaseException:
            if reports is not None:
                clock.timed("storage", reports.close, flush=True)
            raise
        finally:
            # report() ran inside train(); its storage calls are not training time.
            elapsed = time.perf_counter() - start
            clock.training += elapsed - (clock.storage - storage_before)
        # The epochs not yet written go with the record: one transaction, before the tell.
        unwritten = clock.timed("storage", reports.close) if reports is not None else {}
        clock.timed(
            "storage",
            _set_user_attrs,
            trial,
            intermediate_values=unwritten,
            status=result.status,
            val_metric=result.val_metric,
            test_metric=result.test_metric,
            curve=[asdict(r) for r in result.epochs],
            wall_time=result.wall_time,
            device=result.device,
            steps=result.steps,
        )
        return result.val_metric

    return objective


class _BackgroundReports:
    """Writes a trial's intermediate values (epoch -> metric) from a thread, batched.

    At most one write every ``REPORT_INTERVAL`` seconds: the dashboard's curves stay live on a
    long trial, while a fast one (epochs of a few ms) writes none until its record.
    """

    def __init__(self, storage: RDBStorage, trial_id: int) -> None:
        self._storage = storage
        self._trial_id = trial_id
        self._pending: dict[int, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reports-{trial_id}", daemon=True)
        self._thread.start()

    def report(self, step: int, value: float) -> None:
        with self._lock:
            self._pending[step] = value
        self._wake.set()

    def _take(self) -> dict[int, float]:
        with self._lock:
            batch, self._pending = self._pending, {}
        return batch

    def _flush(self) -> None:
        batch = self._take()
        if not batch:
            return
        try:
            set_intermediate_values(self._storage, self._trial_id, batch)
        except Exception:  # a lost curve point must not fail the trial; the curve attr has it
            log.warning("could not store epochs %s of trial id %s", sorted(batch), self._trial_id)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            # Gather the epochs of the next few seconds into one write (or stop on close).
            if self._closed.wait(REPORT_INTERVAL):
                return
            self._wake.clear()
            self._flush()

    def close(self, *, flush: bool = False) -> dict[int, float]:
        """Stop; the values not written yet (written now instead with ``flush``)."""
        self._closed.set()
        self._wake.set()
        self._thread.join()
        if flush:
            self._flush()
            return {}
        return self._take()


def _set_user_attrs(
    trial: optuna.Trial, intermediate_values: dict[int, float] | None = None, **attrs: Any
) -> None:
    """Record ``attrs`` (and epochs' values) on the trial: one transaction on an RDB storage."""
    storage = getattr(trial.study._storage, "_backend", trial.study._storage)
    if isinstance(storage, RDBStorage):
        set_trial_user_attrs(
            storage, trial._trial_id, attrs, intermediate_values=intermediate_values
        )
        return
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    for step, value in (intermediate_values or {}).items():
        trial.report(value, step)


def sampler_for(arm: ArmSpec, study_name: str) -> optuna.samplers.BaseSampler:
    """The sampler of an arm study.

    A grid arm's trials are all queued with their values, so any sampler only confirms them
    (Optuna's ``GridSampler`` would re-run points when several workers race). QMC needs the
    same seed in every worker to walk one sequence; the study name gives it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if arm.sampler == "tpe":
            # Running trials count as bad guesses so parallel workers spread out.
            return optuna.samplers.TPESampler(constant_liar=True)
        if arm.sampler == "qmc":
            seed = zlib.crc32(study_name.encode())
            return optuna.samplers.QMCSampler(seed=seed, scramble=True)
        return optuna.samplers.RandomSampler()


def pruner_for(spec: CampaignSpec) -> optuna.pruners.BasePruner:
    """The campaign's pruner; epochs are its steps."""
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=len(spec.seeds), n_warmup_steps=1)
    if spec.pruner == "hyperband":
        max_epochs = spec.budget.epochs or TASKS[spec.task].default_epochs
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs)
    return optuna.pruners.NopPruner()
