"""`/campaigns`: create (spec or preset), list, progress, trials, cancel, report."""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any, Literal

import anyio
import sqlalchemy as sa
from boundsweep.optimizers import NotInstalledError
from boundsweep.service.api.deps import (
    EngineDep,
    ReportCacheDep,
    StatusCacheDep,
    StorageDep,
    documented_token,
)
from boundsweep.service.api.json_body import document_error_items
from boundsweep.service.api.models import (
    NAME_PATTERN,
    ArmStatus,
    CampaignDetail,
    CampaignPublic,
    CampaignsPage,
    RequeuePublic,
    TrialPublic,
    TrialsPage,
    TrialState,
    json_safe,
)
from boundsweep.service.api.report_cache import ReportCache
from boundsweep.service.db import (
    CampaignRecord,
    insert_campaign_rows,
    record_row,
    unregistered_campaigns,
)
from boundsweep.service.launch import CampaignBeingCreated, cancel, launch_campaign
from boundsweep.service.specs import PresetRequest, SpecError, build_spec
from boundsweep.studies.campaign import STORED, ArmSpec, CampaignSpec, DocumentError, parse_json
from boundsweep.studies.robustness import (
    CampaignNotFoundError,
    analyze_campaign,
    campaign_state,
    render_html,
)
from boundsweep.studies.storage import (
    TRIAL_STATES,
    ArmProgress,
    CampaignExists,
    CampaignNotFound,
    CampaignStorage,
    api_state,
    arm_progress,
    arm_studies,
    campaign_eta_seconds,
    campaign_specs,
    load_spec,
    not_installed_on,
    requeue_failed,
    trial_rows,
)
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import TypeAdapter
from sqlalchemy.orm import Session

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

TRIAL_SUMMARY_ATTRS = (
    "seed",
    "status",
    "val_metric",
    "test_metric",
    "wall_time",
    "device",
    "worker",
)
"""Scalar user attrs worth a column in a listing; `curve` and `hparams` stay out (size)."""

CampaignName = Annotated[str, Path(pattern=NAME_PATTERN, description="The campaign's name")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")]


CREATE_BODY_SCHEMA = "CampaignCreate"


def create_body_components() -> dict[str, Any]:
    """OpenAPI components of the create body: a `CampaignSpec` or a `PresetRequest`.

    The route reads the body itself (to tell the two forms apart and name the bad field), so
    FastAPI cannot derive this schema; `service.app` adds it to the document.
    """
    schema = TypeAdapter(CampaignSpec | PresetRequest).json_schema(
        ref_template="#/components/schemas/{model}"
    )
    components = schema.pop("$defs", {})
    components[CREATE_BODY_SCHEMA] = {"oneOf": schema["anyOf"]}
    return components


_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": f"#/components/schemas/{CREATE_BODY_SCHEMA}"},
                "examples": {
                    "preset": {
                        "value": {
                            "preset": "paper-robustness",
                            "name": "robustness-digits",
                            "overrides": {"task": "digits_mlp", "grid_width": 3},
                        }
                    },
                    "spec": {
                        "value": {
                            "name": "adabound-gamma",
                            "task": "digits_mlp",
                            "budget": {"epochs": 2},
                            "seeds": [0, 1],
                            "arms": [
                                {
                                    "optimizer": "adabound",
                                    "space": {"gamma": {"grid": [1e-4, 1e-3, 1e-2]}},
                                }
                            ],
                        }
                    },
                },
            }
        },
    }
}


def _spec(engine: sa.Engine, record: CampaignRecord) -> CampaignSpec | None:
    """The campaign's spec, loaded as every reader loads it (``studies.storage.load_spec``,
    from its arm studies); a creation an older boundsweep left unfinished shows the plan
    its row holds."""
    try:
        return load_spec(engine, record.name)
    except CampaignNotFound:
        return _plan(record)


def _plan(record: CampaignRecord) -> CampaignSpec | None:
    """The plan an unfinished creation of an older boundsweep is finished from (its row's)."""
    if record.spec is None:
        return None
    try:
        return CampaignSpec.model_validate(record.spec, context=STORED)
    except NotInstalledError:
        return None  # listed without its spec; its detail says what is missing


def _public(record: CampaignRecord, spec: CampaignSpec | None) -> CampaignPublic:
    return CampaignPublic(
        name=record.name,
        task=record.task,
        state=record.state,
        created_at=record.created_at,
        created_by=record.created_by,
        schedule=record.schedule_name,
        arms=[] if spec is None else [arm.name for arm in spec.arms],
    )


