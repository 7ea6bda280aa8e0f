"""The nightly scheduler: each firing of a schedule creates `<schedule>-YYYYMMDD` exactly once."""

from __future__ import annotations

from boundsweep.service.scheduler._cron import (
    check_cron,
    check_timezone,
    latest_firing,
    next_firings,
)
from boundsweep.service.scheduler._firing import Firing, campaign_name_for, fire_due
from boundsweep.service.scheduler._loop import run_scheduler

__all__ = [
    "Firing",
    "campaign_name_for",
    "check_cron",
    "check_timezone",
    "fire_due",
    "latest_firing",
    "next_firings",
    "run_scheduler",
]
