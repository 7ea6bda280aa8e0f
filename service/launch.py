"""Create and cancel campaigns: the one creation protocol of the CLI, the API and the scheduler.

A campaign is created in one transaction: its registry row (primary key = the campaign's
name) and its arms' studies, attributes and queued trials (`studies.storage.create_campaign`
on the same connection) commit together or not at all. A creator killed, cancelled or cut off
from the database at any point leaves either the whole campaign or nothing, and then the
name is free at once: there is nothing to take over, so no lease, no heartbeat, and no
judging whether a creator still lives by its PID or its host.

Two creators of one name: the database lets one insert the row; the other waits for that
transaction and then finds the name taken (`CampaignExists`). On PostgreSQL it waits at most
`CREATION_LOCK_WAIT` (then `CampaignBeingCreated`: retry), and a creator whose host vanished
without closing its connection holds the name no longer than `CREATION_IDLE_LIMIT`, after
which the server ends its transaction. On SQLite the file lock of a dead process goes with it.

A registry row left `creating` by an older boundsweep (which made a campaign one commit at a
time and kept the plan in the row) is finished from that plan, in one transaction, by the next
creation of its name or by the scheduler's poll (`finish_abandoned`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from boundsweep.service.db import CampaignRecord, insert_campaign_rows, registry_row
from boundsweep.studies.campaign import STORED, CampaignSpec
from boundsweep.studies.storage import (
    CampaignExists,
    CampaignStorage,
    cancel_campaign,
    create_campaign,
)

__all__ = [
    "CREATION_IDLE_LIMIT",
    "CREATION_LOCK_WAIT",
    "CampaignBeingCreated",
    "cancel",
    "finish_abandoned",
    "launch_campaign",
]

logger = logging.getLogger(__name__)

CREATION_LOCK_WAIT = timedelta(seconds=5)
"""How long a creation waits on PostgreSQL for another transaction that holds its name (the
same campaign being created; a 5-arm campaign takes well under a second)."""
CREATION_IDLE_LIMIT = timedelta(seconds=30)
"""How long PostgreSQL lets a creation's transaction sit idle before it ends it: the longest
a creator whose host vanished mid-creation (no FIN, no RST) keeps the name taken."""
_LOCK_NOT_AVAILABLE = "55P03"
"""PostgreSQL's SQLSTATE for a `lock_timeout` that ran out."""


class CampaignBeingCreated(ValueError):
    """Another transaction is creating a campaign of this name right now; retry."""


def _bound_waits(conn: sa.Connection) -> None:
    """Bound this transaction's lock waits and idle time (PostgreSQL; transaction-local, so
    also right behind a pooler in transaction mode)."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(
        sa.text(
            "SELECT set_config('lock_timeout', :wait, true),"
            " set_config('idle_in_transaction_session_timeout', :idle, true)"
        ),
        {
            "wait": str(int(CREATION_LOCK_WAIT.total_seconds() * 1000)),
            "idle": str(int(CREATION_IDLE_LIMIT.total_seconds() * 1000)),
        },
    )


def _finish_interrupted(conn: sa.Connection, name: str) -> tuple[CampaignRecord, CampaignSpec]:
    """Mark the row of an older boundsweep's interrupted creation `active`; its plan.

    Raises:
        CampaignExists: The campaign exists (its row is not `creating`).
    """
    table = CampaignRecord.__table__
    row = (
        conn.execute(
            sa.update(table)
            .where(table.c.name == name, table.c.state == "creating")
            .values(state="active")
            .returning(*table.c)
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise CampaignExists(f"campaign {name!r} already exists")
    # The arm studies hold the spec from now on: the row's plan is cleared (stored once).
    conn.execute(sa.update(table).where(table.c.name == name).values(spec=None))
    plan = CampaignSpec.model_validate(row["spec"], context=STORED)
    return CampaignRecord(**{**row, "spec": None}), plan


def launch_campaign(
    engine: sa.Engine,
    storage: CampaignStorage,
    spec: CampaignSpec,
    source: str,
    schedule_name: str | None = None,
) -> CampaignRecord:
    """Register and create the campaign `spec` in one transaction.

    Args:
        engine: Engine over the service database; the creation's transaction runs on it.
        storage: The campaigns' storage over the same database (`studies.storage.open_storage`,
            which made Optuna's tables that the creation writes).
        spec: The validated campaign.
        source: `api`, `schedule` or `cli`.
        schedule_name: The schedule whose firing this is, if any.

    Returns:
        The campaign's registry row, as committed.

    Raises:
        studies.storage.CampaignExists: The name is taken (registry or storage), or an
            interrupted creation of that name with another spec was finished instead.
        CampaignBeingCreated: Another transaction held the name longer than
            `CREATION_LOCK_WAIT` (PostgreSQL).
        sqlalchemy.exc.DBAPIError: The database failed: nothing was created (unless the
            connection broke after the commit was sent: then all of it was).
    """
    row = registry_row(spec, source, schedule_name)
    try:
        with engine.begin() as conn:
            _bound_waits(conn)
            if insert_campaign_rows(conn, [row]):
                create_campaign(conn, spec)
                return CampaignRecord(**row)
            record, plan = _finish_interrupted(conn, spec.name)
            create_campaign(conn, plan, resume=True)
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            raise CampaignBeingCreated(
                f"campaign {spec.name!r} is being created by another request; retry"
            ) from None
        raise
    logger.warning("campaign %s: finished the creation an older boundsweep left", spec.name)
    if plan.model_dump(mode="json") != spec.model_dump(mode="json"):
        raise CampaignExists(
            f"campaign {spec.name!r} already exists (its interrupted creation, with another "
            "spec, was finished)"
        )
    return record


def finish_abandoned(engine: sa.Engine, storage: Callable[[], CampaignStorage]) -> list[str]:
    """Finish every creation an older boundsweep left `creating`; the names finished.

    Costs one query when there are none (always, once they are done: this version never
    leaves a row `creating`); the storage (a function returning it) is opened only when
    there are.
    """
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                CampaignRecord.name,
                CampaignRecord.spec,
                CampaignRecord.created_by,
                CampaignRecord.schedule_name,
            ).where(CampaignRecord.state == "creating")
        ).all()
    finished = []
    for name, spec, source, schedule_name in rows:
        try:
            plan = CampaignSpec.model_validate(spec, context=STORED)
            launch_campaign(engine, storage(), plan, source, schedule_name)
        except (CampaignBeingCreated, CampaignExists):
            continue  # another finder is on it, or done
        except Exception:
            logger.exception("campaign %s: finishing its interrupted creation failed", name)
            continue
        finished.append(name)
    return finished


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
