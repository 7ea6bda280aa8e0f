"""Put a campaign's failed trials back in the queue, each exactly once.

A trial that crashed more than ``max_retries`` times is FAIL for good: its slot counts as
``fail``. Once the cause is fixed (data copied in, a bug mended) the user re-queues it: a
WAITING copy with the same params and seed and a fresh retry allowance. Only a FAIL that
nothing replaced yet is re-queued (a crash that was retried already has its copy), and never
more of them than the arm's ``fail`` count, so the status counts stay exact; the adapter's
``requeue_given_up`` makes each copy exactly once, however many requeues race.
"""

from __future__ import annotations

from boundsweep.studies._storage._campaigns import campaign_study_ids
from boundsweep.studies._storage._errors import CampaignNotFound
from boundsweep.studies._storage._optuna import Storage, requeue_given_up
from boundsweep.studies._storage._progress import campaign_progress

__all__ = ["requeue_failed"]


def requeue_failed(storage: Storage, campaign: str, arm: str | None = None) -> dict[str, int]:
    """Queue a WAITING copy of every FAIL trial of ``campaign`` (or of one arm) given up on.

    Returns:
        Arm name → trials re-queued by this call (0 for an arm with none to re-queue).

    Raises:
        CampaignNotFound: No such campaign.
        KeyError: ``arm`` is not one of its arms (the message lists them).
    """
    ids = campaign_study_ids(storage, campaign)
    if not ids:
        raise CampaignNotFound(f"no campaign named {campaign!r}")
    if arm is not None and arm not in ids:
        raise KeyError(f"no arm {arm!r} in {campaign}; arms: {', '.join(sorted(ids))}")
    progress = {row.arm: row for row in campaign_progress(storage, campaign)}
    return {
        name: requeue_given_up(storage, study_id, progress[name].fail)
        for name, study_id in sorted(ids.items())
        if arm is None or name == arm
    }
