"""The claim: WAITING trials to RUNNING, each won by exactly one process.

Optuna's own pop (``Study.ask``) reads WAITING trials and then writes RUNNING; only
PostgreSQL's ``SELECT ... FOR UPDATE`` makes that safe, and ``ask`` creates a fresh trial when
the queue is empty. Here the claim is one conditional ``UPDATE ... WHERE state = WAITING``,
which exactly one process can win on PostgreSQL and on SQLite alike, and nothing is ever
created except as a copy of a failed trial.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from boundsweep.studies._storage._attrs import (
    ATTR_CANCELLED,
    ATTR_GRACE,
)
from boundsweep.studies._storage._optuna import _schema as t
from boundsweep.studies._storage._optuna._beat import heartbeat_now
from boundsweep.studies._storage._optuna._finish import upsert
from boundsweep.studies._storage._optuna._schema import (
    Storage,
    engine_of,
)
from optuna.distributions import json_to_distribution
from optuna.trial import FrozenTrial, TrialState

_T = TypeVar("_T")
CLAIMER_ATTR = "worker"
"""The user attr naming the worker (``host:pid``) that claimed a trial, written by the claim."""
_ATTEMPTS = 16


def claim_waiting_trial(
    storage: Storage,
    study_id: int,
    *,
    claimer: str | None = None,
    grace_period: float | None = None,
) -> int | None:
    """Move the first WAITING trial of the study to RUNNING, with a first heartbeat; its id.

    Returns ``None`` when the study has no WAITING trial left (or others took them all), or
    its campaign was cancelled. See ``claim_trials``, which also returns the trials.
    """
    won = _claim(
        storage, study_id, 1, claimer, grace_period, lambda _conn, won: [row[0] for row in won]
    )
    return won[0] if won else None


def claim_trial(
    storage: Storage,
    study_id: int,
    *,
    claimer: str | None = None,
    grace_period: float | None = None,
) -> FrozenTrial | None:
    """Claim one trial as ``claim_trials`` does; the trial as it stands once claimed."""
    claimed = claim_trials(storage, study_id, 1, claimer=claimer, grace_period=grace_period)
    return claimed[0] if claimed else None


def claim_trials(
    storage: Storage,
    study_id: int,
    limit: int,
    *,
    claimer: str | None = None,
    grace_period: float | None = None,
) -> list[FrozenTrial]:
    """Move up to ``limit`` WAITING trials of the study to RUNNING in one statement; the
    trials as they stand once claimed (``[]`` when none is left, or it was cancelled).

    One transaction: the claim, the first heartbeat of every trial, the claimer (the
    ``worker`` user attr, when given), the claimer's grace period (the
    ``boundsweep:grace_period`` system attr, when given: the trial is stale only after that
    long without a heartbeat, whoever sweeps) and one read per table of all the trials claimed
    (set-based, whatever ``limit``). The trials read are exactly what ``storage.get_trial``
    would return right after; ``CampaignStorage.primed`` lets the ``optuna.Trial`` built next
    use them. Every row is won by exactly one process, and racing workers split the queue
    instead of waiting on each other. A worker killed right after the claim leaves trials
    that all go stale and are all retried.
    """
    if limit < 1:
        raise ValueError(f"limit: expected a number >= 1, got {limit}")
    return _claim(storage, study_id, limit, claimer, grace_period, read_trials) or []


_Won = list[sa.Row[tuple[int, int, datetime]]]


def _claim(
    storage: Storage,
    study_id: int,
    limit: int,
    claimer: str | None,
    grace_period: float | None,
    then: Callable[[sa.Connection, _Won], _T],
) -> _T | None:
    """The claim (of one trial or of a batch): one ``UPDATE`` whose subquery picks up to
    ``limit`` trials; ``then(conn, won)`` runs in its transaction on the (trial_id, number,
    datetime_start) rows won, in trial order, and gives the result.

    On PostgreSQL the subquery takes ``FOR UPDATE SKIP LOCKED``, so racing workers take
    different rows instead of queueing on one; the ``UPDATE``'s own ``state = WAITING``
    condition lets exactly one process win a row, on PostgreSQL and SQLite alike.
    """
    trials, sua = t.trials, t.study_user_attributes
    cancelled = sa.exists().where(
        sua.c.study_id == study_id,
        sua.c.key == ATTR_CANCELLED,
        sua.c.value_json == t.attr_json(True),
    )
    first_waiting = (
        sa.select(trials.c.trial_id)
        .where(trials.c.study_id == study_id, trials.c.state == TrialState.WAITING, ~cancelled)
        .order_by(trials.c.number)
        .limit(limit)
        .with_for_update(skip_locked=True)  # SQLite has no row locks and renders nothing
    )
    claim = (
        sa.update(trials)
        .where(trials.c.trial_id.in_(first_waiting), trials.c.state == TrialState.WAITING)
        .values(state=TrialState.RUNNING, datetime_start=datetime.now())
        .returning(trials.c.trial_id, trials.c.number, trials.c.datetime_start)
    )
    engine = engine_of(storage)
    now = heartbeat_now(engine.dialect.name)
    for _ in range(_ATTEMPTS):
        with engine.begin() as conn:
            won = sorted(conn.execute(claim).all(), key=lambda row: row[1])
            if won:
                conn.execute(
                    sa.insert(t.trial_heartbeats).values(
                        [{"trial_id": trial_id, "heartbeat": now} for trial_id, *_ in won]
                    )
                )
                for table, key, value in (
                    (t.trial_user_attributes, CLAIMER_ATTR, claimer),
                    (t.trial_system_attributes, ATTR_GRACE, grace_period),
                ):
                    if value is not None:  # the same attr on every won trial, one statement
                        rows = [
                            {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
                            for trial_id, *_ in won
                        ]
                        upsert(conn, table, ["trial_id", "key"], rows)
                return then(conn, won)
            # Nothing won: the queue is empty, or (PostgreSQL, READ COMMITTED) the rows picked
            # were taken by claims that committed meanwhile; only the first case stays empty.
            left = conn.execute(
                sa.select(sa.func.count())
                .select_from(trials)
                .where(trials.c.study_id == study_id, trials.c.state == TrialState.WAITING)
                .where(~cancelled)
            ).scalar_one()
        if left == 0:
            return None
    return None


def read_trials(
    conn: sa.Connection,
    won: Sequence[tuple[int, int, datetime]],
    state: TrialState = TrialState.RUNNING,
) -> list[FrozenTrial]:
    """Trials' params and attrs, as ``RDBStorage.get_trial`` builds them: one query per table
    for all of them. ``won``: (trial id, number, datetime_start) of each.

    Values and intermediate values are not read: a trial just claimed from the queue has
    none (a copy of a failed trial carries neither), and a trial given back is only copied.
    """
    p, ua, sa_ = t.trial_params, t.trial_user_attributes, t.trial_system_attributes
    ids = [row[0] for row in won]
    params: dict[int, list[tuple[str, float, str]]] = {i: [] for i in ids}
    for trial_id, name, value, encoded in conn.execute(
        sa.select(p.c.trial_id, p.c.param_name, p.c.param_value, p.c.distribution_json)
        .where(p.c.trial_id.in_(ids))
        .order_by(p.c.param_id)
    ):
        params[trial_id].append((name, value, encoded))
    user: dict[int, dict[str, object]] = {i: {} for i in ids}
    for trial_id, key, value in conn.execute(
        sa.select(ua.c.trial_id, ua.c.key, ua.c.value_json).where(ua.c.trial_id.in_(ids))
    ):
        user[trial_id][key] = json.loads(value)
    system: dict[int, dict[str, object]] = {i: {} for i in ids}
    for trial_id, key, value in conn.execute(
        sa.select(sa_.c.trial_id, sa_.c.key, sa_.c.value_json).where(sa_.c.trial_id.in_(ids))
    ):
        system[trial_id][key] = json.loads(value)
    frozen = []
    for trial_id, number, started in won:
        dists = {name: json_to_distribution(encoded) for name, _, encoded in params[trial_id]}
        frozen.append(
            FrozenTrial(
                number=number,
                state=state,
                value=None,
                values=None,
                datetime_start=started,
                datetime_complete=None,
                params={
                    name: dists[name].to_external_repr(value) for name, value, _ in params[trial_id]
                },
                distributions=dists,
                user_attrs=user[trial_id],
                system_attrs=system[trial_id],
                intermediate_values={},
                trial_id=trial_id,
            )
        )
    return frozen
