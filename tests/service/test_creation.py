"""No campaign stays half-made: a creator killed (SIGKILL) at any step of creation leaves a
campaign that the next creator to find it finishes, with all its arms and trials. Real
processes on PostgreSQL (the store several processes share), and one API round on both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from boundsweep.service.db import CampaignRecord, Schedule, ScheduleRun, make_engine, migrate
from boundsweep.service.launch import (
    KILL_AT_ENV,
    CampaignBeingCreated,
    creator_id,
    launch_campaign,
)
from boundsweep.service.scheduler import run_scheduler
from boundsweep.service.settings import Settings
from boundsweep.studies.campaign import CampaignSpec, preset
from boundsweep.studies.storage import (
    CampaignExists,
    campaign_progress,
    list_campaigns,
    open_storage,
)
from sqlalchemy.orm import Session

from tests.service._live_api import api_client

SPEC = CampaignSpec.model_validate(
    {
        "name": "resumable",
        "task": "digits_mlp",
        "seeds": [0, 1],
        "budget": {"epochs": 1, "max_steps": 2},
        "arms": [
            {"optimizer": "adabound", "space": {"final_lr": {"grid": [0.03, 0.3]}}},
            {"optimizer": "sgdm", "space": {"lr": {"grid": [0.01, 0.1, 1.0]}}},
        ],
    }
)
STEPS = 1 + 4 * len(SPEC.arms) + 1
"""registered, four steps per arm (study, attributes, trials, done), created."""


def _killed_submit(url: str, tmp_path: Path, step: int) -> None:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(SPEC.to_yaml())
    done = subprocess.run(
        [sys.executable, "-m", "boundsweep.service.cli", "submit", str(spec_file), "--storage", url],
        env={**os.environ, KILL_AT_ENV: str(step)}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr


def _state(url: str, name: str = SPEC.name) -> str | None:
    engine = make_engine(url)
    with engine.connect() as connection:
        state = connection.scalar(
            sa.select(CampaignRecord.state).where(CampaignRecord.name == name)
        )
    engine.dispose()
    return state


def _assert_complete(url: str, spec: CampaignSpec = SPEC) -> None:
    storage = open_storage(url)
    arms = {arm.arm: arm for arm in campaign_progress(storage, spec.name)}
    assert sorted(arms) == sorted(arm.name for arm in spec.arms)
    for arm in spec.arms:
        planned = arm.planned_trials(spec.seeds)
        assert (arms[arm.name].total, arms[arm.name].waiting) == (planned, planned), arm.name
    assert list_campaigns(storage) == [spec.name]
    assert _state(url, spec.name) == "active"


@pytest.mark.postgres
@pytest.mark.parametrize("step", range(1, STEPS + 1))
def test_a_submit_killed_at_any_step_is_finished_by_the_next_creator(
    postgres_url: str, tmp_path: Path, step: int
) -> None:
    _killed_submit(postgres_url, tmp_path, step)
    assert _state(postgres_url) == "creating"
    if step % 2:  # the scheduler's poll finds it
        run_scheduler(Settings(database_url=postgres_url), once=True)
    else:  # a retry of the same submit
        engine = make_engine(postgres_url)
        launch_campaign(engine, open_storage(postgres_url), SPEC, source="cli")
        engine.dispose()
    _assert_complete(postgres_url)


def test_a_retried_post_finishes_the_creation_its_process_left(
    storage_url: str, tmp_path: Path
) -> None:
    migrate(storage_url)
    if storage_url.startswith("postgresql"):
        _killed_submit(storage_url, tmp_path, 4)  # inside the first arm
    else:
        _killed_submit(storage_url, tmp_path, 7)  # inside the second arm
    with api_client(storage_url) as api:
        assert api.get(f"/api/v1/campaigns/{SPEC.name}").json()["state"] == "creating"
        retry = api.post("/api/v1/campaigns", json=SPEC.model_dump(mode="json"))
        assert retry.status_code == 201, retry.text
        again = api.post("/api/v1/campaigns", json=SPEC.model_dump(mode="json"))
        assert again.status_code == 409
    _assert_complete(storage_url)


def test_a_live_creation_is_not_taken_over(sqlite_url: str) -> None:
    migrate(sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.begin() as connection:  # this very process is "creating" it
        connection.execute(
            sa.insert(CampaignRecord).values(
                name=SPEC.name, task=SPEC.task, created_at=datetime.now(UTC),
                created_by="api", spec=SPEC.model_dump(mode="json"), state="creating",
                creator=creator_id(), heartbeat_at=datetime.now(UTC),
            )
        )  # fmt: skip
    with pytest.raises(CampaignBeingCreated, match="is being created"):
        launch_campaign(engine, open_storage(sqlite_url), SPEC, source="api")
    assert run_scheduler(Settings(database_url=sqlite_url), once=True) == []
    assert list_campaigns(open_storage(sqlite_url)) == []
    engine.dispose()


def test_a_foreign_study_with_an_arms_name_undoes_the_creation(sqlite_url: str) -> None:
    import optuna

    migrate(sqlite_url)
    storage = open_storage(sqlite_url)
    foreign = optuna.create_study(storage=storage, study_name=f"{SPEC.name}/sgdm")
    foreign.enqueue_trial({"x": 1.0})
    engine = make_engine(sqlite_url)
    with pytest.raises(CampaignExists, match="a study named"):
        launch_campaign(engine, storage, SPEC, source="api")
    engine.dispose()
    assert _state(sqlite_url) is None  # the name is free again
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == [f"{SPEC.name}/sgdm"]


_SCHEDULER = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    from boundsweep.service.scheduler import run_scheduler
    from boundsweep.service.settings import Settings

    url, now = sys.argv[1:]
    run_scheduler(Settings(database_url=url), once=True, clock=lambda: datetime.fromisoformat(now))
    """
)


