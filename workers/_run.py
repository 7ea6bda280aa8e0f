"""The runner: 1..K claimed trials of one campaign, from the claim to their finish.

One path for every trial a worker runs. The worker loop (``workers._worker``) claims 1..K
trials in one statement per arm (``studies.storage.claim_trials``, which reads them back
set-based and records the claimer) and hands them here. The runner

- beats for all of them through one heartbeat writer (``workers._heartbeat``, one statement
  per interval);
- trains them: one trial through the arm's objective (``studies.objective``: pruning, TPE,
  any task), several as one batched model (``studies.training.train_batched``: every arm of
  a campaign shares its task and budget, so their models stack), writing each model's epochs
  as they happen (at most once a second per batch, one transaction for all of them) so
  status, the dashboard and the report see a running batch move;
- finishes them in one transaction (``studies.storage.finish_trials``), waiting out a
  database outage while still beating;
- gives them back in one transaction (``studies.storage.give_back``: each FAIL with its
  queued copy) when told to stop (SIGTERM: not counted as a retry) or when training crashed
  (counted: the copy is queued while retries are left). A ``kill -9`` leaves them RUNNING; they
  go stale and other workers fail and queue them again.

Only arms whose sampler can answer K suggestions without seeing any of their results batch:
grid (every value queued), random and QMC. TPE learns from each result, and a pruner decides
epoch by epoch per trial; those arms, and tasks that are not ``batchable``, run one by one.

Every arm study talks to the database directly (``talk_directly``), never through Optuna's
trial cache: the claim has read each trial already, and ``CampaignStorage.primed`` hands that
read to ``optuna.Trial``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import optuna
from boundsweep.optimizers import batchable_optimizer
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.objective import WORKER_ID, plugin_origins, run_record, suggest
from boundsweep.studies.storage import (
    ArmProgress,
    CampaignStorage,
    Finished,
    finish_trials,
    give_back,
    set_intermediate_values_of,
    storage_error_reason,
    trial_id_of,
)
from boundsweep.studies.tasks import TASKS
from boundsweep.studies.training import EpochRecord, TrainResult, resolve_hparams, train_batched
from boundsweep.workers._config import WorkerConfig, WorkerStats
from boundsweep.workers._heartbeat import STORAGE_ERRORS, Heartbeat
from boundsweep.workers._setup import setup_problem
from boundsweep.workers._stopping import WorkerStopping
from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger("boundsweep.worker")

RESULT_RETRY = 300.0
"""Seconds a worker keeps trying to store finished trials through a database outage."""
LIVE_INTERVAL = 1.0
"""Seconds between two writes of a running batch's epochs (one transaction for the batch)."""
AUTO_BATCH_TRIALS = {"cpu": 81, "cuda": 81}
"""The most trials claimed at once with ``--batch-trials`` left automatic, per device type
(``benchmarks/bench_batched.py``: on one CPU core a trial of ``digits_mlp`` keeps getting
cheaper up to 81 stacked models, ``mnist1d_mlp``'s is flat from about 27)."""
BATCHING_SAMPLERS = ("grid", "random", "qmc")


@dataclass
class Arm:
    """An arm study as a worker runs it: the campaign's spec and the loaded study."""

    spec: CampaignSpec
    study: optuna.Study


@dataclass
class Claimed:
    """A trial the worker claimed: its arm's counts row, the arm, the trial as the claim read it."""

    row: ArmProgress
    arm: Arm
    trial: FrozenTrial


@dataclass
class Outcome:
    """What running claimed trials came to.

    Attributes:
        finished: (arm row, COMPLETE or PRUNED) of each trial whose result was stored.
        failed: Trials whose training crashed (failed, and queued again while retries last).
        unrunnable: Why this worker cannot run the campaign's trials (a setup problem, see
            ``workers._setup``); the trials were given back untouched.
    """

    finished: list[tuple[ArmProgress, TrialState]] = field(default_factory=list)
    failed: int = 0
    unrunnable: str | None = None


