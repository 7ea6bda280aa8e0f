"""How a worker runs, and what it did: shared by the loop (``_worker``) and the runner (``_run``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from boundsweep.studies.objective import StorageClock
from boundsweep.studies.storage import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MAX_RETRIES

STORAGE_PATIENCE = 60.0
"""Seconds an ``--until-idle`` worker keeps retrying a storage that fails (down, full, read
only) before it gives up with ``STORAGE_ERROR_EXIT``; a long-lived worker waits for ever."""
STORAGE_ERROR_EXIT = 4
"""Exit status of an ``--until-idle`` worker whose storage stayed unusable for
``storage_patience`` seconds (1: unreachable at start, 2: usage, 3: setup)."""


@dataclass
class WorkerConfig:
    """How a worker runs.

    Attributes:
        storage_url: SQLAlchemy URL of the campaigns' storage.
        device: Torch device, ``cpu``, ``cuda`` or ``cuda:N``.
        until_idle: Exit once no campaign has a queued or running trial left.
        max_retries: Times a crashed trial is queued again before it is reported failed.
        heartbeat_interval: Seconds between heartbeats.
        grace_period: Seconds without a heartbeat before a trial is stale (``None``: 3 beats).
        poll_interval: Seconds to wait before looking again when there is no work.
        max_trials: Stop after this many trials (``None``: no limit).
        campaigns: Only work on these campaigns (``None``: all).
        data_dir: Dataset folder for the tasks.
        batch_trials: Trials of one arm claimed and trained together where the task and the
            arm's sampler allow it (``workers._run``); ``None`` is automatic, 1 one by one.
        storage_patience: With ``until_idle``, seconds of storage failures in a row (a full
            disk, a read-only file, a database that refuses writes or is down) after which the
            worker stops and says so (``storage_failed``) instead of retrying for ever.
    """

    storage_url: str
    device: str = "cpu"
    until_idle: bool = False
    max_retries: int = DEFAULT_MAX_RETRIES
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL
    grace_period: int | None = None
    poll_interval: float = 2.0
    max_trials: int | None = None
    campaigns: list[str] | None = None
    data_dir: str | None = None
    batch_trials: int | None = None
    storage_patience: float = STORAGE_PATIENCE


@dataclass
class WorkerStats:
    """What a worker did, for its last log line and the storage benchmark."""

    trials: int = 0
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    interrupted: int = 0
    clock: StorageClock = field(default_factory=StorageClock)
    wall: float = 0.0
