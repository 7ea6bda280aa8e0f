"""The service's own tables (`bs_*`) and their migrations; Optuna's are read through
`studies.storage`."""

from __future__ import annotations

from boundsweep.service.db._engine import make_engine, normalize_url
from boundsweep.service.db._migrate import migrate
from boundsweep.service.db._registry import (
    insert_campaign_rows,
    record_row,
    register_campaign,
    registry_row,
    unregistered_campaigns,
)
from boundsweep.service.db._tables import Base, CampaignRecord, Schedule, ScheduleRun, utcnow

__all__ = [
    "Base",
    "CampaignRecord",
    "Schedule",
    "ScheduleRun",
    "insert_campaign_rows",
    "make_engine",
    "migrate",
    "normalize_url",
    "record_row",
    "register_campaign",
    "registry_row",
    "unregistered_campaigns",
    "utcnow",
]