def _record(session: Session, name: str) -> CampaignRecord:
    """The registry row of `name`, or (unsaved) the campaign as the storage alone has it; 404
    if neither has it. Reads only: a GET never writes."""
    row = session.get(CampaignRecord, name)
    if row is None:
        known = set(session.scalars(sa.select(CampaignRecord.name)))
        found = [r for r in unregistered_campaigns(session.get_bind(), known) if r.name == name]
        row = found[0] if found else None
    if row is None:
        raise HTTPException(status_code=404, detail=f"Campaign {name!r} not found")
    return row


def _register(session: Session, record: CampaignRecord) -> None:
    """Enter a campaign the storage alone had (on a write about it)."""
    if record not in session:
        insert_campaign_rows(session.connection(), [record_row(record)])
        session.commit()


def _create(engine: sa.Engine, storage: CampaignStorage, body: Any) -> CampaignPublic:
    spec = build_spec(body)
    try:
        record = launch_campaign(engine, storage, spec, source="api")
    except CampaignExists:
        raise HTTPException(
            status_code=409, detail=f"Campaign {spec.name!r} already exists"
        ) from None
    except CampaignBeingCreated as exc:
        raise HTTPException(status_code=409, detail=str(exc).capitalize()) from None
    return _public(record, spec)


@router.post(
    "",
    status_code=201,
    dependencies=documented_token,
    summary="Create a campaign from a spec or a preset",
    response_model=CampaignPublic,
    openapi_extra=_CREATE_BODY,
    responses={
        401: {"description": "No bearer token"},
        403: {"description": "Wrong bearer token"},
        409: {"description": "A campaign with this name exists, or is being created"},
        413: {"description": "Body over the size limit"},
        422: {"description": "Invalid spec: `loc` names the field"},
        503: {"description": "The database is unavailable; nothing was created"},
    },
)
async def create_campaign(
    request: Request, response: Response, engine: EngineDep, storage: StorageDep
) -> CampaignPublic:
    """Create one Optuna study per arm and queue every trial, in one transaction: the whole
    campaign or nothing.

    The body is either a campaign spec (`name`, `task`, `budget`, `seeds`, `arms`, `pruner`,
    `description`) or `{"preset": ..., "name": ..., "overrides": {...}}`.
    """
    try:
        body = parse_json(await request.body())
    except DocumentError as exc:  # CheckJsonBody answers these first; kept for direct calls
        raise SpecError(document_error_items(exc)) from None
    created = await run_in_threadpool(_create, engine, storage, body)
    response.headers["Location"] = str(request.url_for("get_campaign", name=created.name).path)
    return created


@router.get("", summary="List campaigns, newest first", response_model=CampaignsPage)
def list_campaigns(engine: EngineDep, limit: Limit = 50, offset: Offset = 0) -> CampaignsPage:
    """Campaigns from the registry, and those created straight in the storage (CLI, any Optuna
    client) that it has no row for; nothing is written."""
    with Session(engine) as session:
        known = set(session.scalars(sa.select(CampaignRecord.name)))
        extra = unregistered_campaigns(engine, known)
        count = len(known) + len(extra)
        # The unregistered ones are merged in by the same order (usually there are none).
        rows = list(
            session.scalars(
                sa.select(CampaignRecord)
                .order_by(CampaignRecord.created_at.desc(), CampaignRecord.name)
                .limit(limit + offset if extra else limit)
                .offset(0 if extra else offset)
            )
        )
        if extra:
            rows = sorted(rows + extra, key=lambda r: r.name)
            rows.sort(key=lambda r: r.created_at, reverse=True)
            rows = rows[offset : offset + limit]
        specs = campaign_specs(engine)  # the specs, from the arm studies, in one query
        data = [_public(row, specs.get(row.name) or _plan(row)) for row in rows]
    return CampaignsPage(data=data, count=count, limit=limit, offset=offset)


