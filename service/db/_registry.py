"""The campaign registry (`bs_campaigns`): written beside the arm studies, read for paging.

The arm studies in Optuna's tables are the truth; the registry adds who created a campaign and
from which schedule, and makes `GET /campaigns` one indexed query. A campaign created by any
Optuna client without a registry row (an old CLI, a script) is entered on the next listing by
`discover_campaigns`, from the `boundsweep:*` user attributes of its studies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from boundsweep.service.db._engine import make_engine
from boundsweep.service.db._migrate import migrate
from boundsweep.service.db._tables import CampaignRecord, utcnow
from boundsweep.studies.storage import optuna_tables as ot
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["CREATED_BY", "discover_campaigns", "insert_campaign_rows", "register_campaign"]

CREATED_BY = ("api", "schedule", "cli")


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


def _row(spec: Any, source: str, schedule_name: str | None, state: str) -> dict[str, Any]:
    if source not in CREATED_BY:
        raise ValueError(f"source must be one of {', '.join(CREATED_BY)}, got {source!r}")
    return {
        "name": spec.name,
        "task": spec.task,
        "created_at": utcnow(),
        "created_by": source,
        "schedule_name": schedule_name,
        "spec": spec.model_dump(mode="json"),
        "state": state,
    }


def register_campaign(
    url_or_engine: str | sa.Engine,
    spec: Any,
    source: str = "cli",
    schedule_name: str | None = None,
    state: str = "active",
) -> bool:
    """Enter a campaign in the registry (no-op if its name is there already).

    Args:
        url_or_engine: The storage URL (the service tables are migrated first) or an engine
            over a migrated database.
        spec: The `studies.campaign.CampaignSpec`.
        source: `api`, `schedule` or `cli`.
        schedule_name: The schedule that created it, if any.
        state: `creating`, `active` or `cancelled`.

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
            return insert_campaign_rows(connection, [_row(spec, source, schedule_name, state)]) > 0
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def _parse_created_at(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return utcnow()
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


def discover_campaigns(connection: sa.Connection) -> int:
    """Register campaigns found in Optuna's tables without a registry row.

    Reads the `boundsweep:campaign`, `boundsweep:spec`, `boundsweep:created_at` and
    `boundsweep:cancelled` study attributes; costs one query when nothing is missing.

    Returns:
        How many campaigns were registered.
    """
    attrs = ot.study_user_attributes
    found = connection.execute(
        sa.select(attrs.c.study_id, attrs.c.value_json).where(attrs.c.key == ot.ATTR_CAMPAIGN)
    ).all()
    by_name: dict[str, list[int]] = {}
    for study_id, value_json in found:
        by_name.setdefault(json.loads(value_json), []).append(study_id)
    if not by_name:
        return 0
    known = set(connection.scalars(sa.select(CampaignRecord.name)))
    missing = {name: ids for name, ids in by_name.items() if name not in known}
    if not missing:
        return 0
    study_ids = {i for ids in missing.values() for i in ids}
    keys = (ot.ATTR_SPEC, ot.ATTR_CREATED_AT, ot.ATTR_CANCELLED)
    values: dict[tuple[int, str], Any] = {
        (study_id, key): json.loads(value_json)
        for study_id, key, value_json in connection.execute(
            sa.select(attrs.c.study_id, attrs.c.key, attrs.c.value_json).where(
                attrs.c.study_id.in_(study_ids), attrs.c.key.in_(keys)
            )
        )
    }
    rows = []
    for name, ids in missing.items():
        spec = values.get((ids[0], ot.ATTR_SPEC))
        if not isinstance(spec, dict):
            continue  # not a boundsweep campaign after all (attribute set by hand)
        cancelled = any(values.get((i, ot.ATTR_CANCELLED)) for i in ids)
        rows.append(
            {
                "name": name,
                "task": str(spec.get("task", "")),
                "created_at": _parse_created_at(values.get((ids[0], ot.ATTR_CREATED_AT))),
                "created_by": "cli",
                "schedule_name": None,
                "spec": spec,
                "state": "cancelled" if cancelled else "active",
            }
        )
    return insert_campaign_rows(connection, rows)
