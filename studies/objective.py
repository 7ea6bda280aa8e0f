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
from dataclasses import asdict, dataclass
from typing import Any

import optuna
from boundsweep.optimizers import OPTIMIZERS
from boundsweep.studies._campaign._spec import SEED_PARAM, ArmSpec, CampaignSpec
from boundsweep.studies._storage._open import storage_error_reason
from boundsweep.studies._storage._optuna import (
    is_rdb,
    rdb_of,
    set_trial_user_attrs,
    storage_of,
    trial_id_of,
)
from boundsweep.studies.tasks import TASKS
from boundsweep.studies.training import EpochRecord, TrainResult, resolve_hparams, train
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.storages import RDBStorage

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
log = logging.getLogger("boundsweep.worker")
REPORT_INTERVAL = 5.0
"""Seconds between two writes of a running trial's epoch values (without a pruner)."""


def suggest(trial: optuna.Trial, arm: ArmSpec, seeds: list[int]) -> tuple[dict[str, float], int]:
    """The varied hyperparameters and the seed of ``trial``, drawn from the arm's space.

    The distributions are ``arm.distributions(seeds)``: a queued trial already holds its values
    for them (no storage write then); anything else is left to the study's sampler.
    """
    values: dict[str, Any] = {}
    for name, distribution in arm.distributions(seeds).items():
        if isinstance(distribution, CategoricalDistribution):
            values[name] = trial.suggest_categorical(name, distribution.choices)
        else:
            assert isinstance(distribution, FloatDistribution)
            values[name] = trial.suggest_float(
                name, distribution.low, distribution.high, log=distribution.log
            )
    seed = int(values.pop(SEED_PARAM))
    return {name: float(value) for name, value in values.items()}, seed


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


@dataclass
class TrialRecord:
    """What a finished run stores on its trial: user attrs and the epochs not yet written."""

    user_attrs: dict[str, Any]
    intermediate_values: dict[int, float]


class Objective:
    """The objective of the arm ``arm`` of ``spec``: ``objective(trial) -> float``, for any
    Optuna loop.

    It suggests the arm's params and the seed, trains, reports every epoch and stores the
    run's record in the trial's user attrs. It returns the final validation metric (the
    task's ``diverged_value`` for a diverged run, which is COMPLETE with ``status=diverged``)
    and raises ``optuna.TrialPruned`` when the pruner stops the trial.

    Args:
        spec: The campaign.
        arm: Name of one of its arms.
        device: Torch device to train on.
        data_dir: Dataset folder (default ``$BOUNDSWEEP_DATA_DIR`` or ``./data``).
        on_epoch: Also called after every epoch (the worker logs progress with it).
        clock: Accumulates time in storage calls vs. training, when given.
        defer_record: Leave the finished run's record in ``record`` for the caller to write
            together with the trial's result, in one transaction (the worker does, see
            ``studies.storage.finish_trial``), instead of writing it.
    """

    def __init__(
        self,
        spec: CampaignSpec,
        arm: str,
        *,
        device: str = "cpu",
        data_dir: str | None = None,
        on_epoch: Callable[[optuna.Trial, EpochRecord], None] | None = None,
        clock: StorageClock | None = None,
        defer_record: bool = False,
    ) -> None:
        self.spec = spec
        self.arm = spec.arm(arm)
        self.task = TASKS[spec.task]
        self.device = device
        self.data_dir = data_dir
        self.on_epoch = on_epoch
        self.clock = clock or StorageClock()
        self.defer_record = defer_record
        self.record: TrialRecord | None = None
        """The last run's record, when ``defer_record`` kept it from being written."""

    def __call__(self, trial: optuna.Trial) -> float:
        clock, spec, task = self.clock, self.spec, self.task
        self.record = None
        varied, seed = clock.timed("storage", suggest, trial, self.arm, spec.seeds)
        hparams = resolve_hparams(task, self.arm.optimizer, {**self.arm.fixed(), **varied})
        started = {
            "hparams": hparams,
            "seed": seed,
            "device": self.device,
            "worker": WORKER_ID,
            **plugin_origins(spec.task, self.arm.optimizer),
        }
        curve: list[dict[str, Any]] = []
        # Without a pruner nothing needs an epoch's value at once: a thread writes them (and
        # the trial's first attrs) and training never waits on the database (a fast task's
        # epoch can be a few ms).
        background = spec.pruner == "none" and is_rdb(storage_of(trial.study))
        if background:
            reports = _BackgroundReports(
                rdb_of(storage_of(trial.study)), trial_id_of(trial), first_attrs=started
            )
        else:
            reports = None
            clock.timed("storage", _set_user_attrs, trial, **started)

        def report(record: EpochRecord) -> None:
            curve.append(asdict(record))
            if reports is not None:
                reports.report(record.epoch, record.val_metric)
            else:
                clock.timed("storage", trial.report, record.val_metric, record.epoch)
            if self.on_epoch is not None:
                self.on_epoch(trial, record)
            if reports is None and clock.timed("storage", trial.should_prune):
                clock.timed("storage", _set_user_attrs, trial, status="pruned", curve=curve)
                raise optuna.TrialPruned(f"pruned at epoch {record.epoch}")

        start, storage_before = time.perf_counter(), clock.storage
        try:
            result: TrainResult = train(
                task.name, self.arm.optimizer, hparams, seed, budget=spec.budget,
                device=self.device, on_epoch=report, data_dir=self.data_dir,
            )  # fmt: skip
        except BaseException:
            if reports is not None:
                clock.timed("storage", reports.close, flush=True)
            raise
        finally:
            # report() ran inside train(); its storage calls are not training time.
            elapsed = time.perf_counter() - start
            clock.training += elapsed - (clock.storage - storage_before)
        # The epochs not yet written go with the record: one transaction, before the result.
        unwritten = clock.timed("storage", reports.close) if reports is not None else {}
        record = TrialRecord(
            # The first attrs again: their write from the thread is not waited for.
            user_attrs=run_record(started, result),
            intermediate_values=unwritten,
        )
        if self.defer_record:
            self.record = record
        else:
            clock.timed(
                "storage", _set_user_attrs, trial, record.intermediate_values, **record.user_attrs
            )
        return result.val_metric