@contextlib.contextmanager
def trial_threads(task: str, device: str) -> Iterator[None]:
    """One torch thread while a trial of a batchable task trains on the CPU, alone or batched.

    With more, one model's small matrix products and reductions split across threads, and
    their partial sums round differently from the batched products' (which split by model):
    a default worker (torch's threads: the machine's cores) recorded the same trial up to
    4.25 accuracy points apart batched and one by one (``mnist1d_mlp``, 2 threads). On one
    thread each batched trial is its one-by-one run bit for bit, whatever ``--batch-trials``
    says. The cost is one-by-one MLP trials that no longer use a second core (docs/campaigns.md,
    "Batched trials", has the figures); batched trials, the default for these tasks, lose little. Other tasks
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


def batch_limit(
    batch_trials: int | None,
    device: str,
    spec: CampaignSpec,
    arm: str,
    unbatchable: Collection[str] = (),
) -> int:
    """How many trials of ``arm`` a worker claims at once (1: one by one).

    Args:
        batch_trials: The worker's ``--batch-trials``; ``None`` is automatic.
        device: The worker's device.
        spec: The campaign.
        arm: The arm's name.
        unbatchable: Tasks whose batched training crashed in this worker (``Runner``): they
            are trained one by one from then on.
    """
    arm_spec = spec.arm(arm)
    if (
        batch_trials == 1
        or not TASKS[spec.task].batchable
        or spec.task in unbatchable
        or spec.pruner != "none"
        or arm_spec.sampler not in BATCHING_SAMPLERS
        or not batchable_optimizer(arm_spec.optimizer)  # a plugin's: one by one, never FAIL
    ):
        return 1
    if batch_trials is not None:
        return batch_trials
    return AUTO_BATCH_TRIALS.get(device.split(":")[0], 1)


class Runner:
    """Runs claimed trials (see the module's doc); one per worker process.

    ``training`` is true while a signal may interrupt training at once (the worker's signal
    handler reads it); ``stop`` set, the next epoch boundary gives the trials back.
    """

    def __init__(
        self,
        storage: CampaignStorage,
        config: WorkerConfig,
        stats: WorkerStats,
        stop: threading.Event,
        grace_period: int,
        objective_factory: Callable[..., Callable[[optuna.Trial], float]],
    ) -> None:
        self.storage = storage
        self.config = config
        self.stats = stats
        self.stop = stop
        self.grace_period = grace_period
        self.objective_factory = objective_factory
        self.training = False
        self.unbatchable: set[str] = set()
        """Tasks whose batched training crashed here: trained one by one from then on (a
        plugin may declare a model batchable that cannot be stacked, e.g. with dropout)."""

    def _stop_point(self) -> None:
        """At an epoch boundary: unwind if a signal came while training could not be cut."""
        if self.stop.is_set() and self.training:
            self.training = False
            raise WorkerStopping()

    def run(self, claimed: list[Claimed]) -> Outcome:
        """Train the claimed trials (one of them alone, several batched) and store each one's
        end; raises ``WorkerStopping`` after giving them back when told to stop."""
        ids = [trial_id_of(c.trial) for c in claimed]
        label = _label(claimed)
        if len(ids) == 1:
            log.info("%s claimed (%s)", label, self.config.device)
        else:
            log.info("%s claimed, %d trials batched (%s)", label, len(ids), self.config.device)
        with Heartbeat(
            self.storage, ids, self.config.heartbeat_interval, self.grace_period,
            self.config.max_retries,
        ):  # fmt: skip
            self.training = True
            try:
                if self.stop.is_set():  # the signal came between the claim and here
                    raise WorkerStopping()
                ends = self._one(claimed[0]) if len(claimed) == 1 else self._batched(claimed)
            except WorkerStopping:
                self.training = False
                self._give_back(ids, count_as_retry=False)
                self.stats.interrupted += len(ids)
                log.warning("%s interrupted, %d trial(s) queued again", label, len(ids))
                raise
            except Exception as exc:
                self.training = False
                problem = setup_problem(exc)
                if problem is not None:
                    self._give_back(ids, count_as_retry=False)
                    return Outcome(unrunnable=problem)
                if len(ids) > 1:
                    # Batching is ours to get right, not the trials' fault: they go back
                    # uncounted and this worker trains the task one by one from now on, where
                    # a real fault of the trial fails it as usual.
                    task = claimed[0].arm.spec.task
                    self.unbatchable.add(task)
                    log.warning(
                        "%s: batched training of task %s failed (%s: %s); the trials are "
                        "queued again and this worker trains %s one by one from now on",
                        label, task, type(exc).__name__, exc, task,
                    )  # fmt: skip
                    self._give_back(ids, count_as_retry=False)
                    return Outcome()
                log.exception("%s crashed", label)
                self._give_back(ids, count_as_retry=True)
                self.stats.failed += len(ids)
                return Outcome(failed=len(ids))
            finally:
                self.training = False
            # Still beating: results that wait out a database outage keep their trials alive.
            return self._finish(claimed, ends, label)

    # --- training ------------------------------------------------------------------------

    def _trial(self, c: Claimed) -> optuna.Trial:
        """The ``optuna.Trial`` of a claimed trial, built from the claim's read of it."""
        with self.storage.primed(c.trial):
            return self.stats.clock.timed(
                "storage", optuna.Trial, c.arm.study, trial_id_of(c.trial)
            )

    def _one(self, c: Claimed) -> list[Finished]:
        """One trial through its arm's objective (pruning, any sampler, any task)."""
        spec = c.arm.spec
        trial = self._trial(c)
        epochs = TASKS[spec.task].epochs(spec.budget)
        started = time.monotonic()

        def progress(trial: optuna.Trial, record: EpochRecord) -> None:
            self._stop_point()
            log.info(
                "%s #%d %s epoch %d/%s %s=%.4g loss=%.4g eta %s",
                c.row.study_name, trial.number, _params(trial.params), record.epoch, epochs,
                f"val_{TASKS[spec.task].metric}", record.val_metric, record.train_loss,
                _eta(started, record, epochs, spec.budget.max_steps),
            )  # fmt: skip

        objective = self.objective_factory(
            spec, c.row.arm, device=self.config.device, data_dir=self.config.data_dir,
            on_epoch=progress, clock=self.stats.clock, defer_record=True,
        )  # fmt: skip
        try:
            with trial_threads(spec.task, self.config.device):
                value, state = objective(trial), TrialState.COMPLETE
        except optuna.TrialPruned:
            value, state = None, TrialState.PRUNED
        record = getattr(objective, "record", None)
        return [
            Finished(
                trial_id_of(trial), value, state,
                user_attrs=record.user_attrs if record else None,
                intermediate_values=record.intermediate_values if record else None,
            )
        ]  # fmt: skip

    def _batched(self, claimed: list[Claimed]) -> list[Finished]:
        """Several trials of one campaign as one batched model; each one's own record."""
        clock = self.stats.clock
        spec = claimed[0].arm.spec  # the campaign: its task and budget are every arm's
        task = TASKS[spec.task]
        runs, optimizers, started = [], [], []
        for c in claimed:
            arm_spec = spec.arm(c.row.arm)
            # Each trial's own suggestion: a grid trial's queued values, or the random or QMC
            # sampler's next point (neither waits on any result).
            varied, seed = clock.timed("storage", suggest, self._trial(c), arm_spec, spec.seeds)
            hparams = resolve_hparams(task, arm_spec.optimizer, {**arm_spec.fixed(), **varied})
            runs.append((hparams, seed))
            optimizers.append(arm_spec.optimizer)
            started.append(
                {"hparams": hparams, "seed": seed, "device": self.config.device,
                 "worker": WORKER_ID, "batch_trials": len(claimed),
                 **plugin_origins(spec.task, arm_spec.optimizer)}
            )  # fmt: skip
        ids = [trial_id_of(c.trial) for c in claimed]
        live = _LiveEpochs(self.storage, dict(zip(ids, started, strict=True)))
        try:
            results = self._train(spec, optimizers, runs, live, ids, _label(claimed))
        finally:
            unwritten = live.close()
        ends = []
        for trial_id, first, result in zip(ids, started, results, strict=True):
            attrs = run_record(first, result)
            # Each trial's own share of the batch's time; the batch's is kept beside it.
            attrs["wall_time"] = result.wall_time / len(ids)
            attrs["batch_wall_time"] = result.wall_time
            ends.append(Finished(trial_id, result.val_metric, TrialState.COMPLETE, attrs,
                                 unwritten.get(trial_id)))  # fmt: skip
        return ends

    def _train(
        self,
        spec: CampaignSpec,
        optimizers: list[str],
        runs: list[tuple[dict[str, float], int]],
        live: _LiveEpochs,
        ids: list[int],
        label: str,
    ) -> list[TrainResult]:
        """``train_batched`` with the stop check, live epochs and one log line per epoch."""
        task = TASKS[spec.task]
        epochs = task.epochs(spec.budget)
        seen: dict[int, list[float]] = {}
        began = time.monotonic()

        def summary(epoch: int) -> None:
            values = seen[epoch]
            log.info(
                "%s epoch %d/%s: %d training, best val_%s=%.4g, %.0f s",
                label, epoch, epochs, len(values), task.metric,
                max(values) if task.direction == "maximize" else min(values),
                time.monotonic() - began,
            )  # fmt: skip

        def progress(k: int, record: EpochRecord) -> None:
            self._stop_point()
            live.report(ids[k], record.epoch, record.val_metric)
            if record.epoch not in seen and record.epoch - 1 in seen:
                summary(record.epoch - 1)
            seen.setdefault(record.epoch, []).append(record.val_metric)

        start = time.perf_counter()
        try:
            with trial_threads(task.name, self.config.device):
                results = train_batched(
                    task.name, optimizers, runs, budget=spec.budget, device=self.config.device,
                    on_epoch=progress, data_dir=self.config.data_dir,
                )  # fmt: skip
        finally:
            self.stats.clock.training += time.perf_counter() - start
        if seen:
            summary(max(seen))
        return results

    # --- storing -------------------------------------------------------------------------

    def _finish(self, claimed: list[Claimed], ends: list[Finished], label: str) -> Outcome:
        """Store every end in one transaction, retrying through a database outage."""
        deadline = time.monotonic() + RESULT_RETRY
        pause = 1.0
        studies = list({id(c.arm.study): c.arm.study for c in claimed}.values())
        while True:
            try:
                won = self.stats.clock.timed(
                    "storage", finish_trials, self.storage, ends, studies=studies
                )
                break
            except STORAGE_ERRORS as exc:
                # A database restart must not throw away the training: try again while the
                # heartbeat keeps the trials ours. Finishing is atomic with the check that
                # each trial is still RUNNING, so a retry never records a result twice.
                if time.monotonic() + pause > deadline or self.stop.is_set():
                    log.warning(
                        "%s: results not recorded, database unavailable (%s); the trials "
                        "will be retried", label, storage_error_reason(exc),
                    )  # fmt: skip
                    return Outcome()
                log.warning(
                    "%s: database unavailable (%s); recording the result again in %.0f s",
                    label, storage_error_reason(exc), pause,
                )  # fmt: skip
                self.stop.wait(pause)
                pause = min(2 * pause, 15.0)
        outcome = Outcome()
        for c, end in zip(claimed, ends, strict=True):
            name = f"{c.row.study_name} #{c.trial.number}"
            if end.trial_id not in won:
                # Our heartbeat was late and another worker failed the trial and queued a
                # copy; the copy stands and this result is dropped, so the count stays exact.
                log.warning("%s: result not recorded (the trial is no longer RUNNING)", name)
                continue
            outcome.finished.append((c.row, end.state))
            if end.state == TrialState.COMPLETE:
                self.stats.complete += 1
                log.info("%s complete: value=%.4g", name, end.value)
            else:
                self.stats.pruned += 1
                log.info("%s pruned", name)
        return outcome

    def _give_back(self, trial_ids: list[int], *, count_as_retry: bool) -> None:
        """Fail the trials and queue their copies, in one transaction (a crash: only the
        copies of trials with retries left)."""
        try:
            done = give_back(
                self.storage, trial_ids, count_as_retry=count_as_retry,
                max_retries=self.config.max_retries,
            )  # fmt: skip
        except STORAGE_ERRORS as exc:
            # The worker goes on (or stops cleanly); the trials stop beating, so another
            # worker fails them as stale and queues the copies once the database is back.
            log.warning(
                "trial ids %s not given back, database unavailable (%s); they will be "
                "retried once they go stale", trial_ids, storage_error_reason(exc),
            )  # fmt: skip
            return
        for trial in done.given_up:
            log.error(
                "trial #%d failed %d times; giving up", trial.number, self.config.max_retries + 1
            )


class _LiveEpochs:
    """A running batch's epochs, written from a thread as they happen: at most one
    transaction every ``LIVE_INTERVAL`` s for all of its trials (the first carries each
    trial's first attrs: hparams, seed, device, worker). What is not written when the batch
    ends goes with its finish."""

    def __init__(self, storage: CampaignStorage, first_attrs: dict[int, dict[str, Any]]) -> None:
        self.storage = storage
        self._first: dict[int, dict[str, Any]] | None = first_attrs
        self._pending: dict[int, dict[int, float]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-epochs", daemon=True)
        self._thread.start()

    def report(self, trial_id: int, epoch: int, value: float) -> None:
        with self._lock:
            self._pending.setdefault(trial_id, {})[epoch] = value
        self._wake.set()

    def _take(self) -> dict[int, dict[int, float]]:
        with self._lock:
            taken, self._pending = self._pending, {}
        return taken

    def _write(self) -> None:
        taken = self._take()
        if not taken:
            return
        try:
            set_intermediate_values_of(self.storage, taken, user_attrs=self._first)
            self._first = None
        except Exception as exc:  # a database hiccup must not fail the batch
            with self._lock:  # kept for the next write, or the finish
                for trial_id, values in taken.items():
                    self._pending[trial_id] = {**values, **self._pending.get(trial_id, {})}
            log.warning("could not store a batch's epochs yet (%s)", storage_error_reason(exc))

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._closed.is_set():
                return
            self._write()
            self._closed.wait(LIVE_INTERVAL)  # at most one write per interval

    def close(self) -> dict[int, dict[int, float]]:
        """Stop; the epochs not written yet (per trial id)."""
        self._closed.set()
        self._wake.set()
        self._thread.join()
        return self._take()


def _label(claimed: list[Claimed]) -> str:
    """``study #first..#last`` per arm, for log lines."""
    by_arm: dict[str, list[int]] = {}
    for c in claimed:
        by_arm.setdefault(c.row.study_name, []).append(c.trial.number)
    return " + ".join(
        f"{name} #{numbers[0]}" if len(numbers) == 1 else f"{name} #{numbers[0]}..#{numbers[-1]}"
        for name, numbers in by_arm.items()
    )


def _params(params: dict[str, Any]) -> str:
    return (
        "["
        + " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
        )
        + "]"
    )


def _eta(started: float, record: EpochRecord, epochs: int, max_steps: int | None) -> str:
    """Time left, from the pace so far (the step cap may end the run before the last epoch)."""
    total = epochs
    if max_steps is not None and record.step > 0:
        total = min(epochs, math.ceil(max_steps / (record.step / record.epoch)))
    elapsed = time.monotonic() - started
    left = max(0, total - record.epoch) * elapsed / record.epoch
    return str(timedelta(seconds=round(left)))
