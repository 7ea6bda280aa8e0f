"""The service's own tables, their migrations, and fast SQL reads of Optuna's tables."""

from __future__ import annotations

from boundsweep.service.db._engine import make_engine, normalize_url
from boundsweep.service.db._migrate import migrate
from boundsweep.service.db._progress import (
    TRIAL_STATES,
    ArmProgress,
    CampaignProgress,
    arm_study_ids,
    campaign_progress,
)
from boundsweep.service.db._registry import discover_campaigns, register_campaign
from boundsweep.service.db._tables import Base, CampaignRecord, Schedule, ScheduleRun, utcnow
from boundsweep.service.db._trials import TrialRow, trial_page

__all__ = [
    "TRIAL_STATES",
    "ArmProgress",
    "Base",
    "CampaignProgress",
    "CampaignRecord",
    "Schedule",
    "ScheduleRun",
    "TrialRow",
    "arm_study_ids",
    "campaign_progress",
    "discover_campaigns",
    "make_engine",
    "migrate",
    "normalize_url",
    "register_campaign",
    "trial_page",
    "utcnow",
]
