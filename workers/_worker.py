"""The worker loop: claim the next queued trial of the arm furthest behind, train it, repeat.

One trial at a time on one device, or, where the task and the arm's sampler allow it, up to
K trials of one arm claimed at once and trained as one batched model (``workers._batch``). A
trial is only ever taken from the queue that
``create_campaign`` filled (never created afresh), which is what keeps every arm's count
exact however many workers race. While it trains, a heartbeat thread proves the worker alive;
a worker that dies is noticed by the others, who fail its trial and queue it again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import FrameType
from typing import Any

import optuna
import sqlalchemy as sa
from boundsweep.optimizers import NotInstalledError
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.objective import (
    WORKER_ID,
    StorageClock,
    TrialRecord,
    make_objective,
    pruner_for,
    sampler_for,
)
from boundsweep.studies.storage import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_RETRIES,
    ArmProgress,
    arm_progress,
    claim_trial,
    claim_trials,
    claim_waiting_trial,
    fail_if_running,
    fail_stale_trials,
    finish_trial,
    load_spec,
    open_storage,
    record_not_installed,
    requeue,
    retries_left,
    storage_error_reason,
    study_id_of,
    talk_directly,
    trial_id_of,
)
from boundsweep.studies.tasks import TASKS
from boundsweep.studies.training import EpochRecord
from boundsweep.workers._batch import Batch, batch_limit, fair_share, run_batch, trial_threads
from boundsweep.workers._heartbeat import STORAGE_ERRORS, Heartbeat
from boundsweep.workers._setup import setup_problem
from boundsweep.workers._stopping import WorkerStopping
from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger("boundsweep.worker")
ARMS_REFRESH = 5.0
"""Seconds a worker trusts its counts of every arm before reading them again."""
RESULT_RETRY = 300.0
"""Seconds a worker keeps trying to store a finished trial through a database outage."""
STORAGE_PATIENCE = 60.0
"""Seconds an ``--until-idle`` worker keeps retrying a storage that fails (down, full, read
only) before it gives up with ``STORAGE_ERROR_EXIT``; a long-lived worker waits for ever."""
STORAGE_ERROR_EXIT = 4
"""Exit status of an ``--until-idle`` worker whose storage stayed unusable for
``storage_patience`` seconds (1: unreachable at start, 2: usage, 3: setup)."""


@dataclass
class WorkerConfig:
    """How a worker runs.

    Attributes:
        storage_url: SQLAlchemy URL of the campaigns' storage.
        device: Torch device, ``cpu``, ``cuda`` or ``cuda:N``.
        until_idle: Exit once no campaign has a queued or running trial left.
        max_retries: Times a crashed trial is queued again before it is reported failed.
        heartbeat_interval: Seconds between heartbeats.
        grace_period: Seconds without a heartbeat before a trial is stale (``None``: 3 beats).
        poll_interval: Seconds to wait before looking again when there is no work.
        max_trials: Stop after this many trials (``None``: no limit).
        campaigns: Only work on these campaigns (``None``: all).
        data_dir: Dataset folder for the tasks.
        batch_trials: Trials of one arm claimed and trained together where the task and the
            arm's sampler allow it (``workers._batch``); ``None`` is automatic, 1 one by one.
        storage_patience: With ``until_idle``, seconds of storage failures in a row (a full
            disk, a read-only file, a database that refuses writes or is down) after which the
            worker stops and says so (``storage_failed``) instead of retrying for ever.
    """

    storage_url: str
    device: str = "cpu"
    until_idle: bool = False
    max_retries: int = DEFAULT_MAX_RETRIES
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL
    grace_period: int | None = None
    poll_interval: float = 2.0
    max_trials: int | None = None
    campaigns: list[str] | None = None
    data_dir: str | None = None
    batch_trials: int | None = None
    storage_patience: float = STORAGE_PATIENCE


@dataclass
class WorkerStats:
    """What a worker did, for its last log line and the storage benchmark."""

    trials: int = 0
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    interrupted: int = 0
    clock: StorageClock = field(default_factory=StorageClock)
    wall: float = 0.0


@dataclass
class _Arm:
    spec: CampaignSpec
    study: optuna.Study
    direct: bool = False
    """The study talks to the database directly, and nothing reads other trials (see ``_arm``)."""


class Worker:
    """One worker process's loop (see ``run_worker``)."""

    def __init__(
        self,
        config: WorkerConfig,
        stop: threading.Event | None = None,
        objective_factory: Callable[..., Callable[[optuna.Trial], float]] = make_objective,
    ) -> None:
        """A worker over ``config.storage_url``.

        Args:
            config: How to run.
            stop: Set it to stop after the running trial.
            objective_factory: Builds an arm's objective, with ``make_objective``'s signature
                (the storage benchmark swaps in a trivial one).
        """
        self.config = config
        self._objective_factory = objective_factory
        self.grace_period = config.grace_period or 3 * config.heartbeat_interval
        self.storage = open_storage(
            config.storage_url,
            heartbeat_interval=config.heartbeat_interval,
            grace_period=self.grace_period,
            max_retries=config.max_retries,
        )
        self.stop = stop or threading.Event()
        self.stats = WorkerStats()
        self._arms: dict[int, _Arm] = {}
        self._training = False
        self._last_sweep = -math.inf
        self._arm_rows: dict[int, ArmProgress] = {}
        self._arms_read_at = -math.inf
        self.unrunnable: dict[str, str] = {}
        """Campaign → why this worker cannot run its trials (see ``workers._setup``)."""
        self.not_installed: dict[str, str] = {}
        """Campaign → the task or optimizer it names that this worker does not have: skipped
        (its trials stay queued for a worker that has it), not an error of this worker."""
        self.storage_failed: str | None = None
        """Why an ``until_idle`` worker gave up on its storage (``STORAGE_ERROR_EXIT``)."""

    # --- choosing work ---------------------------------------------------------------------

    def _open_arms(self) -> list[ArmProgress]:
        """Every open arm's counts: read again every few seconds, kept up to date in between.

        Between two reads the worker applies its own claims and results to the counts, which
        keeps its choice of arm fair without a grouped count query per trial; other workers'
        progress shows at the next read. Exactness never depends on these counts: the claim
        itself is the atomic check (and it refuses a cancelled campaign at once).
        """
        if time.monotonic() - self._arms_read_at >= ARMS_REFRESH or not any(
            r.waiting for r in self._arm_rows.values()
        ):
            rows = arm_progress(self.storage)
            if self.config.campaigns is not None:
                rows = [r for r in rows if r.campaign in self.config.campaigns]
            rows = [
                r
                for r in rows
                if r.campaign not in self.unrunnable and r.campaign not in self.not_installed
            ]
            self._arm_rows = {r.study_id: r for r in rows if not r.cancelled}
            self._arms_read_at = time.monotonic()
        return list(self._arm_rows.values())

    def _count(self, row: ArmProgress, **change: int) -> None:
        """Apply one of this worker's own state changes to the cached counts."""
        cached = self._arm_rows.get(row.study_id)
        if cached is not None:
            values = {k: max(0, getattr(cached, k) + v) for k, v in change.items()}
            self._arm_rows[row.study_id] = replace(cached, **values)

    @staticmethod
    def _by_fairness(rows: list[ArmProgress]) -> list[ArmProgress]:
        """Arms with queued trials, the one furthest behind (started / planned) first."""
        ready = [r for r in rows if r.waiting > 0]
        return sorted(ready, key=lambda r: ((r.finished + r.running) / r.total, r.study_id))

    def _claim(
        self,
    ) -> tuple[ArmProgress, int, FrozenTrial | None] | Batch | None | bool:
        """A claimed (arm, trial id, trial as the claim read it), or a ``Batch`` to train
        together; ``None`` if there is no work now; ``False`` if none is left.

        Only a direct arm's claim reads the trial back (its ``optuna.Trial`` is built from that
        read); the others' trials are read through Optuna's trial cache anyway.
        """
        rows = self._open_arms()
        for row in self._by_fairness(rows):
            if not self._installed(row):
                continue
            batch = self._claim_batch(row, rows)
            if batch:
                return batch
            if batch is not None:
                continue
            if self._arm(row).direct:
                claimed = claim_trial(self.storage, row.study_id)
                trial_id = None if claimed is None else trial_id_of(claimed)
            else:
                claimed, trial_id = None, claim_waiting_trial(self.storage, row.study_id)
            if trial_id is not None:
                self._count(row, waiting=-1, running=1)
                return row, trial_id, claimed
            self._count(row, waiting=-row.waiting)  # others took the rest, or it was cancelled
        rows = [r for r in rows if r.campaign not in self.not_installed]
        if any(r.waiting or r.running for r in rows):
            self._arms_read_at = -math.inf  # look again next time (crashed trials come back)
            return None  # others' running trials may still crash and come back
        return False

    def _claim_batch(
        self, row: ArmProgress, rows: list[ArmProgress]
    ) -> tuple[ArmProgress, int, FrozenTrial | None] | Batch | None:
        """Up to ``batch_limit`` trials to train together (``[]`` if none was left; ``None``
        where the arm runs one by one): the arm's own first, in one claim, then while there is
        room the other batchable arms' of its campaign, the furthest behind first, one claim
        each. All arms of a campaign share its task and budget, so they stack as one model.

        Left automatic, a CPU worker claims no more than its share of the campaign's open
        trials (``fair_share``): workers started together then finish together.
        """
        arm = self._arm(row)
        device = self.config.device
        limit = batch_limit(self.config.batch_trials, device, arm.spec, row.arm)
        if self.config.max_trials is not None:
            limit = min(limit, self.config.max_trials - self.stats.trials)
        if self.config.batch_trials is None:
            limit = min(limit, fair_share(rows, row.campaign, device))
        if limit <= 1:
            return None
        others = [r for r in self._by_fairness(rows) if r.campaign == row.campaign]
        batch: Batch = []
        taken = 0
        for other in [row, *(r for r in others if r.study_id != row.study_id)]:
            if other is not row and (
                batch_limit(self.config.batch_trials, device, arm.spec, other.arm) <= 1
            ):
                continue
            self._arm(other)  # loaded before its trials are claimed
            claimed = claim_trials(self.storage, other.study_id, limit - taken)
            if claimed:
                self._count(other, waiting=-len(claimed), running=len(claimed))
                batch.append((other, claimed))
                taken += len(claimed)
            else:  # others took the rest, or it was cancelled
                self._count(other, waiting=-other.waiting)
            if taken >= limit:
                break
        if taken == 1:  # nothing to batch with: the one-by-one path
            ((only, claimed),) = batch
            return only, trial_id_of(claimed[0]), claimed[0] if self._arm(only).direct else None
        return batch

    def _installed(self, row: ArmProgress) -> bool:
        """Whether this worker has the task and optimizers of the row's campaign; if not, the
        campaign is skipped from now on, with one line naming what is missing."""
        if row.campaign in self.not_installed:
            return False
        try:
            self._arm(row)
        except NotInstalledError as exc:
            self.not_installed[row.campaign] = str(exc)
            self._arm_rows = {k: r for k, r in self._arm_rows.items() if r.campaign != row.campaign}
            log.warning("campaign %s skipped on this worker: %s", row.campaign, exc)
            # The campaign's status names the workers that lack what it needs.
            with contextlib.suppress(*STORAGE_ERRORS):
                record_not_installed(self.storage, row.campaign, WORKER_ID, str(exc))
            return False
        return True

    def _sweep_stale(self) -> None:
        if time.monotonic() - self._last_sweep < self.config.heartbeat_interval:
            return
        self._last_sweep = time.monotonic()
        failed = fail_stale_trials(
            self.storage, grace_period=self.grace_period, max_retries=self.config.max_retries
        )
        if failed:
            log.warning("failed %d stale trial(s) of dead workers: ids %s", len(failed), failed)

    def _arm(self, row: ArmProgress) -> _Arm:
        if row.study_id not in self._arms:
            spec = load_spec(self.storage, row.campaign)
            study = optuna.load_study(
                study_name=row.study_name,
                storage=self.storage,
                sampler=sampler_for(spec.arm(row.arm), row.study_name),
                pruner=pruner_for(spec),
            )
            direct = (
                spec.arm(row.arm).sampler in ("grid", "random")
                and spec.pruner == "none"
                and len(study.directions) == 1
            )
            if direct:
                # Nothing reads other trials then, so Optuna's trial cache only costs:
                # it must re-read every unfinished (queued) trial before it accepts a claimed
                # one. The study talks to the database directly instead.
                talk_directly(study, self.storage)
            self._arms[row.study_id] = _Arm(spec, study, direct)
        return self._arms[row.study_id]

    # --- running one trial -----------------------------------------------------------------

    def _run_trial(self, row: ArmProgress, trial_id: int, claimed: FrozenTrial | None) -> None:
        clock = self.stats.clock
        arm = self._arms[row.study_id]  # loaded by the claim
        if claimed is not None:
            # The claim read the trial in its transaction: Optuna's Trial need not read it again.
            with self.storage.primed(claimed):
                trial = clock.timed("storage", optuna.Trial, arm.study, trial_id)
        else:
            # Optuna's trial cache must learn of the claimed trial (it refuses its params
            # otherwise); syncing it re-reads the unfinished trials.
            clock.timed(
                "storage", arm.study.get_trials, deepcopy=False, states=(TrialState.RUNNING,)
            )
            trial = clock.timed("storage", optuna.Trial, arm.study, trial_id)
        epochs = TASKS[arm.spec.task].epochs(arm.spec.budget)
        started = time.monotonic()

        def progress(trial: optuna.Trial, record: EpochRecord) -> None:
            if self.stop.is_set() and self._training:  # a signal deferred by _on_signal
                self._training = False
                raise WorkerStopping()
            log.info(
                "%s #%d %s epoch %d/%s %s=%.4g loss=%.4g eta %s",
                row.study_name,
                trial.number,
                _params(trial.params),
                record.epoch,
                epochs,
                f"val_{TASKS[arm.spec.task].metric}",
                record.val_metric,
                record.train_loss,
                _eta(started, record, epochs, arm.spec.budget.max_steps),
            )

        objective = self._objective_factory(
            arm.spec, row.arm, device=self.config.device, data_dir=self.config.data_dir,
            on_epoch=progress, clock=clock, defer_record=True,
        )  # fmt: skip
        log.info("%s #%d claimed (%s)", row.study_name, trial.number, self.config.device)
        state, value = TrialState.FAIL, None
        with Heartbeat(
            self.storage, trial_id, self.config.heartbeat_interval, self.grace_period,
            self.config.max_retries,
        ):  # fmt: skip
            self._training = True
            try:
                if self.stop.is_set():  # the signal came between the claim and here
                    raise WorkerStopping()
                with trial_threads(arm.spec.task, self.config.device):
                    value = objective(trial)
                state = TrialState.COMPLETE
            except optuna.TrialPruned:
                state = TrialState.PRUNED
            except WorkerStopping:
                self._training = False
                self._give_back(arm, trial_id, count_as_retry=False)
                self.stats.interrupted += 1
                log.warning("%s #%d interrupted, queued again", row.study_name, trial.number)
                raise
            except Exception as exc:
                self._training = False
                if self.setup_failed(row.campaign, [(arm, trial_id)], exc):
                    return
                log.exception("%s #%d crashed", row.study_name, trial.number)
                self._give_back(arm, trial_id, count_as_retry=True)
                self.stats.failed += 1
                return
            finally:
                self._training = False
            # Still beating: a result that waits out a database outage keeps its trial alive.
            self._tell(arm, trial, state, value, row, getattr(objective, "record", None))

    def _tell(
        self,
        arm: _Arm,
        trial: optuna.Trial,
        state: TrialState,
        value: float | None,
        row: ArmProgress,
        record: TrialRecord | None,
    ) -> None:
        deadline = time.monotonic() + RESULT_RETRY
        pause = 1.0
        while True:
            try:
                self._record(arm, trial, state, value, record)
                break
            except STORAGE_ERRORS as exc:
                # A database restart must not throw away hours of training: try again while
                # the heartbeat keeps the trial ours. Storing is atomic with the check that
                # the trial is still RUNNING, so a retry never records a result twice.
                if time.monotonic() + pause > deadline or self.stop.is_set():
                    log.warning(
                        "%s #%d: result not recorded, database unavailable (%s); the trial "
                        "will be retried", row.study_name, trial.number, storage_error_reason(exc),
                    )  # fmt: skip
                    return
                log.warning(
                    "%s #%d: database unavailable (%s); recording the result again in %.0f s",
                    row.study_name, trial.number, storage_error_reason(exc), pause,
                )  # fmt: skip
                self.stop.wait(pause)
                pause = min(2 * pause, 15.0)
            except Exception as exc:
                # Usually: our heartbeat was late and another worker failed the trial and
                # queued a copy; the copy stands and this result is dropped, so the count stays
                # exact.
                log.warning("%s #%d: result not recorded (%s)", row.study_name, trial.number, exc)
                return
        if state == TrialState.COMPLETE:
            self.stats.complete += 1
            self._count(row, running=-1, complete=1)
            log.info("%s #%d complete: value=%.4g", row.study_name, trial.number, value)
        else:
            self.stats.pruned += 1
            self._count(row, running=-1, pruned=1)
            log.info("%s #%d pruned", row.study_name, trial.number)

    def _record(
        self,
        arm: _Arm,
        trial: optuna.Trial,
        state: TrialState,
        value: float | None,
        record: TrialRecord | None,
    ) -> None:
        """Store the trial's end state and its record; ``ValueError`` if it is not ours now.

        Every arm's result takes the adapter's one path (``finish_trial``): what ``tell``
        stores, and the run's record, in one transaction and without re-reading the trial;
        a sampler that learns from results (TPE) sees it at its next suggestion.
        """
        won = self.stats.clock.timed(
            "storage", finish_trial, self.storage, trial_id_of(trial),
            value if state == TrialState.COMPLETE else None, state=state,
            user_attrs=record.user_attrs if record else None,
            intermediate_values=record.intermediate_values if record else None,
            study=arm.study,
        )  # fmt: skip
        if not won:
            raise ValueError("the trial is no longer RUNNING")

    def setup_failed(
        self, campaign: str, trials: list[tuple[_Arm, int]], exc: BaseException
    ) -> bool:
        """Handle a setup error (``workers._setup``): give the trials (each with its arm)
        back untouched, stop claiming the campaign's trials, say why in one line. False for
        any other error."""
        problem = setup_problem(exc)
        if problem is None:
            return False
        for arm, trial_id in trials:
            self._give_back(arm, trial_id, count_as_retry=False)
        self.unrunnable[campaign] = problem
        self._arm_rows = {k: r for k, r in self._arm_rows.items() if r.campaign != campaign}
        log.error(
            "campaign %s: this worker cannot run its trials, they stay queued for one that "
            "can: %s", campaign, problem,
        )  # fmt: skip
        return True

    def _give_back(self, arm: _Arm, trial_id: int, *, count_as_retry: bool) -> None:
        """Fail the trial and queue a copy (a crash only while retries are left)."""
        self._arms_read_at = -math.inf  # the counts changed in ways best read back
        backend = self.storage
        try:
            if not fail_if_running(backend, trial_id):
                return  # someone already failed it as stale and queued the copy
            frozen = backend.get_trial(trial_id)
            if count_as_retry and not retries_left(frozen, self.config.max_retries):
                log.error(
                    "trial #%d failed %d times; giving up",
                    frozen.number, self.config.max_retries + 1,
                )  # fmt: skip
                return
            requeue(backend, study_id_of(arm.study), frozen, count_as_retry=count_as_retry)
        except STORAGE_ERRORS as exc:
            # The worker goes on (or stops cleanly); the trial stops beating, so another
            # worker fails it as stale and queues the copy once the database is back.
            log.warning(
                "trial id %s not given back, database unavailable (%s); it will be retried "
                "once it goes stale", trial_id, storage_error_reason(exc),
            )  # fmt: skip

    # --- the loop --------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.warning("signal %d: stopping after giving the running trial back", signum)
        self.stop.set()
        if self._training and not _importing(frame):
            self._training = False
            raise WorkerStopping(signum)
        # Mid-import (torch loads parts of itself lazily on a first step), an exception would
        # leave a half-initialised module in sys.modules for the rest of the process; the
        # epoch callback raises at the next epoch boundary instead.

    def run(self) -> int:
        """Run trials until stopped (or idle, with ``until_idle``); the number of trials run."""
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                handlers[sig] = signal.signal(sig, self._on_signal)
        start = time.monotonic()
        failing_since: float | None = None  # when the storage began failing, in a row
        log.info("worker on %s, storage %s", self.config.device, _safe_url(self.config.storage_url))
        try:
            while not self.stop.is_set():
                if (
                    self.config.max_trials is not None
                    and self.stats.trials >= self.config.max_trials
                ):
                    break
                try:
                    clock = self.stats.clock
                    clock.timed("storage", self._sweep_stale)
                    claim = clock.timed("storage", self._claim)
                except (*STORAGE_ERRORS, sa.exc.InternalError) as exc:
                    if not storage_refused(exc):
                        raise
                    # A database restart or a lock timeout must not end a long-lived worker;
                    # one with --until-idle ends when the storage stays unusable.
                    failing_since = failing_since or time.monotonic()
                    reason = storage_error_reason(exc)
                    failed_for = time.monotonic() - failing_since
                    if self.config.until_idle and failed_for >= self.config.storage_patience:
                        self.storage_failed = (
                            f"storage unusable for {failed_for:.0f} s ({reason}); giving up "
                            f"(exit {STORAGE_ERROR_EXIT})"
                        )
                        log.error("%s", self.storage_failed)
                        break
                    log.warning("storage unavailable (%s); retrying", reason)
                    self.stop.wait(self.config.poll_interval)
                    continue
                failing_since = None
                if claim is False and self.config.until_idle:
                    log.info("no work left; exiting")
                    break
                if not claim:
                    self.stop.wait(self.config.poll_interval)
                    continue
                if isinstance(claim, list):
                    self.stats.trials += sum(len(trials) for _, trials in claim)
                    run_batch(self, claim)
                    continue
                self.stats.trials += 1
                self._run_trial(*claim)
        except WorkerStopping:
            pass
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            self.stats.wall += time.monotonic() - start
            s = self.stats
            log.info(
                "worker done: %d trials (%d complete, %d pruned, %d crashed, %d interrupted)",
                s.trials, s.complete, s.pruned, s.failed, s.interrupted,
            )  # fmt: skip
        return self.stats.trials


