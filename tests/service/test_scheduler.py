"""The scheduler: each firing creates `<schedule>-YYYYMMDD` exactly once, across processes and
after downtime, against a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from boundsweep.service.db import CampaignRecord, Schedule, ScheduleRun, make_engine, migrate
from boundsweep.service.scheduler import check_cron, check_timezone, latest_firing, run_scheduler
from boundsweep.service.settings import Settings
from boundsweep.studies.campaign import preset
from boundsweep.studies.storage import create_campaign, list_campaigns, open_storage
from sqlalchemy.orm import Session

BERLIN = ZoneInfo("Europe/Berlin")
TEMPLATE = {
    "preset": "paper-robustness",
    "overrides": {"task": "digits_mlp", "grid_width": 1, "seeds": [0]},
}


def _add_schedule(
    url: str,
    created_at: datetime,
    template: dict[str, Any] = TEMPLATE,
    name: str = "nightly",
    cron: str = "0 3 * * *",
    timezone: str = "Europe/Berlin",
) -> None:
    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        session.add(
            Schedule(
                name=name,
                cron=cron,
                timezone=timezone,
                template=template,
                created_at=created_at,
            )
        )
        session.commit()
    engine.dispose()


def _poll(url: str, now: datetime, **settings: Any) -> list[tuple[str, str]]:
    fired = run_scheduler(Settings(database_url=url, **settings), once=True, clock=lambda: now)
    return [(f.campaign, f.state) for f in fired]


def _runs(url: str) -> list[tuple[str, str, str | None]]:
    engine = make_engine(url)
    with Session(engine) as session:
        rows = session.execute(
            sa.select(ScheduleRun.campaign_name, ScheduleRun.state, ScheduleRun.error).order_by(
                ScheduleRun.fire_time
            )
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_a_firing_creates_its_dated_campaign_once(storage_url: str) -> None:
    _add_schedule(storage_url, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    before = datetime(2026, 1, 1, 2, 59, tzinfo=BERLIN)
    assert _poll(storage_url, before) == []
    after = datetime(2026, 1, 1, 3, 0, 30, tzinfo=BERLIN)
    assert _poll(storage_url, after) == [("nightly-20260101", "created")]
    assert _poll(storage_url, after + timedelta(hours=5)) == []

    assert list_campaigns(open_storage(storage_url)) == ["nightly-20260101"]
    engine = make_engine(storage_url)
    with Session(engine) as session:
        record = session.get(CampaignRecord, "nightly-20260101")
        assert (record.created_by, record.schedule_name, record.state) == (
            "schedule",
            "nightly",
            "active",
        )
    engine.dispose()


def test_downtime_catches_up_only_the_latest_missed_firing(storage_url: str) -> None:
    _add_schedule(storage_url, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    # Down from before the first firing until a week later: one campaign, the latest.
    back = datetime(2026, 1, 8, 12, 0, tzinfo=BERLIN)
    assert _poll(storage_url, back) == [("nightly-20260108", "created")]
    assert _poll(storage_url, back) == []
    assert _poll(storage_url, back + timedelta(days=1)) == [("nightly-20260109", "created")]
    assert [r[0] for r in _runs(storage_url)] == ["nightly-20260108", "nightly-20260109"]


def test_firings_before_the_schedule_existed_never_count(sqlite_url: str) -> None:
    _add_schedule(sqlite_url, created_at=datetime(2026, 1, 1, 4, 0, tzinfo=BERLIN))
    assert _poll(sqlite_url, datetime(2026, 1, 1, 23, 0, tzinfo=BERLIN)) == []
    assert _poll(sqlite_url, datetime(2026, 1, 2, 3, 1, tzinfo=BERLIN)) == [
        ("nightly-20260102", "created")
    ]


def test_a_failed_creation_is_recorded_and_not_retried(sqlite_url: str) -> None:
    # Written past the API (which would refuse it): a template that no longer validates.
    _add_schedule(
        sqlite_url,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        template={"task": "retired_task", "arms": [{"optimizer": "adam"}]},
    )
    now = datetime(2026, 1, 1, 3, 5, tzinfo=BERLIN)
    assert _poll(sqlite_url, now) == [("nightly-20260101", "failed")]
    assert _poll(sqlite_url, now + timedelta(minutes=30)) == []
    [(campaign, state, error)] = _runs(sqlite_url)
    assert (campaign, state) == ("nightly-20260101", "failed")
    assert "retired_task" in error and "valid tasks" in error


def test_a_campaign_already_there_is_recorded_as_existing(sqlite_url: str) -> None:
    _add_schedule(sqlite_url, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    spec = preset("paper-robustness", name="nightly-20260101", task="digits_mlp", grid_width=1)
    create_campaign(open_storage(sqlite_url), spec)
    assert _poll(sqlite_url, datetime(2026, 1, 1, 3, 5, tzinfo=BERLIN)) == [
        ("nightly-20260101", "exists")
    ]


def test_a_claim_left_by_a_dead_scheduler_is_taken_over(sqlite_url: str) -> None:
    _add_schedule(sqlite_url, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    fire_time = datetime(2026, 1, 1, 3, 0, tzinfo=BERLIN)
    engine = make_engine(sqlite_url)
    with Session(engine) as session:
        session.add(
            ScheduleRun(
                schedule_id=1,
                fire_time=fire_time,
                campaign_name="nightly-20260101",
                state="claimed",
                claimed_by="dead-host:1",
                claimed_at=fire_time,
            )
        )
        session.commit()
    engine.dispose()
    soon = fire_time + timedelta(seconds=30)
    assert _poll(sqlite_url, soon, scheduler_stale_seconds=600) == []  # maybe still working
    late = fire_time + timedelta(minutes=11)
    assert _poll(sqlite_url, late, scheduler_stale_seconds=600) == [("nightly-20260101", "created")]
    assert list_campaigns(open_storage(sqlite_url)) == ["nightly-20260101"]


_RACER = textwrap.dedent(
    """
    import sys, time, pathlib
    from datetime import datetime
    import boundsweep.studies.storage  # the slow imports happen before the start line
    from boundsweep.service.scheduler import run_scheduler
    from boundsweep.service.settings import Settings

    url, now, barrier, me = sys.argv[1:]
    barrier = pathlib.Path(barrier)
    (barrier / me).touch()
    while len(list(barrier.iterdir())) < 2:
        time.sleep(0.005)
    fired = run_scheduler(
        Settings(database_url=url), once=True, clock=lambda: datetime.fromisoformat(now)
    )
    print(len(fired))
    """
)


@pytest.mark.postgres
def test_two_scheduler_processes_create_the_campaign_once(
    postgres_url: str, tmp_path: Path
) -> None:
    # PostgreSQL is the store several processes share; SQLite races in threads below.
    storage_url = postgres_url
    _add_schedule(storage_url, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    now = datetime(2026, 1, 3, 3, 0, 1, tzinfo=BERLIN).isoformat()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, storage_url, now, str(barrier), name],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    outputs = [racer.communicate(timeout=240)[0] for racer in racers]
    assert [r.returncode for r in racers] == [0, 0]
    assert sorted(int(out.strip().splitlines()[-1]) for out in outputs) == [0, 1]
    assert _runs(storage_url) == [("nightly-20260103", "created", None)]
    assert list_campaigns(open_storage(storage_url)) == ["nightly-20260103"]


def test_schedulers_racing_in_threads_create_the_campaign_once(storage_url: str) -> None:
    _add_schedule(storage_url, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    now = datetime(2026, 1, 3, 3, 0, 1, tzinfo=BERLIN)
    start = threading.Barrier(4)
    results: list[list[tuple[str, str]]] = []
    errors: list[BaseException] = []

    def racer() -> None:
        start.wait()
        try:
            results.append(_poll(storage_url, now))
        except BaseException as exc:  # a racer's error must fail the test, not just warn
            errors.append(exc)

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(results) == [[], [], [], [("nightly-20260103", "created")]]
    assert _runs(storage_url) == [("nightly-20260103", "created", None)]


@pytest.mark.parametrize(
    ("expression", "valid"),
    [
        ("0 3 * * *", True),
        ("*/15 2-4 * * 1-5", True),
        ("@daily", True),
        ("0 3 * *", False),
        ("0 0 3 * * * *", False),
        ("0 25 * * *", False),
        ("@fortnightly", False),
        ("", False),
        ("0 0 29 2 *", True),  # fires every four years
        ("0 0 30 2 *", False),  # never fires
        ("0 0 31 4 *", False),
        ("0," * 61 + "0 0 * * *", False),  # 127 characters of one repeated minute
        ("1,,2 * * * *", False),
    ],
)
def test_cron_expressions(expression: str, valid: bool) -> None:
    if valid:
        assert check_cron(expression) == expression
    else:
        with pytest.raises(ValueError, match="cron"):
            check_cron(expression)


def test_timezones_and_daylight_saving() -> None:
    assert check_timezone("Europe/Berlin") == BERLIN
    for bad in ("Mars/Olympus", "../../etc/passwd", ""):
        with pytest.raises(ValueError, match="IANA"):
            check_timezone(bad)
    # 03:00 Berlin is 01:00 UTC in summer and 02:00 UTC in winter.
    summer = latest_firing("0 3 * * *", "Europe/Berlin", datetime(2026, 7, 1, 12, tzinfo=UTC))
    winter = latest_firing("0 3 * * *", "Europe/Berlin", datetime(2026, 12, 1, 12, tzinfo=UTC))
    assert (summer.hour, winter.hour) == (1, 2)
    exact = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)
    assert latest_firing("0 3 * * *", "Europe/Berlin", exact) == exact


def test_a_poison_schedule_is_marked_while_the_others_keep_firing(
    storage_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Written past the API (which refuses both now): a cron that never fires, and a timezone
    # that is gone from the system.
    created = datetime(2026, 1, 1, tzinfo=UTC)
    _add_schedule(storage_url, created, name="feb30", cron="0 0 30 2 *")
    _add_schedule(storage_url, created, name="mars", timezone="Mars/Olympus")
    _add_schedule(storage_url, created, name="berlin")
    _add_schedule(storage_url, created, name="utc", cron="30 4 * * *", timezone="UTC")
    fired = []
    with caplog.at_level("WARNING", logger="boundsweep.service.scheduler._firing"):
        for day in range(1, 4):
            for hour in (6, 12):  # two polls a day, after both healthy firings
                fired += _poll(storage_url, datetime(2026, 1, day, hour, tzinfo=UTC))
    assert sorted(fired) == sorted(
        (f"{name}-2026010{day}", "created") for name in ("berlin", "utc") for day in (1, 2, 3)
    )
    engine = make_engine(storage_url)
    with Session(engine) as session:
        errors = dict(session.execute(sa.select(Schedule.name, Schedule.error)).tuples().all())
    engine.dispose()
    assert errors["berlin"] is None and errors["utc"] is None
    assert "CroniterBadDateError" in errors["feb30"]
    assert "Mars/Olympus" in errors["mars"]
    # One line each for the six polls, no traceback.
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert sorted(r.getMessage().split()[1] for r in skipped) == ["feb30", "mars"]
    assert all(r.exc_info is None for r in caplog.records)


def test_a_schedule_that_computes_again_is_unmarked(sqlite_url: str) -> None:
    _add_schedule(sqlite_url, datetime(2026, 1, 1, tzinfo=UTC), timezone="Mars/Olympus")
    assert _poll(sqlite_url, datetime(2026, 1, 1, 6, tzinfo=UTC)) == []
    engine = make_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(sa.update(Schedule).values(timezone="UTC"))
    assert _poll(sqlite_url, datetime(2026, 1, 2, 6, tzinfo=UTC)) == [
        ("nightly-20260102", "created")
    ]
    with engine.connect() as connection:
        assert connection.scalar(sa.select(Schedule.error)) is None
    engine.dispose()


def test_a_second_firing_the_same_day_is_recorded_as_existing(sqlite_url: str) -> None:
    _add_schedule(sqlite_url, datetime(2026, 1, 1, tzinfo=UTC), cron="0,30 3 * * *")
    first = datetime(2026, 1, 2, 3, 5, tzinfo=BERLIN)
    assert _poll(sqlite_url, first) == [("nightly-20260102", "created")]
    assert _poll(sqlite_url, first + timedelta(minutes=30)) == [("nightly-20260102", "exists")]
