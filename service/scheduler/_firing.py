"""One scheduler poll: find due firings and turn each into its dated campaign exactly once.

Exactly once, even with several scheduler processes: the `(schedule_id, fire_time)` unique
constraint of `bs_schedule_runs` is the lock. Every scheduler computes the same due firing;
each tries to insert its run row; the database lets one insert win and only that process
creates the campaign. A creation error is recorded on the run (state `failed`), never retried
in a loop and never lost.

At most once after downtime: only the latest due firing after the schedule's last run (or its
creation) is considered, so a scheduler down for a week creates one campaign on its return,
not seven.

One bad schedule never stops the others: a schedule whose firings cannot be computed (a cron
that never fires, a timezone that vanished from the system) is marked with its error in
`bs_schedules.error`, logged once, and skipped; every other schedule fires as usual, and the
mark is cleared as soon as the schedule computes again.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from boundsweep.service.db import CampaignRecord, Schedule, ScheduleRun, utcnow
from boundsweep.service.launch import CampaignBeingCreated, finish_abandoned, launch_campaign
from boundsweep.service.scheduler._cron import latest_firing
from boundsweep.service.specs import SpecError, build_spec
from boundsweep.studies.storage import CampaignExists, CampaignStorage
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

__all__ = ["Firing", "campaign_name_for", "fire_due", "scheduler_id"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Firing:
    """What one scheduler did with one firing it won."""

    schedule: str
    fire_time: datetime
    campaign: str
    state: str
    error: str | None = None


def scheduler_id() -> str:
    """`host:pid`, recorded on the runs this process claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def campaign_name_for(schedule_name: str, timezone: str, fire_time: datetime) -> str:
    """`<schedule>-YYYYMMDD`, the date of the firing in the schedule's own timezone."""
    return f"{schedule_name}-{fire_time.astimezone(ZoneInfo(timezone)):%Y%m%d}"


def _create(
    engine: sa.Engine,
    storage: CampaignStorage,
    schedule: Schedule,
    run_id: int,
    fire_time: datetime,
    campaign: str,
    takeover: bool = False,
) -> Firing:

    state, error = "created", None
    try:
        spec = build_spec(schedule.template, name=campaign, loc=("template",))
        launch_campaign(engine, storage, spec, source="schedule", schedule_name=schedule.name)
    except (CampaignExists, CampaignBeingCreated) as exc:
        # A second firing the same day (`exists`), or a takeover of a claim whose campaign is
        # there: `created` when it is this schedule's own (the claiming scheduler died after
        # its creation committed), else `exists`.
        made = takeover and _made_by(engine, campaign, schedule)
        state, error = ("created", None) if made else ("exists", str(exc))
    except SpecError as exc:  # a template that no longer validates: the user's to fix
        logger.warning(
            "schedule %s: template invalid, %s not created: %s", schedule.name, campaign, exc
        )
        state, error = "failed", f"invalid template: {exc}"
    except Exception as exc:  # recorded on the run for GET /schedules; the loop carries on
        logger.exception("schedule %s: creating %s failed", schedule.name, campaign)
        state, error = "failed", f"{type(exc).__name__}: {exc}"
    with engine.begin() as connection:
        connection.execute(
            sa.update(ScheduleRun)
            .where(ScheduleRun.id == run_id)
            .values(state=state, error=error, finished_at=utcnow())
        )
    return Firing(schedule.name, fire_time, campaign, state, error)


def _made_by(engine: sa.Engine, campaign: str, schedule: Schedule) -> bool:
    with engine.connect() as connection:
        return (
            connection.scalar(
                sa.select(sa.func.count())
                .select_from(CampaignRecord)
                .where(
                    CampaignRecord.name == campaign,
                    CampaignRecord.schedule_name == schedule.name,
                    CampaignRecord.state != "creating",
                )
            )
            == 1
        )


def _claim(
    engine: sa.Engine, schedule: Schedule, fire_time: datetime, campaign: str, now: datetime
) -> int | None:
    """Insert the run row; its id if this process won the firing, None if another did."""
    try:
        with engine.begin() as connection:
            return connection.scalar(
                sa.insert(ScheduleRun)
                .values(
                    schedule_id=schedule.id,
                    fire_time=fire_time,
                    campaign_name=campaign,
                    state="claimed",
                    claimed_by=scheduler_id(),
                    claimed_at=now,
                )
                .returning(ScheduleRun.id)
            )
    except IntegrityError:
        # Unique (schedule_id, fire_time): another scheduler won. Or the schedule was just
        # deleted (foreign key): nothing to fire either.
        return None


