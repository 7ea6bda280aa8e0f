"""The campaign registry (`bs_campaigns`): written beside the arm studies, read for paging.

The arm studies in Optuna's tables are the truth; the registry adds who created a campaign and
from which schedule, and makes `GET /campaigns` one indexed query. A campaign created by any
Optuna client without a registry row (an old CLI, a script) is shown by the listing all the
same (`unregistered_campaigns`, from the `boundsweep:*` user attributes of its studies) and
entered by the first write about it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from boundsweep.service.db._engine import make_engine
from boundsweep.service.db._migrate import migrate
from boundsweep.service.db._tables import CampaignRecord, utcnow
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.storage import arm_studies, campaign_names, spec_of
from sqlalchemy.dialects import postgresql, sqlite

__all__ = [
    "CREATED_BY",
    "insert_campaign_rows",
    "record_row",
    "register_campaign",
    "registry_row",
    "unregistered_campaigns",
]

CREATED_BY = ("api", "schedule", "cli")
log = logging.getLogger(__name__)


def insert_campaign_rows(connection: sa.Connection, rows: Iterable[dict[str, Any]]) -> int:
    """Insert registry rows, skipping names already there; returns how many were new.

    `ON CONFLICT DO NOTHING` rather than check-then-insert, so two requests registering the
    same campaign at once cannot fail each other.
    """
    rows = list(rows)
    if not rows:
        return 0
    table = CampaignRecord.__table__
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(rows).on_conflict_do_nothing(index_elements=["name"])
    # SQLAlchemy keeps an INSERT's rowcount only when asked (psycopg's reads -1 otherwise).
    result = connection.execute(statement, execution_options={"preserve_rowcount": True})
    return result.rowcount or 0


def registry_row(
    spec: CampaignSpec, source: str, schedule_name: str | None = None, state: str = "active"
) -> dict[str, Any]:
    """The registry row of a campaign (for ``insert_campaign_rows``)."""
    if source not in CREATED_BY:
        raise ValueError(f"source must be one of {', '.join(CREATED_BY)}, got {source!r}")
    return {
        "name": spec.name,
        "task": spec.task,
        "created_at": utcnow(),
        "created_by": source,
        "schedule_name": schedule_name,
        "spec": None,  # a made campaign's spec is on its arm studies only (stored once)
        "state": state,
    }


def register_campaign(
    url_or_engine: str | sa.Engine,
    spec: CampaignSpec,
    source: str = "cli",
    schedule_name: str | None = None,
    state: str = "active",
) -> bool:
    """Enter a campaign in the registry (no-op if its name is there already).

    For a campaign whose studies exist (made by ``studies.storage.create_campaign``, any
    Optuna client); ``service.launch.launch_campaign`` creates both in one transaction.

    Args:
        url_or_engine: The storage URL (the service tables are migrated first) or an engine
            over a migrated database.
        spec: The ``studies.campaign.CampaignSpec``.
        source: ``api``, ``schedule`` or ``cli``.
        schedule_name: The schedule that created it, if any.
        state: ``active`` or ``cancelled``.

    Returns:
        True if a row was written, False if the campaign was registered already.
    """
    if isinstance(url_or_engine, str):
        migrate(url_or_engine)
        engine = make_engine(url_or_engine, poolclass=sa.NullPool)
    else:
        engine = url_or_engine
    try:
        with engine.begin() as connection:
            row = registry_row(spec, source, schedule_name, state)
            return insert_campaign_rows(connection, [row]) > 0
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def _parse_created_at(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return utcnow()
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


def unregistered_campaigns(engine: sa.Engine, known: set[str]) -> list[CampaignRecord]:
    """Campaigns in Optuna's tables that the registry has no row for, as unsaved records.

    Read from the arm studies' ``boundsweep:*`` user attrs (``studies.storage``'s read model);
    costs one grouped query when nothing is missing. A read never writes them: a GET shows
    them as they are, and the next write about them (a cancel) enters them.
    """
    missing = [name for name in campaign_names(engine) if name not in known]
    records = []
    for name in missing:
        arms = arm_studies(engine, name)
        try:
            spec = spec_of(arms[0]) if arms else None
        except ValueError as exc:
            log.warning("%s", exc)
            continue
        if spec is None:
            continue  # not a boundsweep campaign after all (attribute set by hand)
        records.append(
            CampaignRecord(
                name=name,
                task=spec.task,
                created_at=_parse_created_at(arms[0].created_at),
                created_by="cli",
                schedule_name=None,
                spec=None,
                state="cancelled" if any(arm.cancelled for arm in arms) else "active",
            )
        )
    return records


def record_row(record: CampaignRecord) -> dict[str, Any]:
    """The registry row of a record, for ``insert_campaign_rows``."""
    return {
        column.name: getattr(record, column.name) for column in CampaignRecord.__table__.columns
    }
