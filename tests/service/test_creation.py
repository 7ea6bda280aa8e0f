"""A campaign is created whole or not at all, and its name is never taken by nothing.

The registry row, the arm studies, their attributes and the queued trials commit in one
transaction (`service.launch`). Each fault is applied at every step of that transaction (each
statement, the commit, just after it): a creator SIGKILLed (real processes), its database
connection cut (`pg_terminate_backend`; SQLite's statement aborted), a cancel arriving
mid-creation, a restart in a new PID namespace (the creator is PID 1 again, as in a
container). After each: the whole campaign or nothing, and a name left free is usable at once.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import optuna
import pytest
import sqlalchemy as sa
from boundsweep.service import launch
from boundsweep.service.api.errors import DATABASE_UNAVAILABLE
from boundsweep.service.db import CampaignRecord, Schedule, ScheduleRun, make_engine, migrate
from boundsweep.service.launch import CampaignBeingCreated, launch_campaign
from boundsweep.service.scheduler import run_scheduler
from boundsweep.service.settings import Settings
from boundsweep.studies.campaign import CampaignSpec, preset
from boundsweep.studies.storage import (
    CampaignExists,
    arm_studies,
    campaign_progress,
    claim_waiting_trial,
    list_campaigns,
    open_storage,
)
from sqlalchemy.orm import Session

from tests.service._interrupt import Steps, cut
from tests.service._live_api import TOKEN, api_client

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"
SPEC = CampaignSpec.model_validate(
    {
        "name": "atomic",
        "task": "digits_mlp",
        "seeds": [0, 1],
        "budget": {"epochs": 1, "max_steps": 2},
        "arms": [
            {"optimizer": "adabound", "space": {"final_lr": {"grid": [0.03, 0.3]}}},
            {"optimizer": "sgdm", "space": {"lr": {"grid": [0.01, 0.1, 1.0]}}},
        ],
    }
)


def _body(spec: CampaignSpec = SPEC, **changes: Any) -> dict[str, Any]:
    return {**spec.model_dump(mode="json"), **changes}


def _registry_state(url: str, name: str) -> str | None:
    engine = make_engine(url)
    with engine.connect() as connection:
        state = connection.scalar(
            sa.select(CampaignRecord.state).where(CampaignRecord.name == name)
        )
    engine.dispose()
    return state


def _assert_nothing(url: str, name: str = SPEC.name) -> None:
    """No trace of the campaign: no registry row, no study of its arms, not listed."""
    storage = open_storage(url)
    assert _registry_state(url, name) is None
    studies = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    assert [s for s in studies if s.startswith(f"{name}/")] == []
    assert name not in list_campaigns(storage)


def _assert_complete(url: str, spec: CampaignSpec = SPEC, state: str = "active") -> None:
    """Every arm there with every trial queued, registered, listed once."""
    storage = open_storage(url)
    arms = {arm.arm: arm for arm in campaign_progress(storage, spec.name)}
    assert sorted(arms) == sorted(arm.name for arm in spec.arms)
    for arm in spec.arms:
        planned = arm.planned_trials(spec.seeds)
        assert (arms[arm.name].total, arms[arm.name].waiting) == (planned, planned), arm.name
    assert list_campaigns(storage).count(spec.name) == 1
    assert _registry_state(url, spec.name) == state


def _steps_of_a_creation(url: str, spec: CampaignSpec = SPEC) -> list[str]:
    """The steps of creating a campaign of `spec`'s shape on `url` (made under another name)."""
    migrate(url)
    engine = make_engine(url)
    with Steps(lambda *_: None) as steps:
        launch_campaign(engine, open_storage(url), spec.model_copy(update={"name": "probe"}), "cli")
    engine.dispose()
    assert steps.names[-2:] == ["COMMIT", "committed"]
    return steps.names


def _submit(url: str, spec_file: Path, step: int, how: str, *prefix: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "tests.service._interrupt", url, str(spec_file),
         str(step), how],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _spec_file(tmp_path: Path, spec: CampaignSpec = SPEC) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(spec.to_yaml())
    return path


