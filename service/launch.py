"""Create and cancel campaigns: the one creation protocol of the CLI, the API and the scheduler.

Creation is resumable, so no campaign stays half-made when its creator dies:

1. The registry row (primary key = campaign name) is inserted in state `creating`, with the
   creator (`host:pid`) and a heartbeat. Of two concurrent creators only one inserts it.
2. The arm studies are made step by step (`studies.storage.create_campaign`); every step can
   be done again, and the creator renews its heartbeat after each.
3. The row becomes `active`.

A creator that finds the row `creating` checks the creator: alive (same host and its process
still there, or a heartbeat younger than `CREATION_LEASE` on another host) means the name is
taken for now; dead means it takes the creation over (one compare-and-set wins) and finishes
it from the spec stored in the row (the creation's plan, kept there only while `creating`),
whatever it was asked to create. A retry of the same POST
or `boundsweep submit`, the other scheduler's takeover of a firing, and every scheduler poll
(`finish_abandoned`) do so. A creation that fails with an error (not a death) is undone: its
studies are deleted, then its row, so a name is never left taken by a campaign that does not
exist.

`BOUNDSWEEP_CREATION_KILL_AT=N` (tests only) makes the creator SIGKILL itself at its N-th step.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from boundsweep.service.db import CampaignRecord, register_campaign, utcnow
from boundsweep.studies.campaign import STORED, CampaignSpec
from boundsweep.studies.storage import (
    CampaignExists,
    CampaignStorage,
    cancel_campaign,
    create_campaign,
)

__all__ = [
    "CREATION_LEASE",
    "CampaignBeingCreated",
    "cancel",
    "creator_id",
    "finish_abandoned",
    "launch_campaign",
]

logger = logging.getLogger(__name__)

CREATION_LEASE = timedelta(seconds=60)
"""A creator on another host whose heartbeat is older than this is taken for dead (each step
of a creation, one arm's trials in one transaction, takes well under a second)."""
KILL_AT_ENV = "BOUNDSWEEP_CREATION_KILL_AT"


class CampaignBeingCreated(ValueError):
    """Another live process is creating a campaign of this name right now."""


def creator_id() -> str:
    """`host:pid` of this process, as recorded on the campaigns it creates."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(creator: str | None, heartbeat_at: Any) -> bool:
    """Whether the recorded creator may still be working on its creation."""
    if creator is None or heartbeat_at is None:
        return False  # released: its creator gave up with an error
    host, _, pid = creator.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return _process_alive(int(pid))
    return utcnow() - heartbeat_at < CREATION_LEASE


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child nobody has reaped yet is a zombie: dead all the same
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class _Steps:
    """The creator's checkpoint: renews its heartbeat; the test hook kills it at step N."""

    def __init__(self, engine: sa.Engine, name: str, me: str) -> None:
        self.engine, self.name, self.me, self.count = engine, name, me, 0
        raw = os.environ.get(KILL_AT_ENV, "")
        self.kill_at = int(raw) if raw.isdigit() else None

    def __call__(self, step: str) -> None:
        self.count += 1
        if self.kill_at == self.count:
            logger.warning("%s: killing myself at step %d (%s)", KILL_AT_ENV, self.count, step)
            os.kill(os.getpid(), signal.SIGKILL)
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(CampaignRecord)
                .where(CampaignRecord.name == self.name, CampaignRecord.creator == self.me)
                .values(heartbeat_at=utcnow())
            )


