"""Create and cancel campaigns: the arm studies in Optuna's tables plus the registry row.

Order matters for exactly-once creation: the registry row (primary key = campaign name) is
inserted first in state `creating`, so of two concurrent creators only one proceeds to make
studies; if study creation fails the row is removed again, so a name is never left taken by a
campaign that does not exist.
"""

from __future__ import annotations

import sqlalchemy as sa
from boundsweep.service.db import CampaignRecord, register_campaign
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.storage import (
    CampaignExists,
    CampaignStorage,
    cancel_campaign,
    create_campaign,
)

__all__ = ["cancel", "launch_campaign"]


def launch_campaign(
    engine: sa.Engine,
    storage: CampaignStorage,
    spec: CampaignSpec,
    source: str,
    schedule_name: str | None = None,
) -> list[str]:
    """Register and create the campaign `spec` (one Optuna study per arm, trials queued).

    Args:
        engine: Engine over the service database.
        storage: The Optuna `RDBStorage` over the same database.
        spec: A validated `studies.campaign.CampaignSpec`.
        source: `api`, `schedule` or `cli`.
        schedule_name: The schedule whose firing this is, if any.

    Returns:
        The arm study names.

    Raises:
        studies.storage.CampaignExists: The name is taken (registry or storage).
    """

    if not register_campaign(engine, spec, source, schedule_name, state="creating"):
        raise CampaignExists(f"campaign {spec.name!r} already exists")
    try:
        studies = create_campaign(storage, spec)
    except BaseException:
        with engine.begin() as connection:
            connection.execute(
                sa.delete(CampaignRecord).where(
                    CampaignRecord.name == spec.name, CampaignRecord.state == "creating"
                )
            )
        raise
    with engine.begin() as connection:
        connection.execute(
            sa.update(CampaignRecord).where(CampaignRecord.name == spec.name).values(state="active")
        )
    return studies


def cancel(engine: sa.Engine, storage: CampaignStorage, name: str) -> None:
    """Stop workers claiming the campaign's trials (nothing is deleted) and mark the row.

    Raises:
        studies.storage.CampaignNotFound: No such campaign in the storage.
    """

    cancel_campaign(storage, name)
    with engine.begin() as connection:
        connection.execute(
            sa.update(CampaignRecord).where(CampaignRecord.name == name).values(state="cancelled")
        )
