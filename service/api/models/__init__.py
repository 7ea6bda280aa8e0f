"""Pydantic bodies of the REST API, one module per resource."""

from __future__ import annotations

from boundsweep.service.api.models._campaigns import (
    ArmStatus,
    CampaignDetail,
    CampaignPublic,
    CampaignsPage,
    RequeuePublic,
    TrialPublic,
    TrialsPage,
    TrialState,
)
from boundsweep.service.api.models._common import NAME_PATTERN, Page, json_safe
from boundsweep.service.api.models._schedules import (
    SCHEDULE_NAME_PATTERN,
    ScheduleCreate,
    SchedulePublic,
    ScheduleRunPublic,
    SchedulesPage,
)

__all__ = [
    "NAME_PATTERN",
    "SCHEDULE_NAME_PATTERN",
    "ArmStatus",
    "CampaignDetail",
    "CampaignPublic",
    "CampaignsPage",
    "RequeuePublic",
    "Page",
    "ScheduleCreate",
    "SchedulePublic",
    "ScheduleRunPublic",
    "SchedulesPage",
    "TrialPublic",
    "TrialState",
    "TrialsPage",
    "json_safe",
]