@router.get(
    "/{name}",
    summary="A campaign with every arm's progress and ETA",
    response_model=CampaignDetail,
    responses={404: {"description": "No such campaign"}},
)
def get_campaign(name: CampaignName, engine: EngineDep, cache: StatusCacheDep) -> Response:
    """Per arm: waiting/running/complete/pruned/failed of total, best value so far, ETA.

    Answers may be up to `BOUNDSWEEP_STATUS_CACHE_SECONDS` (1 s) old.
    """
    # The cache keeps the rendered JSON, so a hit costs no query and no serialisation.
    body = cache.get(name, lambda: _campaign_detail(engine, name).model_dump_json().encode())
    return Response(content=body, media_type="application/json")


def _campaign_detail(engine: sa.Engine, name: str) -> CampaignDetail:
    with Session(engine) as session:
        record = _record(session, name)
    spec = _spec(engine, record)
    arms = [] if spec is None else spec.arms
    found = {arm.arm: arm for arm in arm_progress(engine, name)}
    progress = [found.get(a.name) or _no_study(name, a) for a in arms]
    optimizers = {a.name: a.optimizer for a in arms}
    statuses = [
        ArmStatus(
            name=arm.arm,
            optimizer=optimizers.get(arm.arm),
            study_name=arm.study_name,
            direction=arm.direction,
            total=arm.total,
            best_value=json_safe(arm.best),
            mean_trial_seconds=arm.mean_trial_seconds,
            eta_seconds=arm.eta_seconds,
            running_epochs=arm.running_epochs,
            **arm.counts,
        )
        for arm in progress
    ]
    public = _public(record, spec)
    cancelled = record.state == "cancelled" or any(arm.cancelled for arm in progress)
    return CampaignDetail(
        **public.model_dump(exclude={"state"}),
        state="cancelled" if cancelled else record.state,
        description="" if spec is None else spec.description,
        cancelled=cancelled,
        total=sum(s.total for s in statuses),
        finished=sum(s.complete + s.pruned + s.failed for s in statuses),
        running_epochs=sum(s.running_epochs for s in statuses),
        eta_seconds=None if cancelled else campaign_eta_seconds(progress),
        arm_status=statuses,
        spec={} if spec is None else json_safe(spec.model_dump(mode="json")),
        not_installed_on=not_installed_on(engine, name),
    )


def _no_study(campaign: str, arm: ArmSpec) -> ArmProgress:
    """An arm whose study is not there (yet): nothing counted."""
    return ArmProgress(
        campaign=campaign, arm=arm.name, study_name=f"{campaign}/{arm.name}", study_id=-1,
        optimizer=arm.optimizer, sampler=arm.sampler, direction=None, total=0, waiting=0,
        running=0, complete=0, pruned=0, fail=0, retried=0, best=None, mean_trial_seconds=None,
        cancelled=False,
    )  # fmt: skip


