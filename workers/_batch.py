"""Batched trials: claim up to K queued trials of a campaign at once and train them as one model.

On the small tasks a trial is mostly per-step overhead, so K of them trained together
(``studies.training.train_batched``) cost little more than one. The worker claims them arm by
arm, each arm's in one statement (``studies.storage.claim_trials``): the arm it picked first,
then, while there is room, the campaign's other batchable arms (every arm of a campaign shares
its task and budget, so their models stack, each stepped by its own optimizer). It heartbeats
all of them together and finishes each as its own Optuna trial with the record the one-by-one
objective stores, so the campaign's trials, curves and report read the same whichever way
they were run. Left automatic, a CPU worker takes no more than its share of the campaign's
open trials (``fair_share``), so that workers started together also finish together.

Only arms whose sampler can answer K suggestions without seeing any of their results batch:
grid (every value queued), random and QMC. TPE learns from each result, and a pruner decides
epoch by epoch per trial; those arms, and tasks that are not ``batchable``, run one by one.
A stop (SIGTERM) gives all K back; a crash fails all K and queues each again while it has
retries left; a ``kill -9`` leaves K stale trials that other workers fail and queue again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import optuna
from boundsweep.optimizers import batchable_optimizer
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.objective import (
    WORKER_ID,
    TrialRecord,
    plugin_origins,
    run_record,
    suggest,
)
from boundsweep.studies.storage import ArmProgress, CampaignStorage, trial_id_of
from boundsweep.studies.tasks import TASKS
from boundsweep.studies.training import EpochRecord, TrainResult, resolve_hparams, train_batched
from boundsweep.workers._heartbeat import Heartbeat
from boundsweep.workers._stopping import WorkerStopping
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from boundsweep.workers._worker import Worker, _Arm

log = logging.getLogger("boundsweep.worker")

AUTO_BATCH_TRIALS = {"cpu": 81, "cuda": 81}
"""The most trials claimed at once with ``--batch-trials`` left automatic, per device type
(``benchmarks/bench_batched.py``: on one CPU core a trial of ``digits_mlp`` keeps getting
cheaper up to 81 stacked models, ``mnist1d_mlp``'s is flat from about 27)."""
BATCHING_SAMPLERS = ("grid", "random", "qmc")

Batch = list[tuple[ArmProgress, list[FrozenTrial]]]
"""Trials claimed to train together: (arm, its claimed trials) per arm of one campaign."""


@contextlib.contextmanager
def trial_threads(task: str, device: str) -> Iterator[None]:
    """One torch thread while a trial of a batchable task trains on the CPU, alone or batched.

    With more, one model's small matrix products and reductions split across threads, and
    their partial sums round differently from the batched products' (which split by model):
    a default worker (torch's threads: the machine's cores) recorded the same trial up to
    4.25 accuracy points apart batched and one by one (``mnist1d_mlp``, 2 threads). On one
    thread each batched trial is its one-by-one run bit for bit, whatever ``--batch-trials``
    says. The cost is one-by-one MLP trials that no longer use a second core (docs/workers.md
    has the figures); batched trials, the default for these tasks, lose little. Other tasks
    and other devices keep the worker's threads. The worker's share of the machine
    (``machine_workers``) still counts its own threads.
    """
    import torch

    if device.split(":")[0] != "cpu" or not TASKS[task].batchable:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def machine_workers(device: str) -> int:
    """How many workers like this one the machine is taken to run: on the CPU, its cores over
    this worker's torch threads (the demo's two one-thread workers on two cores: 2); one per
    GPU otherwise."""
    if device.split(":")[0] != "cpu":
        return 1
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, torch.get_num_threads()))


def fair_share(rows: list[ArmProgress], campaign: str, device: str) -> int:
    """The most trials of ``campaign`` an automatic batch claims: its open trials (waiting,
    and running under anyone's claim) over ``machine_workers``, rounded up.

    Two workers started together on two cores then take 41 and 40 of an 81-trial campaign
    and finish together, where fixed batches of 27 left one idle for a third of the
    campaign. A worker alone on such a machine still claims half of what is open each time
    (41, 20, 10, ...): a few more, smaller batches.
    """
    open_trials = sum(r.waiting + r.running for r in rows if r.campaign == campaign)
    return max(1, math.ceil(open_trials / machine_workers(device)))


def batch_limit(batch_trials: int | None, device: str, spec: CampaignSpec, arm: str) -> int:
    """How many trials of ``arm`` a worker claims at once (1: one by one).

    Args:
        batch_trials: The worker's ``--batch-trials``; ``None`` is automatic.
        device: The worker's device.
        spec: The campaign.
        arm: The arm's name.
    """
    arm_spec = spec.arm(arm)
    if (
        batch_trials == 1
        or not TASKS[spec.task].batchable
        or spec.pruner != "none"
        or arm_spec.sampler not in BATCHING_SAMPLERS
        or not batchable_optimizer(arm_spec.optimizer)  # a plugin's: one by one, never FAIL
    ):
        return 1
    if batch_trials is not None:
        return batch_trials
    return AUTO_BATCH_TRIALS.get(device.split(":")[0], 1)