@pytest.mark.postgres
@pytest.mark.parametrize("step", [1, 3, 7, 12])
def test_a_scheduler_killed_inside_creation_still_yields_the_complete_campaign(
    postgres_url: str, step: int
) -> None:
    template = {
        "preset": "paper-robustness",
        "overrides": {"task": "digits_mlp", "grid_width": 1, "seeds": [0]},
    }
    migrate(postgres_url)
    engine = make_engine(postgres_url)
    with Session(engine) as session:
        session.add(
            Schedule(name="nightly", cron="0 3 * * *", timezone="UTC", template=template,
                     created_at=datetime(2026, 1, 1, tzinfo=UTC))
        )  # fmt: skip
        session.commit()
    fire = datetime(2026, 1, 2, 3, 0, 5, tzinfo=ZoneInfo("UTC"))
    killed = subprocess.run(
        [sys.executable, "-c", _SCHEDULER, postgres_url, fire.isoformat()],
        env={**os.environ, KILL_AT_ENV: str(step)}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The other scheduler: its next poll finishes the creation, and once the dead one's claim
    # is stale it takes the firing over and records the campaign as created.
    settings = Settings(database_url=postgres_url, scheduler_stale_seconds=600)
    run_scheduler(settings, once=True, clock=lambda: fire + timedelta(minutes=1))
    fired = run_scheduler(settings, once=True, clock=lambda: fire + timedelta(minutes=11))
    assert [(f.campaign, f.state) for f in fired] == [("nightly-20260102", "created")]
    with engine.connect() as connection:
        runs = connection.execute(sa.select(ScheduleRun.campaign_name, ScheduleRun.state)).all()
    engine.dispose()
    assert [tuple(r) for r in runs] == [("nightly-20260102", "created")]
    expected = preset(
        "paper-robustness", name="nightly-20260102", task="digits_mlp", grid_width=1, seeds=[0]
    )
    _assert_complete(postgres_url, expected)