def test_one_post_is_one_transaction(storage_url: str) -> None:
    """A 5-arm POST over HTTP: one transaction (it was 73 transactions and 147 statements on
    PostgreSQL when each study, attr and step committed on its own)."""
    counted = {"transactions": 0, "statements": 0}

    def begin(*_: Any) -> None:
        counted["transactions"] += 1

    def statement(*_: Any) -> None:
        counted["statements"] += 1

    body = {"preset": "paper-robustness", "overrides": {"task": "digits_mlp"}}
    with api_client(storage_url) as api:
        assert api.post(f"{API}/campaigns", json={**body, "name": "warm-up"}).status_code == 201
        sa.event.listen(sa.engine.Engine, "begin", begin)
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", statement)
        try:
            answer = api.post(f"{API}/campaigns", json={**body, "name": "counted"})
        finally:
            sa.event.remove(sa.engine.Engine, "begin", begin)
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", statement)
        assert answer.status_code == 201, answer.text
        assert len(answer.json()["arms"]) == 5
        assert api.get(f"{API}/campaigns/counted").json()["total"] == 195
    assert counted["transactions"] == 1
    assert counted["statements"] <= 10  # a few multi-row statements, whatever the trials


@pytest.mark.postgres
def test_a_creator_killed_at_any_step_leaves_the_whole_campaign_or_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    steps = _steps_of_a_creation(postgres_url)
    spec_file = _spec_file(tmp_path)
    for step, name in enumerate(steps, start=1):
        killed = _submit(postgres_url, spec_file, step, "kill")
        _, err = killed.communicate(timeout=180)
        assert killed.returncode == -9, err
        if name == "committed":
            _assert_complete(postgres_url)
        else:  # and the name is free for the next round at once
            _assert_nothing(postgres_url)


def test_a_submit_killed_in_sqlite_leaves_the_whole_campaign_or_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    """SQLite's file lock and journal: a writer killed mid-transaction leaves nothing."""
    steps = _steps_of_a_creation(sqlite_url)
    spec_file = _spec_file(tmp_path)
    for name in ("COMMIT", "committed"):
        killed = _submit(sqlite_url, spec_file, steps.index(name) + 1, "kill")
        _, err = killed.communicate(timeout=180)
        assert killed.returncode == -9, err
        if name == "committed":
            _assert_complete(sqlite_url)
        else:
            _assert_nothing(sqlite_url)


def test_a_creation_cut_from_its_database_at_any_step_answers_503_and_leaves_nothing(
    storage_url: str,
) -> None:
    steps = _steps_of_a_creation(storage_url)
    with api_client(storage_url) as api:
        for step, name in enumerate(steps, start=1):
            with Steps(cut(step, storage_url)):
                answer = api.post(f"{API}/campaigns", json=_body())
            if name == "committed":
                assert answer.status_code == 201, (name, answer.text)
            else:
                assert answer.status_code == 503, (name, answer.text)
                assert answer.json() == {"detail": DATABASE_UNAVAILABLE}
                assert api.get(f"{API}/campaigns/{SPEC.name}").status_code == 404
                _assert_nothing(storage_url)
        assert api.post(f"{API}/campaigns", json=_body()).status_code == 409
    _assert_complete(storage_url)


@pytest.mark.postgres
def test_terminated_connections_while_creating_leave_each_campaign_whole_or_absent(
    postgres_url: str,
) -> None:
    """The client's probe: rounds of `pg_terminate_backend` while campaigns are POSTed."""
    database = sa.make_url(postgres_url).database
    stop = threading.Event()

    def terminate() -> None:
        admin = sa.create_engine(postgres_url, poolclass=sa.NullPool)
        with admin.connect() as conn:
            while not stop.is_set():
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                )
                conn.commit()
                time.sleep(random.uniform(0.005, 0.2))  # some POSTs get through
        admin.dispose()

    answers: dict[str, httpx.Response] = {}
    with api_client(postgres_url) as api:
        # A running API: its Optuna storage opened (by a first POST) before the rounds begin.
        assert api.post(f"{API}/campaigns", json=_body(name="warm-up")).status_code == 201
        terminator = threading.Thread(target=terminate)
        terminator.start()

        def seen(code: int) -> int:
            return sum(answer.status_code == code for answer in answers.values())

        try:  # until both outcomes were seen twice (a few dozen POSTs at most)
            while len(answers) < 60 and min(seen(201), seen(503)) < 2:
                name = f"cut-{len(answers)}"
                answers[name] = api.post(f"{API}/campaigns", json=_body(name=name))
        finally:
            stop.set()
            terminator.join()
        codes = [a.status_code for a in answers.values()]
        assert set(codes) == {201, 503}, [a.text for a in answers.values()]  # never a 500
        for name, answer in answers.items():
            if api.get(f"{API}/campaigns/{name}").status_code == 404:  # nothing: POST again
                assert answer.status_code == 503
                assert api.post(f"{API}/campaigns", json=_body(name=name)).status_code == 201
            _assert_complete(postgres_url, SPEC.model_copy(update={"name": name}))