def run_record(started: dict[str, Any], result: TrainResult) -> dict[str, Any]:
    """The user attrs a finished run stores on its trial: the attrs it started with (hparams,
    seed, device, worker), then its outcome, curve and ``arithmetic``. One-by-one and batched
    trials alike."""
    return {
        **started,
        "status": result.status,
        "val_metric": result.val_metric,
        "test_metric": result.test_metric,
        "curve": [asdict(r) for r in result.epochs],
        "wall_time": result.wall_time,
        "device": result.device,
        "arithmetic": arithmetic(result.device),
        "steps": result.steps,
    }


def plugin_origins(task: str, optimizer: str) -> dict[str, str]:
    """The trial attrs naming where its task and optimizer come from (``"boundsweep 0.1.0"``,
    ``"boundsweep-examples 0.1.0"``): a result stays traceable to the code that produced it."""
    return {
        "task_origin": str(TASKS.origin(task)),
        "optimizer_origin": str(OPTIMIZERS.origin(optimizer)),
    }


def arithmetic(device: str) -> str:
    """What a run's rounding depends on besides its seed and settings: torch's CPU kernels
    (``"cpu AVX512"``, ``"cpu AVX2"``, ``"cpu DEFAULT"``...) or the GPU's name. Runs of one
    trial on machines with the same value give the same bits; across values, the same to
    rounding (the report says when a campaign mixes them)."""
    import torch

    kind = device.split(":")[0]
    if kind == "cpu":
        return f"cpu {torch.backends.cpu.get_cpu_capability()}"
    if kind == "cuda" and torch.cuda.is_available():
        return f"cuda {torch.cuda.get_device_name(torch.device(device))}"
    return kind


make_objective = Objective
"""``make_objective(spec, arm, **options)``: the name the worker and tests build objectives by."""


class _BackgroundReports:
    """Writes a trial's intermediate values (epoch -> metric), with its first user attrs in
    the first write, from a thread, batched.

    At most one write every ``REPORT_INTERVAL`` seconds: the dashboard's curves stay live on a
    long trial, while a fast one (epochs of a few ms) writes none until its record: a single
    trial then costs two transactions, its claim and its finish.
    """

    def __init__(
        self, storage: RDBStorage, trial_id: int, first_attrs: dict[str, Any] | None = None
    ) -> None:
        self.storage = storage
        self.trial_id = trial_id
        self._first_attrs = first_attrs
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
            # The first write also carries the first attrs: a trial shorter than one
            # interval writes nothing before its record (which repeats them).
            set_trial_user_attrs(
                self.storage, self.trial_id, self._first_attrs or {}, intermediate_values=batch
            )
            self._first_attrs = None
        except Exception as exc:  # a database hiccup must not fail the trial
            # Kept for the next write, or for the record that goes with the result.
            with self._lock:
                self._pending = {**batch, **self._pending}
            log.warning(
                "could not store epochs %d-%d of trial id %s yet (%s)",
                min(batch), max(batch), self.trial_id, storage_error_reason(exc),
            )  # fmt: skip

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
    storage = storage_of(trial.study)
    if is_rdb(storage):
        set_trial_user_attrs(
            rdb_of(storage), trial_id_of(trial), attrs, intermediate_values=intermediate_values
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
        max_epochs = TASKS[spec.task].epochs(spec.budget)
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs)
    return optuna.pruners.NopPruner()