def run_worker(
    storage_url: str,
    device: str = "cpu",
    until_idle: bool = False,
    stop: threading.Event | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    **options: Any,
) -> int:
    """Train queued trials of every open campaign, fairly across arms (batched where allowed).

    Args:
        storage_url: SQLAlchemy URL of the campaigns' storage.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        until_idle: Exit when no campaign has a queued or running trial left.
        stop: Set it to make the worker stop after the running trial.
        max_retries: Times a crashed trial is queued again before it is reported failed.
        **options: Other ``WorkerConfig`` fields (``heartbeat_interval``, ``grace_period``,
            ``poll_interval``, ``max_trials``, ``campaigns``, ``data_dir``, ``batch_trials``).

    Returns:
        The number of trials run.
    """
    config = WorkerConfig(
        storage_url=storage_url,
        device=device,
        until_idle=until_idle,
        max_retries=max_retries,
        **options,
    )
    return Worker(config, stop).run()


def storage_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is the storage failing (down, locked, full, read only) rather than a
    bug: SQLAlchemy's and Optuna's connection errors, and PostgreSQL refusing a write in a
    read-only transaction (``default_transaction_read_only``, a hot standby: SQLSTATE 25006,
    which SQLAlchemy raises as an ``InternalError``)."""
    if isinstance(exc, STORAGE_ERRORS):
        return True
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "25006"


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


def _safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    return sa.make_url(url).render_as_string(hide_password=True)


def _importing(frame: FrameType | None) -> bool:
    """Whether the interrupted code is running inside an ``import`` statement."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False
