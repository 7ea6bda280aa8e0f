"""The scheduler process: poll, fire what is due, sleep, until stopped."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from boundsweep.service.db import make_engine, utcnow
from boundsweep.service.scheduler._firing import Firing, fire_due
from boundsweep.service.settings import Settings
from boundsweep.studies.storage import CampaignStorage, open_storage

__all__ = ["run_scheduler"]

logger = logging.getLogger(__name__)


def run_scheduler(
    settings: Settings | None = None,
    stop_event: threading.Event | None = None,
    once: bool = False,
    clock: Callable[[], datetime] = utcnow,
) -> list[Firing]:
    """Run the nightly scheduler over `settings.database_url` (migrated beforehand).

    Any number of schedulers may run against one database; each firing still creates its
    campaign exactly once (see `service.scheduler._firing`).

    Args:
        settings: Service settings; default: from the environment.
        stop_event: Set it to stop the loop (checked between polls).
        once: Poll a single time and return (for cron-driven deployments and tests).
        clock: The current time, timezone-aware (tests pass a fixed one).

    Returns:
        The firings this process won.
    """
    settings = settings or Settings()
    stop_event = stop_event or threading.Event()
    engine = make_engine(settings.database_url)

    @functools.cache
    def storage() -> CampaignStorage:
        # Opened on the first firing only: a scheduler with nothing due never touches Optuna.

        return open_storage(settings.database_url)

    stale_after = timedelta(seconds=settings.scheduler_stale_seconds)
    fired: list[Firing] = []
    try:
        while True:
            try:
                for firing in fire_due(engine, storage, clock(), stale_after):
                    logger.info(
                        "schedule %s fired at %s: campaign %s %s",
                        firing.schedule,
                        firing.fire_time.isoformat(),
                        firing.campaign,
                        firing.state,
                    )
                    fired.append(firing)
            except Exception:
                if once:
                    raise
                # A database restart must not end the scheduler; the next poll retries.
                logger.exception(
                    "scheduler poll failed; retrying in %ss", settings.scheduler_poll_seconds
                )
            if once or stop_event.wait(settings.scheduler_poll_seconds):
                return fired
    finally:
        engine.dispose()
