"""The worker loop: decide what to claim next, and when to stop.

It claims the next queued trials of the arm furthest behind (one, or where the task and the
arm's sampler allow it up to K of the campaign's arms at once, one statement per arm) and
hands them to the runner (``workers._run``), which trains, beats for and finishes them. A
trial is only ever taken from the queue that ``create_campaign`` filled (never created
afresh), which is what keeps every arm's count exact however many workers race. A worker that
dies is noticed by the others, who fail its trials and queue them again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import FrameType
from typing import Any

import optuna
import sqlalchemy as sa
from boundsweep.optimizers import NotInstalledError
from boundsweep.studies.objective import WORKER_ID, make_objective, pruner_for, sampler_for
from boundsweep.studies.storage import (
    DEFAULT_MAX_RETRIES,
    ArmProgress,
    arm_progress,
    claim_trials,
    fail_stale_trials,
    load_spec,
    open_storage,
    record_not_installed,
    storage_error_reason,
    talk_directly,
)
from boundsweep.workers._config import (
    STORAGE_ERROR_EXIT,
    STORAGE_PATIENCE,
    WorkerConfig,
    WorkerStats,
)
from boundsweep.workers._heartbeat import STORAGE_ERRORS
from boundsweep.workers._run import (
    RESULT_RETRY,
    Arm,
    Claimed,
    Outcome,
    Runner,
    batch_limit,
    fair_share,
)
from boundsweep.workers._stopping import WorkerStopping
from optuna.trial import TrialState

__all__ = [
    "ARMS_REFRESH",
    "RESULT_RETRY",
    "STORAGE_ERROR_EXIT",
    "STORAGE_PATIENCE",
    "Worker",
    "WorkerConfig",
    "WorkerStats",
    "run_worker",
    "storage_refused",
]

log = logging.getLogger("boundsweep.worker")
ARMS_REFRESH = 5.0
"""Seconds a worker trusts its counts of every arm before reading them again."""


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
        self._arms: dict[int, Arm] = {}
        self.runner = Runner(
            self.storage, config, self.stats, self.stop, self.grace_period, objective_factory
        )
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

    def _claim(self) -> list[Claimed] | None | bool:
        """The trials to run next (``Runner.run``); ``None`` if there is no work now;
        ``False`` if none is left."""
        rows = self._open_arms()
        for row in self._by_fairness(rows):
            if not self._installed(row):
                continue
            claimed = self._claim_from(row, rows)
            if claimed:
                return claimed
        rows = [r for r in rows if r.campaign not in self.not_installed]
        if any(r.waiting or r.running for r in rows):
            self._arms_read_at = -math.inf  # look again next time (crashed trials come back)
            return None  # others' running trials may still crash and come back
        return False

    def _limit(self, row: ArmProgress, rows: list[ArmProgress]) -> int:
        """How many trials to claim, starting with ``row``'s arm (1: one by one).

        Left automatic, a CPU worker claims no more than its share of the campaign's open
        trials (``fair_share``): workers started together then finish together.
        """
        arm = self._arm(row)
        limit = batch_limit(
            self.config.batch_trials, self.config.device, arm.spec, row.arm,
            self.runner.unbatchable,
        )  # fmt: skip
        if self.config.max_trials is not None:
            limit = min(limit, self.config.max_trials - self.stats.trials)
        if self.config.batch_trials is None:
            limit = min(limit, fair_share(rows, row.campaign, self.config.device))
        return max(1, limit)

    def _claim_from(self, row: ArmProgress, rows: list[ArmProgress]) -> list[Claimed]:
        """Up to ``_limit`` trials: the arm's own first, in one claim, then while there is
        room the other batchable arms' of its campaign, the furthest behind first, one claim
        each (all arms of a campaign share its task and budget, so they stack as one model).
        ``[]`` if others took them all, or the campaign was cancelled."""
        limit = self._limit(row, rows)
        spec = self._arm(row).spec
        arms = [row]
        if limit > 1:
            config, unbatchable = self.config, self.runner.unbatchable
            arms += [
                r
                for r in self._by_fairness(rows)
                if r.campaign == row.campaign
                and r.study_id != row.study_id
                and batch_limit(config.batch_trials, config.device, spec, r.arm, unbatchable) > 1
            ]
        claimed: list[Claimed] = []
        for other in arms:
            arm = self._arm(other)  # loaded before its trials are claimed
            trials = claim_trials(
                self.storage, other.study_id, limit - len(claimed), claimer=WORKER_ID,
                grace_period=self.grace_period,
            )  # fmt: skip
            if trials:
                self._count(other, waiting=-len(trials), running=len(trials))
                claimed += [Claimed(other, arm, trial) for trial in trials]
            else:  # others took the rest, or it was cancelled
                self._count(other, waiting=-other.waiting)
            if len(claimed) >= limit:
                break
        return claimed

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

    def _arm(self, row: ArmProgress) -> Arm:
        if row.study_id not in self._arms:
            spec = load_spec(self.storage, row.campaign)
            study = optuna.load_study(
                study_name=row.study_name,
                storage=self.storage,
                sampler=sampler_for(spec.arm(row.arm), row.study_name),
                pruner=pruner_for(spec),
            )
            # The claim reads each trial, and its ``optuna.Trial`` is built from that read:
            # Optuna's trial cache would only re-read every unfinished trial before it
            # accepts a claimed one. The study talks to the database directly.
            talk_directly(study, self.storage)
            self._arms[row.study_id] = Arm(spec, study)
        return self._arms[row.study_id]

    def _settle(self, outcome: Outcome, campaign: str) -> None:
        """Apply what the runner did to the worker's counts (and its list of campaigns it
        cannot run)."""
        for row, state in outcome.finished:
            if state == TrialState.COMPLETE:
                self._count(row, running=-1, complete=1)
            else:
                self._count(row, running=-1, pruned=1)
        if outcome.failed or outcome.unrunnable:
            self._arms_read_at = -math.inf  # the counts changed in ways best read back
        if outcome.unrunnable is not None:
            self.unrunnable[campaign] = outcome.unrunnable
            self._arm_rows = {k: r for k, r in self._arm_rows.items() if r.campaign != campaign}
            log.error(
                "campaign %s: this worker cannot run its trials, they stay queued for one "
                "that can: %s", campaign, outcome.unrunnable,
            )  # fmt: skip

    # --- the loop --------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.warning("signal %d: stopping after giving the running trial back", signum)
        self.stop.set()
        if self.runner.training and not _importing(frame):
            self.runner.training = False
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
                self.stats.trials += len(claim)
                self._settle(self.runner.run(claim), claim[0].row.campaign)
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