def _take_over_stale(
    engine: sa.Engine, now: datetime, stale_after: timedelta
) -> list[tuple[int, int, datetime, str]]:
    """Claims left `claimed` longer than `stale_after` (their process died): take them over.

    The compare-and-set on `claimed_at` lets exactly one live scheduler win each.
    """
    with engine.connect() as connection:
        stale = connection.execute(
            sa.select(
                ScheduleRun.id,
                ScheduleRun.schedule_id,
                ScheduleRun.fire_time,
                ScheduleRun.campaign_name,
                ScheduleRun.claimed_at,
            ).where(ScheduleRun.state == "claimed", ScheduleRun.claimed_at < now - stale_after)
        ).all()
    won = []
    for run_id, schedule_id, fire_time, campaign, claimed_at in stale:
        with engine.begin() as connection:
            result = connection.execute(
                sa.update(ScheduleRun)
                .where(
                    ScheduleRun.id == run_id,
                    ScheduleRun.state == "claimed",
                    ScheduleRun.claimed_at == claimed_at,
                )
                .values(claimed_by=scheduler_id(), claimed_at=now)
            )
        if result.rowcount == 1:
            won.append((run_id, schedule_id, fire_time, campaign))
    return won


def fire_due(
    engine: sa.Engine,
    storage: Callable[[], CampaignStorage],
    now: datetime,
    stale_after: timedelta = timedelta(minutes=10),
) -> list[Firing]:
    """Fire every enabled schedule whose latest firing at or before `now` has not run yet.

    Args:
        engine: Engine over the service database.
        storage: Returns the Optuna storage (opened only when something fires).
        now: The current time, timezone-aware.
        stale_after: Age after which another process's unfinished claim is taken over.

    Returns:
        The firings this process won (empty when nothing was due or others won).
    """
    with Session(engine) as session:
        last_run = (
            sa.select(ScheduleRun.schedule_id, sa.func.max(ScheduleRun.fire_time).label("last"))
            .group_by(ScheduleRun.schedule_id)
            .subquery()
        )
        rows = session.execute(
            sa.select(Schedule, last_run.c.last)
            .outerjoin(last_run, last_run.c.schedule_id == Schedule.id)
            .where(Schedule.enabled.is_(True))
            .order_by(Schedule.id)
        ).all()
    schedules = {}
    fired: list[Firing] = []
    for schedule, last in rows:
        schedules[schedule.id] = schedule
        try:
            fire_time = latest_firing(schedule.cron, schedule.timezone, now)
            campaign = campaign_name_for(schedule.name, schedule.timezone, fire_time)
        except Exception as exc:  # this schedule's alone: the others still fire
            _mark(engine, schedule, f"cannot compute its firings: {type(exc).__name__}: {exc}")
            continue
        _mark(engine, schedule, None)
        # Firings before the schedule existed never count; nor do those already run.
        anchor = schedule.created_at if last is None else max(schedule.created_at, _utc(last))
        if fire_time <= anchor:
            continue
        # Open the storage before claiming: if it cannot be opened, no claim is left behind
        # for another scheduler to take over only after `stale_after`.
        optuna_storage = storage()
        run_id = _claim(engine, schedule, fire_time, campaign, now)
        if run_id is not None:
            fired.append(_create(engine, optuna_storage, schedule, run_id, fire_time, campaign))
    for run_id, schedule_id, fire_time, campaign in _take_over_stale(engine, now, stale_after):
        schedule = schedules.get(schedule_id)
        if schedule is not None:
            fired.append(
                _create(engine, storage(), schedule, run_id, fire_time, campaign, takeover=True)
            )
    # Creations an older boundsweep left `creating` (this one never does): finished now.
    for name in finish_abandoned(engine, storage):
        logger.info("campaign %s: interrupted creation finished", name)
    return fired


def _mark(engine: sa.Engine, schedule: Schedule, error: str | None) -> None:
    """Record (or clear) why `schedule` cannot fire; log only when that changes."""
    if schedule.error == error:
        return
    with engine.begin() as connection:
        connection.execute(
            sa.update(Schedule).where(Schedule.id == schedule.id).values(error=error)
        )
    if error is None:
        logger.info("schedule %s computes its firings again", schedule.name)
    else:
        logger.warning(
            "schedule %s skipped, %s; fix or delete it (DELETE /api/v1/schedules/%s); the "
            "other schedules keep firing",
            schedule.name, error, schedule.name,
        )  # fmt: skip


def _utc(value: datetime) -> datetime:
    # max() over a UTCDateTime column comes back without its type on some dialects.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo("UTC"))