def test_a_cancel_during_creation_is_refused_and_one_after_it_stops_every_arm(
    storage_url: str,
) -> None:
    spec = CampaignSpec.model_validate(
        {
            **_body(),
            "name": "wide",
            "arms": [
                {"name": f"arm{i}", "optimizer": "sgdm", "space": {"lr": 0.01}} for i in range(32)
            ],
        }
    )
    cancels: list[httpx.Response] = []
    with api_client(storage_url) as api, httpx.Client(base_url=api.base_url) as other:
        other.headers["Authorization"] = f"Bearer {TOKEN}"

        def cancel_now(_step: int, name: str, _conn: sa.Connection) -> None:
            if name.startswith("INSERT INTO trials"):  # the studies are written, not committed
                cancels.append(other.post(f"{API}/campaigns/wide/cancel", timeout=30))

        with Steps(cancel_now):
            created = api.post(f"{API}/campaigns", json=spec.model_dump(mode="json"))
        assert created.status_code == 201, created.text
        assert [c.status_code for c in cancels] == [404]  # no such campaign yet: nothing done
        detail = api.get(f"{API}/campaigns/wide").json()
        assert (detail["state"], detail["cancelled"]) == ("active", False)
        assert api.post(f"{API}/campaigns/wide/cancel").status_code == 200
        detail = api.get(f"{API}/campaigns/wide").json()
        assert (detail["state"], detail["cancelled"]) == ("cancelled", True)
    storage = open_storage(storage_url)
    arms = arm_studies(storage, "wide")
    assert len(arms) == 32 and all(arm.cancelled for arm in arms)
    assert [claim_waiting_trial(storage, arm.study_id) for arm in arms] == [None] * 32
    _assert_complete(storage_url, spec, state="cancelled")


def _in_new_pid_namespace() -> list[str]:
    """`unshare` as a container starts a process: PID 1 of a fresh PID namespace (and killed
    with `unshare` itself); without root, inside a user namespace."""
    command = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
    return command if os.geteuid() == 0 else [*command, "--user", "--map-root-user"]


def test_a_creator_restarted_in_a_new_pid_namespace_creates_its_campaign(
    storage_url: str, tmp_path: Path
) -> None:
    """As a container restarts: the first creator, PID 1, dies mid-creation; the second, PID 1
    again on the same host, creates the campaign (no 409 "being created")."""
    steps = _steps_of_a_creation(storage_url)
    spec_file = _spec_file(tmp_path)
    first = _submit(storage_url, spec_file, steps.index("INSERT INTO trials") + 1, "stop",
                    *_in_new_pid_namespace())  # fmt: skip
    assert first.stdout is not None
    assert first.stdout.readline().split() == ["pid", "1"]
    assert first.stdout.readline().strip() == "stopped"  # mid-creation, studies written
    first.kill()  # the namespace goes with it
    first.communicate(timeout=60)
    _assert_nothing(storage_url)
    second = _submit(storage_url, spec_file, 0, "kill", *_in_new_pid_namespace())
    out, err = second.communicate(timeout=180)
    assert second.returncode == 0, err
    assert out.splitlines()[0] == "pid 1" and "submitted campaign 'atomic'" in out
    _assert_complete(storage_url)


def _pause_at(step_name: str) -> tuple[Steps, threading.Event, threading.Event]:
    """Steps that stop a creation (once) at its step `step_name` until released."""
    reached, release = threading.Event(), threading.Event()

    def at(_step: int, name: str, _conn: sa.Connection) -> None:
        if name == step_name and not reached.is_set():
            reached.set()
            release.wait(60)

    return Steps(at), reached, release


