"""Batched trials: claim up to K queued trials of one arm at once and train them as one model.

On the small tasks a trial is mostly per-step overhead, so K of them trained together
(``studies.training.train_batched``) cost little more than one. The worker claims them in one
statement (``studies.storage.claim_trials``), heartbeats all of them together, and finishes
each as its own Optuna trial with the record the one-by-one objective stores, so the
campaign's trials, curves and report read the same whichever way they were run.

Only arms whose sampler can answer K suggestions without seeing any of their results batch:
grid (every value queued), random and QMC. TPE learns from each result, and a pruner decides
epoch by epoch per trial; those arms, and tasks that are not ``batchable``, run one by one.
A stop (SIGTERM) gives all K back; a crash fails all K and queues each again while it has
retries left; a ``kill -9`` leaves K stale trials that other workers fail and queue again.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import optuna
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.objective import WORKER_ID, TrialRecord, run_record, suggest
from boundsweep.studies.storage import ArmProgress, CampaignStorage, trial_id_of
from boundsweep.studies.tasks import TASKS
from boundsweep.studies.training import EpochRecord, TrainResult, resolve_hparams, train_batched
from boundsweep.workers._heartbeat import Heartbeat
from boundsweep.workers._stopping import WorkerStopping
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from boundsweep.workers._worker import Worker, _Arm

log = logging.getLogger("boundsweep.worker")

AUTO_BATCH_TRIALS = {"cpu": 27, "cuda": 81}
"""Trials claimed at once with ``--batch-trials`` left automatic, per device type: on two
CPU cores the throughput stops growing past about 27 MNIST-1D MLPs (compute-bound), a GPU
keeps gaining further (``benchmarks/bench_batched.py``)."""
BATCHING_SAMPLERS = ("grid", "random", "qmc")


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
    ):
        return 1
    if batch_trials is not None:
        return batch_trials
    return AUTO_BATCH_TRIALS.get(device.split(":")[0], 1)


def run_batch(worker: Worker, row: ArmProgress, claimed: list[FrozenTrial]) -> None:
    """Train the claimed trials of one arm together and record each as its own trial."""
    arm = worker._arms[row.study_id]  # loaded by the claim
    arm_spec, task = arm.spec.arm(row.arm), TASKS[arm.spec.task]
    clock = worker.stats.clock
    ids = [trial_id_of(frozen) for frozen in claimed]
    label = f"{row.study_name} #{claimed[0].number}..#{claimed[-1].number}"
    log.info("%s claimed, %d trials batched (%s)", label, len(ids), worker.config.device)
    with Heartbeat(
        worker.storage, ids, worker.config.heartbeat_interval, worker.grace_period,
        worker.config.max_retries,
    ):  # fmt: skip
        worker._training = True
        try:
            if worker.stop.is_set():  # the signal came between the claim and here
                raise WorkerStopping()
            trials = clock.timed("storage", _trials, worker.storage, arm, claimed)
            runs, started = [], []
            for trial in trials:
                # Each trial's own suggestion: a grid trial's queued values, or the random or
                # QMC sampler's next point (neither waits on any result).
                varied, seed = clock.timed("storage", suggest, trial, arm_spec, arm.spec.seeds)
                hparams = resolve_hparams(task, arm_spec.optimizer, {**arm_spec.fixed(), **varied})
                runs.append((hparams, seed))
                started.append(
                    {"hparams": hparams, "seed": seed, "device": worker.config.device,
                     "worker": WORKER_ID, "batch_trials": len(ids)}
                )  # fmt: skip
            results = _train(worker, arm, row, runs, label)
        except WorkerStopping:
            worker._training = False
            for trial_id in ids:
                worker._give_back(arm, trial_id, count_as_retry=False)
            worker.stats.interrupted += len(ids)
            log.warning("%s interrupted, %d trials queued again", label, len(ids))
            raise
        except Exception as exc:
            worker._training = False
            if worker.setup_failed(row, arm, ids, exc):
                return
            log.exception("%s crashed", label)
            for trial_id in ids:
                worker._give_back(arm, trial_id, count_as_retry=True)
            worker.stats.failed += len(ids)
            return
        finally:
            worker._training = False
        # Still beating while the K results are stored (a database outage is waited out).
        for trial, first, result in zip(trials, started, results, strict=True):
            record = TrialRecord(
                user_attrs=run_record(first, result),
                intermediate_values={r.epoch: r.val_metric for r in result.epochs},
            )
            worker._tell(arm, trial, TrialState.COMPLETE, result.val_metric, row, record)


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
    arm: _Arm,
    row: ArmProgress,
    runs: list[tuple[dict[str, float], int]],
    label: str,
) -> list[TrainResult]:
    """``train_batched`` with the worker's stop check and one progress line per epoch."""
    task = TASKS[arm.spec.task]
    epochs = task.epochs(arm.spec.budget)
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
        results = train_batched(
            task.name, arm.spec.arm(row.arm).optimizer, runs, budget=arm.spec.budget,
            device=worker.config.device, on_epoch=progress, data_dir=worker.config.data_dir,
        )  # fmt: skip
    finally:
        worker.stats.clock.training += time.perf_counter() - start
    if seen:
        summary(max(seen))
    return results
