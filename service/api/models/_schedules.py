"""Request and response bodies of `/schedules`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from boundsweep.service.api.models._common import Page
from boundsweep.service.scheduler import check_cron, check_timezone
from boundsweep.studies.campaign import MAX_DESCRIPTION_CHARS, check_text
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ScheduleCreate", "SchedulePublic", "ScheduleRunPublic", "SchedulesPage"]

# Leaves room for "-YYYYMMDD" within a campaign name's 63 characters.
SCHEDULE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,53}$"


class ScheduleCreate(BaseModel):
    """A nightly (or any cron) schedule creating the campaign `<name>-YYYYMMDD` each firing.

    `template` is a campaign spec without `name` (task, budget, seeds, arms, ...) or a preset:
    `{"preset": "paper-robustness", "overrides": {"task": "digits_mlp", "grid_width": 3}}`.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SCHEDULE_NAME_PATTERN, examples=["nightly-digits"])
    cron: str = Field(
        max_length=128,
        examples=["0 3 * * *"],
        description="Five fields: minute hour day-of-month month day-of-week, or @daily etc.",
    )
    timezone: str = Field(default="UTC", max_length=64, examples=["Europe/Berlin"])
    template: dict[str, Any] = Field(
        examples=[{"preset": "paper-robustness", "overrides": {"task": "digits_mlp"}}]
    )
    enabled: bool = True
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)

    @field_validator("description")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        return check_text(value)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        check_timezone(value)
        return value


class ScheduleRunPublic(BaseModel):
    """One firing: `created`, `exists` (campaign already there), `failed` or `claimed`."""

    fire_time: datetime
    campaign: str
    state: Literal["claimed", "created", "exists", "failed"]
    error: str | None
    claimed_by: str
    finished_at: datetime | None


class SchedulePublic(BaseModel):
    """A schedule with its next firing times (in its timezone) and latest runs."""

    name: str
    cron: str
    timezone: str
    template: dict[str, Any]
    enabled: bool
    description: str
    created_at: datetime
    next_firings: list[datetime]
    error: str | None = Field(
        description="Why its firings cannot be computed (it is skipped until fixed); null "
        "when it fires normally."
    )
    recent_runs: list[ScheduleRunPublic]


class SchedulesPage(Page):
    """One page of schedules, by name."""

    data: list[SchedulePublic]