def _take_over(engine: sa.Engine, name: str, me: str) -> dict[str, Any]:
    """The stored spec of `name` if its creation was abandoned and this process won it.

    Raises:
        CampaignExists: The campaign exists (not `creating`).
        CampaignBeingCreated: Its creator is alive.
    """
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(
                CampaignRecord.state,
                CampaignRecord.creator,
                CampaignRecord.heartbeat_at,
                CampaignRecord.spec,
            ).where(CampaignRecord.name == name)
        ).one_or_none()
    if row is None:  # undone just now by its creator: the caller may try again
        raise CampaignBeingCreated(f"campaign {name!r} was being created; retry")
    state, creator, heartbeat_at, spec = row
    if state != "creating":
        raise CampaignExists(f"campaign {name!r} already exists")
    if _alive(creator, heartbeat_at):
        raise CampaignBeingCreated(
            f"campaign {name!r} is being created (by {creator}); retry in a minute"
        )
    same = sa.and_(
        CampaignRecord.creator.is_(None) if creator is None else CampaignRecord.creator == creator,
        CampaignRecord.heartbeat_at.is_(None)
        if heartbeat_at is None
        else CampaignRecord.heartbeat_at == heartbeat_at,
    )
    with engine.begin() as connection:
        won = connection.execute(
            sa.update(CampaignRecord)
            .where(CampaignRecord.name == name, CampaignRecord.state == "creating", same)
            .values(creator=me, heartbeat_at=utcnow())
        ).rowcount
    if won != 1:
        raise CampaignBeingCreated(f"campaign {name!r} is being finished by another process")
    logger.warning("campaign %s: finishing the creation %s left unfinished", name, creator)
    return spec


def launch_campaign(
    engine: sa.Engine,
    storage: CampaignStorage,
    spec: CampaignSpec,
    source: str,
    schedule_name: str | None = None,
) -> list[str]:
    """Register and create the campaign `spec`, or finish its abandoned creation.

    Args:
        engine: Engine over the service database.
        storage: The campaigns' storage over the same database (`studies.storage.open_storage`).
        spec: The validated campaign.
        source: `api`, `schedule` or `cli`.
        schedule_name: The schedule whose firing this is, if any.

    Returns:
        The arm study names.

    Raises:
        studies.storage.CampaignExists: The name is taken (registry or storage), or an
            abandoned creation of that name with another spec was finished instead.
        CampaignBeingCreated: A live process is creating a campaign of that name.
    """
    me = creator_id()
    resumed = not register_campaign(
        engine, spec, source, schedule_name, state="creating", creator=me
    )
    plan = _take_over(engine, spec.name, me) if resumed else None
    target = spec if plan is None else CampaignSpec.model_validate(plan, context=STORED)
    steps = _Steps(engine, spec.name, me)
    steps("registered")
    try:
        studies = create_campaign(storage, target, resume=resumed, checkpoint=steps)
    except BaseException:
        with engine.begin() as connection:
            mine = (CampaignRecord.name == spec.name) & (CampaignRecord.creator == me)
            if resumed:  # leave it for the next finder, at once
                connection.execute(
                    sa.update(CampaignRecord).where(mine).values(creator=None, heartbeat_at=None)
                )
            else:  # create_campaign deleted its studies: the name is free again
                connection.execute(
                    sa.delete(CampaignRecord).where(mine, CampaignRecord.state == "creating")
                )
        raise
    steps("created")
    with engine.begin() as connection:
        connection.execute(
            sa.update(CampaignRecord)
            .where(CampaignRecord.name == spec.name, CampaignRecord.state == "creating")
            # The arm studies hold the spec now: the row's plan is cleared (stored once).
            .values(state="active", creator=None, heartbeat_at=None, spec=None)
        )
    if resumed and target.model_dump(mode="json") != spec.model_dump(mode="json"):
        raise CampaignExists(
            f"campaign {spec.name!r} already exists (its interrupted creation, with another "
            "spec, was finished)"
        )
    return studies


def finish_abandoned(engine: sa.Engine, storage: Callable[[], CampaignStorage]) -> list[str]:
    """Finish every `creating` campaign whose creator died; the names finished.

    Costs one query when there are none; the storage (a function returning it) is opened only
    when there are.
    """
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                CampaignRecord.name,
                CampaignRecord.spec,
                CampaignRecord.created_by,
                CampaignRecord.schedule_name,
                CampaignRecord.creator,
                CampaignRecord.heartbeat_at,
            ).where(CampaignRecord.state == "creating")
        ).all()
    finished = []
    for name, spec, source, schedule_name, creator, heartbeat_at in rows:
        if _alive(creator, heartbeat_at):
            continue
        try:
            launch_campaign(
                engine,
                storage(),
                CampaignSpec.model_validate(spec, context=STORED),
                source,
                schedule_name,
            )
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
