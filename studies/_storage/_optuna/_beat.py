"""Heartbeats of RUNNING trials, and which ones stopped beating: the one heartbeat writer.

Every heartbeat (the claim's first, then each beat of a single trial or of a batch) is written
here with the database's clock, and staleness is decided in SQL comparing timestamps as
timestamps. On SQLite ``CURRENT_TIMESTAMP`` has whole seconds and a timestamp is text: a
heartbeat written at 04.99 s as ``...:04`` and compared as text with a cutoff bound as
``...:04.000000`` was stale 37 ms after the claim under a 1 s grace. Here SQLite writes
milliseconds (``strftime('%Y-%m-%d %H:%M:%f', 'now')``, which Optuna and SQLAlchemy read as
usual) and compares ``julianday`` numbers; PostgreSQL compares ``timestamp`` values.
"""

from __future__ import annotations

import sqlalchemy as sa
from boundsweep.studies._storage._attrs import ATTR_GRACE
from boundsweep.studies._storage._optuna import _schema as t
from boundsweep.studies._storage._optuna._schema import (
    Storage,
    engine_of,
)
from optuna.trial import TrialState

_SECONDS_PER_DAY = 86400.0


def heartbeat_now(dialect: str) -> sa.ColumnElement[object]:
    """The database's current time, as every heartbeat is written (milliseconds on SQLite)."""
    if dialect == "sqlite":
        return sa.func.strftime("%Y-%m-%d %H:%M:%f", "now")
    return sa.func.now()


def older_than(
    column: sa.ColumnElement[object], seconds: float | sa.ColumnElement[float], dialect: str
) -> sa.ColumnElement[bool]:
    """``column`` (a heartbeat) is more than ``seconds`` (a number, or a SQL expression) old by
    the database's clock, compared as a timestamp (never as text)."""
    if dialect == "sqlite":
        return sa.func.julianday(column) < sa.func.julianday("now") - seconds / _SECONDS_PER_DAY
    return column < sa.func.now() - sa.func.make_interval(
        0, 0, 0, 0, 0, 0, sa.cast(seconds, sa.Float)
    )


def beat(storage: Storage, trial_ids: list[int]) -> None:
    """One heartbeat for each of ``trial_ids`` in one statement (a single trial or a batch;
    their rows were written by the claim)."""
    beats = t.trial_heartbeats
    engine = engine_of(storage)
    with engine.begin() as conn:
        conn.execute(
            sa.update(beats)
            .where(beats.c.trial_id.in_(trial_ids))
            .values(heartbeat=heartbeat_now(engine.dialect.name))
        )


def stale_trial_ids(storage: Storage, grace_period: float) -> list[tuple[int, int]]:
    """(study id, trial id) of RUNNING trials without a heartbeat for their grace period: the
    one their claimer recorded (``boundsweep:grace_period``), else ``grace_period`` s.

    One rule for every sweeping worker: a trial is judged by the grace of the worker that
    beats for it, so a worker with a shorter grace cannot fail another's healthy trial.
    """
    trials, beats, attrs = t.trials, t.trial_heartbeats, t.trial_system_attributes
    engine = engine_of(storage)
    dialect = engine.dialect.name
    recorded = sa.cast(attrs.c.value_json, sa.Float)
    grace = sa.func.coalesce(recorded, grace_period)
    query = (
        sa.select(trials.c.study_id, trials.c.trial_id)
        .join(beats, beats.c.trial_id == trials.c.trial_id)
        .outerjoin(attrs, sa.and_(attrs.c.trial_id == trials.c.trial_id, attrs.c.key == ATTR_GRACE))
        .where(trials.c.state == TrialState.RUNNING, older_than(beats.c.heartbeat, grace, dialect))
    )
    with engine.connect() as conn:
        return [(study_id, trial_id) for study_id, trial_id in conn.execute(query)]