def _create_in_thread(url: str, spec: CampaignSpec, outcome: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        engine = make_engine(url)
        try:
            outcome["record"] = launch_campaign(engine, open_storage(url), spec, "api")
        except Exception as exc:  # the test reads it
            outcome["error"] = exc
        finally:
            engine.dispose()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_two_creators_of_one_name_make_one_campaign(storage_url: str) -> None:
    migrate(storage_url)
    first: dict[str, Any] = {}
    steps, reached, release = _pause_at("INSERT INTO trials")
    with steps:
        thread = _create_in_thread(storage_url, SPEC, first)
        assert reached.wait(60)
        second: dict[str, Any] = {}
        other = _create_in_thread(storage_url, SPEC, second)
        time.sleep(0.5)
        assert other.is_alive()  # waiting for the first one's transaction
        release.set()
        thread.join(60)
        other.join(60)
    assert isinstance(first["record"], CampaignRecord)
    assert isinstance(second["error"], CampaignExists)
    _assert_complete(storage_url)


@pytest.mark.postgres
def test_a_creator_gone_silent_frees_the_name_after_the_idle_limit(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A creator whose host vanished mid-creation (its connection open, silent): another
    creator waits at most CREATION_LOCK_WAIT (409, retry), and once PostgreSQL has ended the
    silent transaction (CREATION_IDLE_LIMIT) the name is free."""
    monkeypatch.setattr(launch, "CREATION_LOCK_WAIT", timedelta(seconds=0.5))
    monkeypatch.setattr(launch, "CREATION_IDLE_LIMIT", timedelta(seconds=2))
    migrate(postgres_url)
    silent: dict[str, Any] = {}
    steps, reached, release = _pause_at("INSERT INTO trials")
    with steps:
        thread = _create_in_thread(postgres_url, SPEC, silent)
        assert reached.wait(60)
        engine = make_engine(postgres_url)
        storage = open_storage(postgres_url)
        with pytest.raises(CampaignBeingCreated, match="retry"):
            launch_campaign(engine, storage, SPEC, "api")
        time.sleep(2.5)  # past the idle limit: the server has ended the silent transaction
        launch_campaign(engine, storage, SPEC, "api")
        release.set()
        thread.join(60)
        engine.dispose()
    assert isinstance(silent["error"], sa.exc.DBAPIError)  # its connection was ended
    _assert_complete(postgres_url)


def test_a_foreign_study_with_an_arms_name_leaves_the_name_free(sqlite_url: str) -> None:
    migrate(sqlite_url)
    storage = open_storage(sqlite_url)
    foreign = optuna.create_study(storage=storage, study_name=f"{SPEC.name}/sgdm")
    foreign.enqueue_trial({"x": 1.0})
    engine = make_engine(sqlite_url)
    with pytest.raises(CampaignExists, match="a study named atomic/sgdm exists"):
        launch_campaign(engine, storage, SPEC, source="api")
    engine.dispose()
    assert _registry_state(sqlite_url, SPEC.name) is None  # the name is free again
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == [f"{SPEC.name}/sgdm"]


def _upgrade_to(url: str, revision: str) -> None:
    from alembic import command
    from boundsweep.service.db._migrate import _alembic_config

    engine = make_engine(url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), revision)
    engine.dispose()


def _left_by_an_older_version(url: str, spec: CampaignSpec, arms_made: int) -> None:
    """What an older boundsweep (one commit per step) left when killed mid-creation: its
    registry row `creating` with its plan and a live-looking lease, the first `arms_made` arms
    complete, the next one's study made with its first attribute only."""
    storage = open_storage(url)
    for index, arm in enumerate(spec.arms[: arms_made + 1]):
        study = optuna.create_study(storage=storage, study_name=f"{spec.name}/{arm.name}",
                                    direction="maximize")  # fmt: skip
        study.set_user_attr("boundsweep:arm", arm.name)
        if index == arms_made:
            break
        if index == 0:
            study.set_user_attr("boundsweep:spec", spec.model_dump(mode="json"))
        study.set_user_attr("boundsweep:cancelled", False)
        study.set_user_attr("boundsweep:created_at", "2026-12-01T00:00:00+00:00")
        for params in arm.queued_params(spec.seeds):
            study.enqueue_trial(params)
        study.set_user_attr("boundsweep:campaign", spec.name)
    engine = make_engine(url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO bs_campaigns (name, task, created_at, created_by, spec, state,"
                " creator, heartbeat_at) VALUES (:name, :task, :now, 'api', :spec, 'creating',"
                " 'other-host:1', :now)"
            ),
            {"name": spec.name, "task": spec.task, "now": datetime.now(UTC).replace(tzinfo=None),
             "spec": spec.model_dump_json()},
        )  # fmt: skip
    engine.dispose()


def test_a_creation_an_older_version_left_is_finished(storage_url: str) -> None:
    """Rows left `creating` before the upgrade: finished whole from their plan, by a POST of
    the name (201; its process is gone, whatever its lease said) or by a scheduler's poll."""
    _upgrade_to(storage_url, "0003")
    polled = SPEC.model_copy(update={"name": "polled"})
    _left_by_an_older_version(storage_url, SPEC, arms_made=1)
    _left_by_an_older_version(storage_url, polled, arms_made=0)
    with api_client(storage_url) as api:  # migrates to head
        assert api.get(f"{API}/campaigns/{SPEC.name}").json()["state"] == "creating"
        retry = api.post(f"{API}/campaigns", json=_body())
        assert retry.status_code == 201, retry.text
        assert api.post(f"{API}/campaigns", json=_body()).status_code == 409
    _assert_complete(storage_url)
    run_scheduler(Settings(database_url=storage_url), once=True)
    _assert_complete(storage_url, polled)
    engine = make_engine(storage_url)
    with engine.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns("bs_campaigns")}
        plans = connection.scalars(sa.select(CampaignRecord.spec)).all()
    engine.dispose()
    assert {"creator", "heartbeat_at"}.isdisjoint(columns) and plans == [None, None]


_SCHEDULER = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    from boundsweep.service.scheduler import run_scheduler
    from boundsweep.service.settings import Settings
    from tests.service._interrupt import Steps, kill

    url, now, step = sys.argv[1:]
    with Steps(kill(int(step))):
        run_scheduler(
            Settings(database_url=url), once=True, clock=lambda: datetime.fromisoformat(now)
        )
    """
)


@pytest.mark.postgres
@pytest.mark.parametrize("step_name", ["INSERT INTO trials", "committed"])
def test_a_scheduler_killed_inside_creation_still_yields_the_complete_campaign(
    postgres_url: str, step_name: str
) -> None:
    template = {
        "preset": "paper-robustness",
        "overrides": {"task": "digits_mlp", "grid_width": 1, "seeds": [0]},
    }
    expected = preset(
        "paper-robustness", name="nightly-20260102", task="digits_mlp", grid_width=1, seeds=[0]
    )
    step = _steps_of_a_creation(postgres_url, expected).index(step_name) + 1
    engine = make_engine(postgres_url)
    with Session(engine) as session:
        session.add(
            Schedule(name="nightly", cron="0 3 * * *", timezone="UTC", template=template,
                     created_at=datetime(2026, 1, 1, tzinfo=UTC))
        )  # fmt: skip
        session.commit()
    fire = datetime(2026, 1, 2, 3, 0, 5, tzinfo=ZoneInfo("UTC"))
    killed = subprocess.run(
        [sys.executable, "-c", _SCHEDULER, postgres_url, fire.isoformat(), str(step)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    # The other scheduler takes the dead one's claim over once it is stale, and records the
    # campaign as created: made now, or found made by the dead one.
    settings = Settings(database_url=postgres_url, scheduler_stale_seconds=600)
    run_scheduler(settings, once=True, clock=lambda: fire + timedelta(minutes=1))
    fired = run_scheduler(settings, once=True, clock=lambda: fire + timedelta(minutes=11))
    assert [(f.campaign, f.state) for f in fired] == [("nightly-20260102", "created")]
    with engine.connect() as connection:
        runs = connection.execute(sa.select(ScheduleRun.campaign_name, ScheduleRun.state)).all()
    engine.dispose()
    assert [tuple(r) for r in runs] == [("nightly-20260102", "created")]
    _assert_complete(postgres_url, expected)
