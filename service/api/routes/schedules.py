"""`/schedules`: nightly (cron) campaign templates, their next firings, runs and trend."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from boundsweep.service.api.deps import EngineDep, StorageDep, documented_token
from boundsweep.service.api.models import (
    SCHEDULE_NAME_PATTERN,
    ScheduleCreate,
    SchedulePublic,
    ScheduleRunPublic,
    SchedulesPage,
    json_safe,
)
from boundsweep.service.api.routes.campaigns import Limit, Offset
from boundsweep.service.db import CampaignRecord, Schedule, ScheduleRun, utcnow
from boundsweep.service.scheduler import campaign_name_for, next_firings
from boundsweep.service.specs import build_spec
from boundsweep.studies.robustness import nightly_trend
from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

router = APIRouter(prefix="/schedules", tags=["schedules"])

ScheduleName = Annotated[str, Path(pattern=SCHEDULE_NAME_PATTERN, description="Schedule name")]
RECENT_RUNS = 5


def _recent_runs(session: Session, schedule_ids: list[int]) -> dict[int, list[ScheduleRun]]:
    """The `RECENT_RUNS` latest runs of each schedule, newest first: one query for a page."""
    if not schedule_ids:
        return {}
    rank = (
        sa.func.row_number()
        .over(partition_by=ScheduleRun.schedule_id, order_by=ScheduleRun.fire_time.desc())
        .label("rank")
    )
    ranked = (
        sa.select(ScheduleRun.id, rank).where(ScheduleRun.schedule_id.in_(schedule_ids)).subquery()
    )
    runs = session.scalars(
        sa.select(ScheduleRun)
        .join(ranked, ranked.c.id == ScheduleRun.id)
        .where(ranked.c.rank <= RECENT_RUNS)
        .order_by(ScheduleRun.schedule_id, ScheduleRun.fire_time.desc())
    )
    by_schedule: dict[int, list[ScheduleRun]] = {id_: [] for id_ in schedule_ids}
    for run in runs:
        by_schedule[run.schedule_id].append(run)
    return by_schedule


def _firings(schedule: Schedule) -> tuple[list[Any], str | None]:
    """The next firings, or none and why: one bad row must not fail the whole listing."""
    try:
        return next_firings(schedule.cron, schedule.timezone, utcnow()), schedule.error
    except Exception as exc:
        return [], schedule.error or f"cannot compute its firings: {type(exc).__name__}: {exc}"


def _public(schedule: Schedule, runs: list[ScheduleRun]) -> SchedulePublic:
    firings, error = _firings(schedule)
    return SchedulePublic(
        name=schedule.name,
        cron=schedule.cron,
        timezone=schedule.timezone,
        template=schedule.template,
        enabled=schedule.enabled,
        description=schedule.description,
        created_at=schedule.created_at,
        next_firings=firings,
        error=error,
        recent_runs=[
            ScheduleRunPublic(
                fire_time=run.fire_time,
                campaign=run.campaign_name,
                state=run.state,
                error=run.error,
                claimed_by=run.claimed_by,
                finished_at=run.finished_at,
            )
            for run in runs
        ],
    )


def _one(session: Session, schedule: Schedule) -> SchedulePublic:
    return _public(schedule, _recent_runs(session, [schedule.id])[schedule.id])


def _get(session: Session, name: str) -> Schedule:
    schedule = session.scalar(sa.select(Schedule).where(Schedule.name == name))
    if schedule is None:
        raise HTTPException(status_code=404, detail=f"Schedule {name!r} not found")
    return schedule


@router.post(
    "",
    status_code=201,
    dependencies=documented_token,
    summary="Create a schedule",
    response_model=SchedulePublic,
    responses={409: {"description": "A schedule with this name exists"}},
)
def create_schedule(
    body: ScheduleCreate, request: Request, response: Response, engine: EngineDep
) -> SchedulePublic:
    """Each firing of `cron` (in `timezone`) creates the campaign `<name>-YYYYMMDD` from
    `template`, exactly once. The template is validated now, as its first campaign."""
    example = campaign_name_for(body.name, body.timezone, utcnow())
    build_spec(body.template, name=example, loc=("body", "template"))
    schedule = Schedule(
        name=body.name,
        cron=body.cron,
        timezone=body.timezone,
        template=body.template,
        enabled=body.enabled,
        description=body.description,
        created_at=utcnow(),
    )
    with Session(engine) as session:
        session.add(schedule)
        try:
            session.commit()
        except IntegrityError:
            raise HTTPException(
                status_code=409, detail=f"Schedule {body.name!r} already exists"
            ) from None
        response.headers["Location"] = str(request.url_for("get_schedule", name=schedule.name).path)
        return _one(session, schedule)


@router.get("", summary="List schedules with their next firing times", response_model=SchedulesPage)
def list_schedules(engine: EngineDep, limit: Limit = 50, offset: Offset = 0) -> SchedulesPage:
    """Schedules by name."""
    with Session(engine) as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(Schedule)) or 0
        rows = session.scalars(
            sa.select(Schedule).order_by(Schedule.name).limit(limit).offset(offset)
        ).all()
        runs = _recent_runs(session, [row.id for row in rows])
        data = [_public(row, runs[row.id]) for row in rows]
    return SchedulesPage(data=data, count=count, limit=limit, offset=offset)


@router.get(
    "/{name}",
    summary="One schedule, its next firings and latest runs",
    response_model=SchedulePublic,
    responses={404: {"description": "No such schedule"}},
)
def get_schedule(name: ScheduleName, engine: EngineDep) -> SchedulePublic:
    """The schedule with its next three firing times and its five latest runs."""
    with Session(engine) as session:
        return _one(session, _get(session, name))


@router.delete(
    "/{name}",
    status_code=204,
    dependencies=documented_token,
    summary="Delete a schedule (its campaigns stay)",
    responses={404: {"description": "No such schedule"}},
)
def delete_schedule(name: ScheduleName, engine: EngineDep) -> Response:
    """Stops future firings; campaigns it created are kept."""
    with Session(engine) as session:
        schedule = _get(session, name)
        # SQLite enforces no foreign keys by default, so the runs go explicitly.
        session.execute(sa.delete(ScheduleRun).where(ScheduleRun.schedule_id == schedule.id))
        session.delete(schedule)
        session.commit()
    return Response(status_code=204)


@router.get(
    "/{name}/trend",
    summary="Nightly trend of the schedule's campaigns",
    responses={404: {"description": "No such schedule"}},
)
def schedule_trend(name: ScheduleName, engine: EngineDep, storage: StorageDep) -> JSONResponse:
    """`studies.robustness.nightly_trend` over the campaigns this schedule created, oldest
    first."""

    with Session(engine) as session:
        _get(session, name)
        campaigns = list(
            session.scalars(
                sa.select(CampaignRecord.name)
                .where(CampaignRecord.schedule_name == name, CampaignRecord.state != "creating")
                .order_by(CampaignRecord.created_at)
            )
        )
    trend: Any = nightly_trend(storage, campaigns) if campaigns else {"campaigns": []}
    return JSONResponse(json_safe(trend))
