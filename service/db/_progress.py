"""Per-arm progress of a campaign in a handful of grouped SQL queries over Optuna's tables.

Optuna's own path (`get_n_trials`, `get_all_study_summaries`) loads every trial and takes
seconds at 5,000 trials; the status endpoint needs counts, a best value and a mean wall time,
which the database computes in one `GROUP BY`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sqlalchemy as sa
from boundsweep.studies.storage import optuna_tables as ot

__all__ = ["TRIAL_STATES", "ArmProgress", "CampaignProgress", "arm_study_ids", "campaign_progress"]

# API name -> Optuna's TrialState name as stored in `trials.state`.
TRIAL_STATES = {
    "waiting": "WAITING",
    "running": "RUNNING",
    "complete": "COMPLETE",
    "pruned": "PRUNED",
    "failed": "FAIL",
}
_API_STATE = {stored: api for api, stored in TRIAL_STATES.items()}


@dataclass
class ArmProgress:
    """Counts, best value and ETA of one arm (one Optuna study).

    `eta_seconds` = mean wall time of the arm's completed trials × (waiting + running) /
    running trials (the workers busy on the arm); None when nothing completed yet, nothing
    runs, or nothing is left.
    """

    arm: str
    study_name: str
    exists: bool
    direction: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TRIAL_STATES, 0))
    best_value: float | None = None
    mean_trial_seconds: float | None = None
    cancelled: bool = False
    retried: int = 0  # crashed attempts queued again; not in `counts["failed"]` nor `total`

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def remaining(self) -> int:
        return self.counts["waiting"] + self.counts["running"]

    @property
    def eta_seconds(self) -> float | None:
        running = self.counts["running"]
        if self.mean_trial_seconds is None or not running or not self.remaining:
            return None
        return self.mean_trial_seconds * self.remaining / running


@dataclass
class CampaignProgress:
    """Every arm's progress; the campaign ETA pools the arms (see `eta_seconds`)."""

    arms: list[ArmProgress]

    @property
    def cancelled(self) -> bool:
        return any(arm.cancelled for arm in self.arms)

    @property
    def eta_seconds(self) -> float | None:
        """Σ over arms of (mean trial time × remaining trials) / all running trials.

        Workers move between arms, so the campaign's running trials are the worker count that
        drains the remaining work of every arm. None when nothing runs, or when an arm with
        work left has no completed trial to time yet.
        """
        running = sum(arm.counts["running"] for arm in self.arms)
        work = 0.0
        for arm in self.arms:
            if not arm.remaining:
                continue
            if arm.mean_trial_seconds is None:
                return None
            work += arm.mean_trial_seconds * arm.remaining
        if not running or not work:
            return None
        return work / running


def _seconds_between(start: sa.ColumnElement, end: sa.ColumnElement, dialect: str):
    if dialect == "postgresql":
        return sa.extract("epoch", end - start)
    # SQLite keeps timestamps as text; julianday() turns them into fractional days.
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def arm_study_ids(connection: sa.Connection, study_names: list[str]) -> dict[str, int]:
    """Study name → study id, for those of `study_names` that exist."""
    rows = connection.execute(
        sa.select(ot.studies.c.study_name, ot.studies.c.study_id).where(
            ot.studies.c.study_name.in_(study_names)
        )
    )
    return dict(rows.all())


def campaign_progress(connection: sa.Connection, arms: dict[str, str]) -> CampaignProgress:
    """Progress of every arm, in three queries (studies, grouped trials, retried copies).

    Args:
        connection: A connection to the storage database.
        arms: Arm name → study name (`<campaign>/<arm>`), in the spec's order.
    """
    s, d, a = ot.studies, ot.study_directions, ot.study_user_attributes
    studies = connection.execute(
        sa.select(s.c.study_id, s.c.study_name, d.c.direction, a.c.value_json)
        .outerjoin(d, sa.and_(d.c.study_id == s.c.study_id, d.c.objective == 0))
        .outerjoin(a, sa.and_(a.c.study_id == s.c.study_id, a.c.key == ot.ATTR_CANCELLED))
        .where(s.c.study_name.in_(list(arms.values())))
    ).all()
    arm_of = {study: arm for arm, study in arms.items()}
    progress = {
        study_id: ArmProgress(
            arm=arm_of[name],
            study_name=name,
            exists=True,
            direction=None if direction is None else direction.name.lower(),
            cancelled=bool(cancelled is not None and json.loads(cancelled)),
        )
        for study_id, name, direction, cancelled in studies
    }
    if progress:
        _count(connection, progress)
    by_study = {p.study_name: p for p in progress.values()}
    return CampaignProgress(
        arms=[
            by_study.get(study) or ArmProgress(arm=arm, study_name=study, exists=False)
            for arm, study in arms.items()
        ]
    )


def _count(connection: sa.Connection, progress: dict[int, ArmProgress]) -> None:
    t, v = ot.trials, ot.trial_values
    seconds = _seconds_between(t.c.datetime_start, t.c.datetime_complete, connection.dialect.name)
    grouped = (
        sa.select(
            t.c.study_id,
            t.c.state,
            sa.func.count(),
            sa.func.min(v.c.value),
            sa.func.max(v.c.value),
            sa.func.avg(seconds),
        )
        .select_from(t.outerjoin(v, sa.and_(v.c.trial_id == t.c.trial_id, v.c.objective == 0)))
        .where(t.c.study_id.in_(list(progress)))
        .group_by(t.c.study_id, t.c.state)
    )
    for study_id, state, count, low, high, mean_seconds in connection.execute(grouped):
        arm = progress[study_id]
        api_state = _API_STATE.get(state.name)
        if api_state is None:
            continue
        arm.counts[api_state] = int(count)
        if api_state == "complete":
            arm.best_value = high if arm.direction == "maximize" else low
            arm.mean_trial_seconds = None if mean_seconds is None else float(mean_seconds)
    _discount_retried(connection, progress)


def _discount_retried(connection: sa.Connection, progress: dict[int, ArmProgress]) -> None:
    """Take crashed attempts that were queued again out of `failed`.

    A retry is a new trial carrying the `failed_trial` system attribute (the number of the
    attempt it replaces), so each such copy stands for one FAIL row that is not a lost trial:
    counting both would overstate `failed` and `total`.
    """
    t, sa_attrs = ot.trials, ot.trial_system_attributes
    copies = (
        sa.select(t.c.study_id, sa.func.count())
        .select_from(t.join(sa_attrs, sa_attrs.c.trial_id == t.c.trial_id))
        .where(t.c.study_id.in_(list(progress)), sa_attrs.c.key == "failed_trial")
        .group_by(t.c.study_id)
    )
    for study_id, count in connection.execute(copies):
        arm = progress[study_id]
        arm.retried = min(int(count), arm.counts["failed"])
        arm.counts["failed"] -= arm.retried
