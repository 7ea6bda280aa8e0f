"""The heartbeat of a running trial, and the sweep that retries other workers' dead trials."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from types import TracebackType

import optuna
import sqlalchemy as sa
from boundsweep.studies.storage import (
    CampaignStorage,
    beat,
    fail_stale_trials,
    storage_error_reason,
)

log = logging.getLogger("boundsweep.worker")
STORAGE_ERRORS = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    optuna.exceptions.StorageInternalError,
)
"""What a database that is down, restarting or locked raises through SQLAlchemy or Optuna."""


class Heartbeat:
    """Beat for ``trial_id`` (or every id of a batch), in one statement through the adapter's
    one heartbeat writer (``studies.storage.beat``), every ``interval`` seconds while the
    ``with`` block runs.

    Every ``grace_period`` it also fails other workers' stale trials (and re-queues them),
    so a crash is retried even while every live worker is busy with a long trial.
    """

    def __init__(
        self,
        storage: CampaignStorage,
        trial_id: int | Sequence[int],
        interval: int,
        grace_period: int,
        max_retries: int,
    ) -> None:
        self.storage = storage
        self.trial_ids = [trial_id] if isinstance(trial_id, int) else list(trial_id)
        self._interval = interval
        self._sweep_every = max(1, math.ceil(grace_period / interval))
        self._grace_period = grace_period
        self._max_retries = max_retries
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{self.trial_ids}", daemon=True
        )

    def _run(self) -> None:
        beats = 0
        # The claim wrote the first heartbeat; beat again after each interval.
        while not self._stop.wait(self._interval):
            beats += 1
            try:
                beat(self.storage, self.trial_ids)  # the adapter's one heartbeat writer
                if beats % self._sweep_every == 0:
                    failed = fail_stale_trials(
                        self.storage,
                        grace_period=self._grace_period,
                        max_retries=self._max_retries,
                    )
                    if failed:
                        log.warning(
                            "failed %d stale trial(s) of dead workers: ids %s", len(failed), failed
                        )
            except STORAGE_ERRORS as exc:  # a database outage must not kill the trial
                log.warning(
                    "heartbeat of trial id %s failed: %s", self.trial_ids, storage_error_reason(exc)
                )
            except Exception:  # nor anything else; the next beat retries
                log.warning("heartbeat of trial id %s failed", self.trial_ids, exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