def run_batch(worker: Worker, batch: Batch) -> None:
    """Train the claimed trials (of one or more arms of a campaign) together and record each
    as its own trial."""
    clock = worker.stats.clock
    groups = [(row, worker._arms[row.study_id], claimed) for row, claimed in batch]
    spec = groups[0][1].spec  # the campaign: its task and budget are every arm's
    task = TASKS[spec.task]
    ids = [trial_id_of(frozen) for _, _, claimed in groups for frozen in claimed]
    label = " + ".join(
        f"{row.study_name} #{claimed[0].number}..#{claimed[-1].number}"
        for row, _, claimed in groups
    )
    log.info("%s claimed, %d trials batched (%s)", label, len(ids), worker.config.device)
    with Heartbeat(
        worker.storage, ids, worker.config.heartbeat_interval, worker.grace_period,
        worker.config.max_retries,
    ):  # fmt: skip
        worker._training = True
        try:
            if worker.stop.is_set():  # the signal came between the claim and here
                raise WorkerStopping()
            entries, runs, optimizers, started = [], [], [], []
            for row, arm, claimed in groups:
                arm_spec = spec.arm(row.arm)
                for trial in clock.timed("storage", _trials, worker.storage, arm, claimed):
                    # Each trial's own suggestion: a grid trial's queued values, or the random
                    # or QMC sampler's next point (neither waits on any result).
                    varied, seed = clock.timed("storage", suggest, trial, arm_spec, spec.seeds)
                    hparams = resolve_hparams(
                        task, arm_spec.optimizer, {**arm_spec.fixed(), **varied}
                    )
                    entries.append((row, arm, trial))
                    runs.append((hparams, seed))
                    optimizers.append(arm_spec.optimizer)
                    started.append(
                        {"hparams": hparams, "seed": seed, "device": worker.config.device,
                         "worker": WORKER_ID, "batch_trials": len(ids),
                         **plugin_origins(spec.task, arm_spec.optimizer)}
                    )  # fmt: skip
            results = _train(worker, spec, optimizers, runs, label)
        except WorkerStopping:
            worker._training = False
            _give_back(worker, groups, count_as_retry=False)
            worker.stats.interrupted += len(ids)
            log.warning("%s interrupted, %d trials queued again", label, len(ids))
            raise
        except Exception as exc:
            worker._training = False
            given = [(arm, trial_id_of(frozen)) for _, arm, claimed in groups for frozen in claimed]
            if worker.setup_failed(groups[0][0].campaign, given, exc):
                return
            log.exception("%s crashed", label)
            _give_back(worker, groups, count_as_retry=True)
            worker.stats.failed += len(ids)
            return
        finally:
            worker._training = False
        # Still beating while the K results are stored (a database outage is waited out).
        for (row, arm, trial), first, result in zip(entries, started, results, strict=True):
            record = TrialRecord(
                user_attrs=run_record(first, result),
                intermediate_values={r.epoch: r.val_metric for r in result.epochs},
            )
            worker._tell(arm, trial, TrialState.COMPLETE, result.val_metric, row, record)


def _give_back(
    worker: Worker,
    groups: list[tuple[ArmProgress, _Arm, list[FrozenTrial]]],
    *,
    count_as_retry: bool,
) -> None:
    for _, arm, claimed in groups:
        for frozen in claimed:
            worker._give_back(arm, trial_id_of(frozen), count_as_retry=count_as_retry)


def _trials(
    worker_storage: CampaignStorage, arm: _Arm, claimed: list[FrozenTrial]
) -> list[optuna.Trial]:
    """An ``optuna.Trial`` for each claimed trial, without reading them again where we can."""
    if arm.direct:
        trials = []
        for frozen in claimed:
            with worker_storage.primed(frozen):
                trials.append(optuna.Trial(arm.study, trial_id_of(frozen)))
        return trials
    # Optuna's trial cache must learn of the claimed trials (QMC arms): one sync for all.
    arm.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [optuna.Trial(arm.study, trial_id_of(frozen)) for frozen in claimed]


def _train(
    worker: Worker,
    spec: CampaignSpec,
    optimizers: list[str],
    runs: list[tuple[dict[str, float], int]],
    label: str,
) -> list[TrainResult]:
    """``train_batched`` with the worker's stop check and one progress line per epoch."""
    task = TASKS[spec.task]
    epochs = task.epochs(spec.budget)
    seen: dict[int, list[float]] = {}
    started = time.monotonic()

    def summary(epoch: int) -> None:
        values = seen[epoch]
        log.info(
            "%s epoch %d/%s: %d training, best val_%s=%.4g, %.0f s",
            label, epoch, epochs, len(values), task.metric,
            max(values) if task.direction == "maximize" else min(values),
            time.monotonic() - started,
        )  # fmt: skip

    def progress(k: int, record: EpochRecord) -> None:
        if worker.stop.is_set() and worker._training:  # a signal deferred by _on_signal
            worker._training = False
            raise WorkerStopping()
        if record.epoch not in seen and record.epoch - 1 in seen:
            summary(record.epoch - 1)
        seen.setdefault(record.epoch, []).append(record.val_metric)

    start = time.perf_counter()
    try:
        with trial_threads(task.name, worker.config.device):
            results = train_batched(
                task.name, optimizers, runs, budget=spec.budget, device=worker.config.device,
                on_epoch=progress, data_dir=worker.config.data_dir,
            )  # fmt: skip
    finally:
        worker.stats.clock.training += time.perf_counter() - start
    if seen:
        summary(max(seen))
    return results
