"""Every endpoint over a real uvicorn server on loopback, against SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import optuna
import pytest
import sqlalchemy as sa
from boundsweep.service.db import register_campaign
from boundsweep.studies.campaign import preset
from boundsweep.studies.storage import arm_study_name, create_campaign, open_storage
from optuna.trial import FrozenTrial, TrialState

from tests.service._live_api import api_client

API = "/api/v1"
SMALL_PRESET = {
    "preset": "paper-robustness",
    "name": "robust-digits",
    "overrides": {"task": "digits_mlp", "grid_width": 2, "seeds": [0, 1]},
}


@pytest.fixture
def api(storage_url: str) -> Iterator[httpx.Client]:
    with api_client(storage_url) as client:
        yield client


def _finish(storage_url: str, study_name: str, values: list[float], seconds: float) -> None:
    """Add completed trials with a known wall time, as a worker would leave them.

    Each takes the params (and distributions) of one of the arm's queued trials.
    """
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage_url))
    plans = study.get_trials(states=(TrialState.WAITING,))
    assert len(plans) >= len(values)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for plan, value in zip(plans, values, strict=False):
        study.add_trial(
            FrozenTrial(
                number=0,
                trial_id=0,
                state=TrialState.COMPLETE,
                value=value,
                values=None,
                datetime_start=start,
                datetime_complete=start + timedelta(seconds=seconds),
                params=plan.params,
                distributions=plan.distributions,
                user_attrs={
                    "seed": plan.params["seed"],
                    "status": "completed",
                    "curve": [{"epoch": 1}],
                },
                system_attrs={},
                intermediate_values={},
            )
        )


def test_probes_and_openapi(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    paths = api.get("/openapi.json").json()["paths"]
    assert {f"{API}/campaigns", f"{API}/campaigns/{{name}}/trials", f"{API}/schedules"} <= set(
        paths
    )
    assert api.get("/docs").status_code == 200


def test_create_from_preset_then_read_it_back(api: httpx.Client) -> None:
    created = api.post(f"{API}/campaigns", json=SMALL_PRESET)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{API}/campaigns/robust-digits"
    assert created.json()["created_by"] == "api"

    detail = api.get(created.headers["location"]).json()
    expected = preset("paper-robustness", name="robust-digits", **SMALL_PRESET["overrides"])
    assert [a["name"] for a in detail["arm_status"]] == [a.name for a in expected.arms]
    for arm, spec_arm in zip(detail["arm_status"], expected.arms, strict=True):
        assert arm["total"] == arm["waiting"] == spec_arm.planned_trials(expected.seeds)
        assert arm["best_value"] is None and arm["eta_seconds"] is None
    assert detail["total"] == expected.total_trials() and detail["finished"] == 0

    listed = api.get(f"{API}/campaigns").json()
    assert listed["count"] == 1 and listed["data"][0]["name"] == "robust-digits"


def test_a_spec_body_and_duplicate_names(api: httpx.Client) -> None:
    spec = {
        "name": "gamma-sweep",
        "task": "digits_mlp",
        "seeds": [0],
        "arms": [{"optimizer": "adabound", "space": {"gamma": {"grid": [1e-4, 1e-3, 1e-2]}}}],
    }
    assert api.post(f"{API}/campaigns", json=spec).status_code == 201
    again = api.post(f"{API}/campaigns", json=spec)
    assert again.status_code == 409
    assert again.json() == {"detail": "Campaign 'gamma-sweep' already exists"}
    assert api.get(f"{API}/campaigns/gamma-sweep").json()["total"] == 3


def test_progress_counts_best_value_and_eta(api: httpx.Client, storage_url: str) -> None:
    assert api.post(f"{API}/campaigns", json=SMALL_PRESET).status_code == 201
    study = arm_study_name("robust-digits", "adam")
    _finish(storage_url, study, [0.5, 0.9, 0.7], seconds=12.0)
    storage = open_storage(storage_url)
    study_id = storage.get_study_id_from_name(study)
    storage.create_new_trial(study_id)  # one RUNNING trial: one busy worker

    adam = next(
        a
        for a in api.get(f"{API}/campaigns/robust-digits").json()["arm_status"]
        if a["name"] == "adam"
    )
    assert adam["complete"] == 3 and adam["running"] == 1 and adam["waiting"] == 4
    assert adam["best_value"] == pytest.approx(0.9)  # digits accuracy: maximised
    assert adam["mean_trial_seconds"] == pytest.approx(12.0, abs=0.01)
    # mean 12 s x (4 waiting + 1 running) / 1 running worker
    assert adam["eta_seconds"] == pytest.approx(60.0, abs=0.1)


def test_trials_are_paged_and_filtered(api: httpx.Client, storage_url: str) -> None:
    assert api.post(f"{API}/campaigns", json=SMALL_PRESET).status_code == 201
    sgdm = arm_study_name("robust-digits", "sgdm")
    storage = open_storage(storage_url)
    plan = optuna.load_study(study_name=sgdm, storage=storage).get_trials()[0].params
    _finish(storage_url, sgdm, [0.1, 0.2], seconds=1.0)

    everything = api.get(f"{API}/campaigns/robust-digits/trials", params={"limit": 500}).json()
    total = api.get(f"{API}/campaigns/robust-digits").json()["total"]
    assert everything["count"] == total == len(everything["data"])

    page = api.get(
        f"{API}/campaigns/robust-digits/trials", params={"limit": 3, "offset": 2, "arm": "adabound"}
    ).json()
    assert [t["number"] for t in page["data"]] == [2, 3, 4]
    assert {t["arm"] for t in page["data"]} == {"adabound"}
    # Queued grid trials show the configuration and seed they will run.
    assert all({"final_lr", "gamma", "seed"} <= set(t["params"]) for t in page["data"])

    done = api.get(
        f"{API}/campaigns/robust-digits/trials", params={"arm": "sgdm", "state": "complete"}
    ).json()
    assert done["count"] == 2
    assert [t["value"] for t in done["data"]] == [0.1, 0.2]
    assert done["data"][0]["params"] == plan
    assert done["data"][0]["user_attrs"] == {
        "seed": plan["seed"],
        "status": "completed",
    }  # no curve


def test_cancel_keeps_every_trial(api: httpx.Client) -> None:
    assert api.post(f"{API}/campaigns", json=SMALL_PRESET).status_code == 201
    before = api.get(f"{API}/campaigns/robust-digits").json()
    cancelled = api.post(f"{API}/campaigns/robust-digits/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    after = api.get(f"{API}/campaigns/robust-digits").json()
    assert after["cancelled"] is True and after["eta_seconds"] is None
    assert [a["waiting"] for a in after["arm_status"]] == [
        a["waiting"] for a in before["arm_status"]
    ]
    assert api.post(f"{API}/campaigns/nope/cancel").status_code == 404


def test_report_as_json_and_html(api: httpx.Client, storage_url: str) -> None:
    assert api.post(f"{API}/campaigns", json=SMALL_PRESET).status_code == 201
    report = api.get(f"{API}/campaigns/robust-digits/report")
    assert report.status_code == 200 and report.json()["campaign"] == "robust-digits"
    page = api.get(f"{API}/campaigns/robust-digits/report", params={"format": "html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "robust-digits" in page.text
    assert api.get(f"{API}/campaigns/nope/report").status_code == 404


def test_campaigns_created_straight_in_the_storage_are_listed(
    api: httpx.Client, storage_url: str
) -> None:
    spec = preset("paper-robustness", name="from-cli", task="digits_mlp", grid_width=1, seeds=[0])
    create_campaign(open_storage(storage_url), spec)
    listed = api.get(f"{API}/campaigns").json()
    assert [(c["name"], c["created_by"]) for c in listed["data"]] == [("from-cli", "cli")]
    assert listed["count"] == 1
    assert api.get(f"{API}/campaigns/from-cli").json()["total"] == spec.total_trials()
    assert api.get(f"{API}/campaigns/from-cli/trials").json()["count"] == spec.total_trials()
    # GETs only read: the registry still has no row; the first write about it (a cancel) adds it.
    assert _registered(storage_url) == []
    assert api.post(f"{API}/campaigns/from-cli/cancel").json()["state"] == "cancelled"
    assert _registered(storage_url) == [("from-cli", "cli", "cancelled")]
    listed = api.get(f"{API}/campaigns").json()
    assert [(c["name"], c["state"]) for c in listed["data"]] == [("from-cli", "cancelled")]


def _registered(url: str) -> list[tuple[str, str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT name, created_by, state FROM bs_campaigns"))
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()


def test_the_registry_takes_a_name_once(storage_url: str) -> None:
    # The first writer learns it won, the second that it lost: what `launch_campaign` relies on.
    spec = preset("paper-robustness", name="taken", task="digits_mlp", grid_width=1, seeds=[0])
    assert register_campaign(storage_url, spec, source="api") is True
    assert register_campaign(storage_url, spec, source="cli") is False


def test_campaign_listing_pages(api: httpx.Client) -> None:
    for i in range(3):
        body = {
            **SMALL_PRESET,
            "name": f"c{i}",
            "overrides": {"task": "digits_mlp", "grid_width": 1, "seeds": [0]},
        }
        assert api.post(f"{API}/campaigns", json=body).status_code == 201
    page = api.get(f"{API}/campaigns", params={"limit": 2, "offset": 0}).json()
    rest = api.get(f"{API}/campaigns", params={"limit": 2, "offset": 2}).json()
    assert page["count"] == rest["count"] == 3
    names = [c["name"] for c in page["data"] + rest["data"]]
    assert sorted(names) == ["c0", "c1", "c2"] and names[0] == "c2"  # newest first


def test_schedules_create_list_get_delete(api: httpx.Client) -> None:
    body = {
        "name": "nightly",
        "cron": "0 3 * * *",
        "timezone": "Europe/Berlin",
        "template": {
            "preset": "paper-robustness",
            "overrides": {"task": "digits_mlp", "grid_width": 1},
        },
    }
    created = api.post(f"{API}/schedules", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{API}/schedules/nightly"
    firings = [datetime.fromisoformat(t) for t in created.json()["next_firings"]]
    assert len(firings) == 3 and all((t.hour, t.minute) == (3, 0) for t in firings)
    assert all(t.utcoffset() in (timedelta(hours=1), timedelta(hours=2)) for t in firings)
    assert firings == sorted(firings) and firings[0] > datetime.now(UTC)

    assert api.post(f"{API}/schedules", json=body).status_code == 409
    assert [s["name"] for s in api.get(f"{API}/schedules").json()["data"]] == ["nightly"]
    assert api.get(f"{API}/schedules/nightly").json()["recent_runs"] == []
    assert api.get(f"{API}/schedules/nightly/trend").status_code == 200
    assert api.delete(f"{API}/schedules/nightly").status_code == 204
    assert api.get(f"{API}/schedules/nightly").status_code == 404
    assert api.delete(f"{API}/schedules/nightly").status_code == 404


@pytest.mark.postgres
def test_a_lost_database_is_503_not_500(postgres_url: str) -> None:
    from benchmarks._postgres import admin_engine

    with api_client(postgres_url) as client:
        assert client.get("/readyz").status_code == 200
        admin = admin_engine()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{postgres_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        admin.dispose()
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        listed = client.get(f"{API}/campaigns")
        assert listed.status_code == 503
        assert listed.json() == {"detail": "Database unavailable; retry later"}
        assert client.get("/healthz").status_code == 200


@pytest.mark.postgres
def test_every_campaign_route_answers_503_when_the_database_is_lost(postgres_url: str) -> None:
    """Routes that reach the database through Optuna (which wraps the driver's error in its
    own ``StorageInternalError``) answer 503 like the rest, not 500."""
    from benchmarks._postgres import admin_engine

    # No status cache: a status read within its second before the loss would be served again.
    with api_client(postgres_url, status_cache_seconds=0) as client:
        assert client.post(f"{API}/campaigns", json=SMALL_PRESET).status_code == 201
        name = SMALL_PRESET["name"]
        # Every route has opened its storage once, as in a running service.
        for path in ("", "/trials", "/report"):
            assert client.get(f"{API}/campaigns/{name}{path}").status_code == 200
        admin = admin_engine()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{postgres_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        admin.dispose()
        answers = {
            path: client.get(f"{API}/campaigns/{name}{path}")
            for path in ("", "/trials", "/report", "/report?format=html")
        }
        answers["requeue"] = client.post(f"{API}/campaigns/{name}/requeue")
        answers["cancel"] = client.post(f"{API}/campaigns/{name}/cancel")
        assert {path: a.status_code for path, a in answers.items()} == dict.fromkeys(answers, 503)
        assert all(
            a.json() == {"detail": "Database unavailable; retry later"} for a in answers.values()
        )


def test_schedule_listing_shows_each_schedules_latest_runs_in_one_query(
    storage_url: str,
) -> None:
    import sqlalchemy as sa
    from boundsweep.service.api.routes.schedules import RECENT_RUNS, list_schedules
    from boundsweep.service.db import Schedule, ScheduleRun, make_engine, migrate
    from sqlalchemy.orm import Session

    migrate(storage_url)
    engine = make_engine(storage_url)
    base = datetime(2026, 1, 1, 2, tzinfo=UTC)
    runs_per_schedule = [7, 2, 0] * 4  # twelve schedules
    with Session(engine) as session:
        for i, n_runs in enumerate(runs_per_schedule):
            schedule = Schedule(
                name=f"s{i:02d}", cron="0 3 * * *", timezone="UTC", template={}, created_at=base
            )
            session.add(schedule)
            session.flush()
            for day in range(n_runs):
                session.add(
                    ScheduleRun(
                        schedule_id=schedule.id,
                        fire_time=base + timedelta(days=day),
                        campaign_name=f"s{i:02d}-day{day}",
                        state="created",
                        claimed_by="test",
                    )
                )
        session.commit()

    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    small = list_schedules(engine, limit=3, offset=0)
    small_count, statements[:] = len(statements), []
    page = list_schedules(engine, limit=50, offset=0)
    assert len(statements) == small_count  # not one more query per schedule
    engine.dispose()

    assert page.count == 12 and [s.name for s in small.data] == ["s00", "s01", "s02"]
    for i, schedule in enumerate(page.data):
        expected = [f"s{i:02d}-day{day}" for day in range(runs_per_schedule[i])][::-1]
        assert [run.campaign for run in schedule.recent_runs] == expected[:RECENT_RUNS]
