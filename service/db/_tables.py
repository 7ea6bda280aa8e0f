"""The service's own tables, beside Optuna's in the same database.

Optuna's tables stay the truth for trials; these hold what Optuna has no place for: the
campaign registry (who created a campaign, from which schedule, fast paging), the nightly
schedules, and one row per schedule firing (the lock that makes a firing happen exactly once).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "CampaignRecord",
    "Schedule",
    "ScheduleRun",
    "UTCDateTime",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back timezone-aware.

    SQLite keeps no offset, so storing every value as naive UTC makes equal instants equal
    strings there — which the unique (schedule, fire_time) constraint depends on.
    """

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs a timezone-aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of the service tables (all prefixed `bs_`)."""

    type_annotation_map = {dict[str, Any]: sa.JSON, datetime: UTCDateTime}


class CampaignRecord(Base):
    """One campaign as the service knows it; its arms' Optuna studies hold the trials.

    `state` is `active` or `cancelled`; a row is written in the transaction that creates the
    campaign's studies (`service.launch`). `creating` is only found in rows an older
    boundsweep left (it made a campaign one commit at a time): their creation was cut short,
    and is finished from `spec` by the next creation of the name. `created_by` is `api`,
    `schedule` or `cli` (also used for campaigns found in the storage without a row, i.e.
    created by any Optuna client).
    """

    __tablename__ = "bs_campaigns"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    task: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(sa.String(16))
    schedule_name: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    spec: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON(none_as_null=True))
    """NULL: the spec is stored once, on the arm studies (`studies.storage.spec_of`). Rows
    of older versions hold the plan of a creation left `creating`, or a copy nothing reads."""
    state: Mapped[str] = mapped_column(sa.String(16), default="active")


class Schedule(Base):
    """A cron expression in a timezone that creates `<name>-YYYYMMDD` from a template."""

    __tablename__ = "bs_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    cron: Mapped[str] = mapped_column(sa.String(128))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    template: Mapped[dict[str, Any]]
    enabled: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    error: Mapped[str | None] = mapped_column(sa.Text)
    """Why the scheduler cannot compute this schedule's firings (None: it can)."""


class ScheduleRun(Base):
    """One firing of a schedule. The unique (schedule_id, fire_time) pair is the lock.

    `state`: `claimed` (a scheduler won the insert and is creating the campaign), `created`,
    `exists` (the campaign was already there: another firing the same day, or a takeover of a
    claim whose process had in fact finished), or `failed` (with `error`).
    """

    __tablename__ = "bs_schedule_runs"
    __table_args__ = (sa.UniqueConstraint("schedule_id", "fire_time", name="uq_bs_run_firing"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        sa.ForeignKey("bs_schedules.id", ondelete="CASCADE"), index=True
    )
    fire_time: Mapped[datetime]
    campaign_name: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[str] = mapped_column(sa.String(16), default="claimed")
    claimed_by: Mapped[str] = mapped_column(sa.String(128))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