@router.get(
    "/{name}/trials",
    summary="One page of the campaign's trials",
    response_model=TrialsPage,
    responses={404: {"description": "No such campaign"}, 422: {"description": "Unknown arm"}},
)
def list_trials(
    name: CampaignName,
    engine: EngineDep,
    arm: Annotated[str | None, Query(pattern=NAME_PATTERN, description="Only this arm")] = None,
    state: Annotated[TrialState | None, Query(description="Only trials in this state")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> TrialsPage:
    """Trials ordered by arm then number, with params and scalar user attributes (no curves)."""
    with Session(engine) as session:
        record = _record(session, name)
    spec = _spec(engine, record)
    arm_names = [] if spec is None else [a.name for a in spec.arms]
    if arm is not None and arm not in arm_names:
        raise SpecError(
            [
                {
                    "loc": ["query", "arm"],
                    "msg": f"no arm {arm!r} in {name}; valid arms: {', '.join(arm_names)}",
                    "type": "value_error",
                }
            ]
        )
    wanted = [arm] if arm is not None else arm_names
    study_arms = {a.study_id: a.arm for a in arm_studies(engine, name) if a.arm in wanted}
    if not study_arms:
        return TrialsPage(data=[], count=0, limit=limit, offset=offset)
    count, rows = trial_rows(
        engine,
        sorted(study_arms),
        None if state is None else TRIAL_STATES[state],
        limit,
        offset,
        TRIAL_SUMMARY_ATTRS,
    )
    data = [
        TrialPublic(
            arm=study_arms[row.study_id],
            number=row.number,
            state=api_state(row.state),
            value=json_safe(row.value),
            params=json_safe(row.params),
            user_attrs=json_safe(row.user_attrs),
            datetime_start=row.datetime_start,
            datetime_complete=row.datetime_complete,
        )
        for row in rows
    ]
    return TrialsPage(data=data, count=count, limit=limit, offset=offset)


@router.post(
    "/{name}/cancel",
    dependencies=documented_token,
    summary="Stop workers claiming the campaign's trials; nothing is deleted",
    response_model=CampaignPublic,
    responses={404: {"description": "No such campaign"}},
)
def cancel_campaign(
    name: CampaignName, engine: EngineDep, storage: StorageDep, cache: StatusCacheDep
) -> CampaignPublic:
    """Waiting trials stay waiting, running ones finish; the campaign stays readable."""
    with Session(engine) as session:
        _register(session, _record(session, name))
    try:
        cancel(engine, storage, name)
    except CampaignNotFound:
        raise HTTPException(status_code=404, detail=f"Campaign {name!r} has no studies") from None
    finally:
        cache.forget(name)
    with Session(engine) as session:
        record = _record(session, name)
    return _public(record, _spec(engine, record))


@router.post(
    "/{name}/requeue",
    dependencies=documented_token,
    summary="Queue the campaign's failed trials again (same params), each exactly once",
    response_model=RequeuePublic,
    responses={404: {"description": "No such campaign"}, 422: {"description": "Unknown arm"}},
)
def requeue_campaign(
    name: CampaignName,
    engine: EngineDep,
    storage: StorageDep,
    cache: StatusCacheDep,
    arm: Annotated[str | None, Query(pattern=NAME_PATTERN, description="Only this arm")] = None,
) -> RequeuePublic:
    """Every trial that failed for good gets a WAITING copy with a fresh retry allowance; a
    second call re-queues nothing already re-queued."""
    with Session(engine) as session:
        _record(session, name)
    try:
        counts = requeue_failed(storage, name, arm=arm)
    except CampaignNotFound:
        raise HTTPException(status_code=404, detail=f"Campaign {name!r} has no studies") from None
    except KeyError as exc:
        raise SpecError(
            [{"loc": ["query", "arm"], "msg": str(exc.args[0]), "type": "value_error"}]
        ) from None
    finally:
        cache.forget(name)
    return RequeuePublic(name=name, requeued=counts, total=sum(counts.values()))


@router.get(
    "/{name}/report",
    summary="The robustness report (JSON, or the HTML page with ?format=html)",
    responses={
        200: {"content": {"application/json": {}, "text/html": {}}},
        404: {"description": "No such campaign"},
    },
)
async def campaign_report(
    request: Request,
    name: CampaignName,
    engine: EngineDep,
    reports: ReportCacheDep,
    format: Annotated[Literal["json", "html"], Query(description="json or html")] = "json",
    metric: Annotated[
        Literal["val", "test"], Query(description="Analyse the validation or the test metric")
    ] = "val",
) -> Response:
    """`studies.robustness.analyze_campaign` over the campaign's trials.

    Computed once per campaign state (trial counts per arm and state) and shared: concurrent
    requests for the same report wait for one computation, later ones get it from the cache
    until a trial finishes (`BOUNDSWEEP_REPORT_CACHE_BYTES`, `BOUNDSWEEP_REPORT_CONCURRENCY`).
    """
    # Report requests get threads of their own, a few per computation allowed: a crowd of
    # them waits here, on the event loop, and never holds the threads the other routes use.
    answer = functools.partial(_report, engine, reports, name, metric, format)
    return await anyio.to_thread.run_sync(answer, limiter=request.app.state.report_threads)


def _report(
    engine: sa.Engine, reports: ReportCache, name: str, metric: str, format: str
) -> Response:
    with Session(engine) as session:
        _record(session, name)
    try:
        key = (name, metric, campaign_state(engine, name))
        report = reports.get(("json", *key), lambda: _report_json(engine, name, metric))
        if format == "html":
            page = reports.get(("html", *key), lambda: _report_page(report))
            return Response(page, media_type="text/html; charset=utf-8")
    except CampaignNotFoundError:
        raise HTTPException(status_code=404, detail=f"Campaign {name!r} has no studies") from None
    return Response(report, media_type="application/json")


def _report_json(engine: sa.Engine, name: str, metric: str) -> bytes:
    report = json_safe(analyze_campaign(engine, name, metric=metric))
    # As JSONResponse writes it, so the cached bytes are what the route returned before.
    return json.dumps(report, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _report_page(report_json: bytes) -> bytes:
    return render_html(json.loads(report_json)).encode()
