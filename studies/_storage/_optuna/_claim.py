"""The claim: WAITING trials to RUNNING, each won by exactly one process.

Optuna's own pop (``Study.ask``) reads WAITING trials and then writes RUNNING; only
PostgreSQL's ``SELECT ... FOR UPDATE`` makes that safe, and ``ask`` creates a fresh trial when
the queue is empty. Here the claim is one conditional ``UPDATE ... WHERE state = WAITING``,
which exactly one process can win on PostgreSQL and on SQLite alike, and nothing is ever
created except as a copy of a failed trial.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from boundsweep.studies._storage._attrs import (
    ATTR_CANCELLED,
)
from boundsweep.studies._storage._optuna import _schema as t
from boundsweep.studies._storage._optuna._schema import (
    Storage,
    engine_of,
)
from optuna.distributions import json_to_distribution
from optuna.trial import FrozenTrial, TrialState

_T = TypeVar("_T")
_ATTEMPTS = 16


def claim_waiting_trial(storage: Storage, study_id: int) -> int | None:
    """Move the first WAITING trial of the study to RUNNING, with a first heartbeat; its id.

    Returns ``None`` when the study has no WAITING trial left (or others took them all), or
    its campaign was cancelled. See ``claim_trial``, which also returns the trial itself.
    """
    return _claim(storage, study_id, 1, lambda _conn, won: won[0][0])


def claim_trial(storage: Storage, study_id: int) -> FrozenTrial | None:
    """Claim as ``claim_waiting_trial`` does; the trial as it stands once claimed.

    The trial is read in the claim's own transaction (its params, attrs and values), so it is
    exactly what ``storage.get_trial`` would return right after; ``CampaignStorage.primed``
    lets the ``optuna.Trial`` built next use it instead of reading it again.
    """
    return _claim(storage, study_id, 1, lambda conn, won: _read_trial(conn, *won[0]))


def claim_trials(storage: Storage, study_id: int, limit: int) -> list[FrozenTrial]:
    """Move up to ``limit`` WAITING trials of the study to RUNNING in one statement; the
    trials as they stand once claimed (``[]`` when none is left, or it was cancelled).

    A batched worker trains them together (``workers._batch``). Every row is won by exactly
    one process, and racing workers split the queue instead of waiting on each other. The
    heartbeats of all of them are written in the same transaction: a worker killed right
    after the claim leaves K trials that all go stale and are all retried.
    """
    if limit < 1:
        raise ValueError(f"limit: expected a number >= 1, got {limit}")
    claimed = _claim(
        storage, study_id, limit, lambda conn, won: [_read_trial(conn, *row) for row in won]
    )
    return claimed or []


_Won = list[sa.Row[tuple[int, int, datetime]]]


def _claim(
    storage: Storage, study_id: int, limit: int, then: Callable[[sa.Connection, _Won], _T]
) -> _T | None:
    """The claim (of one trial or of a batch): one ``UPDATE`` whose subquery picks up to
    ``limit`` trials; ``then(conn, won)`` runs in its transaction on the (trial_id, number,
    datetime_start) rows won, in trial order, and gives the result.

    On PostgreSQL the subquery takes ``FOR UPDATE SKIP LOCKED``, so racing workers take
    different rows instead of queueing on one; the ``UPDATE``'s own ``state = WAITING``
    condition lets exactly one process win a row, on PostgreSQL and SQLite alike. The
    heartbeats are written in the same transaction, so a worker killed right after the claim
    still leaves trials that go stale and are retried.
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
    for _ in range(_ATTEMPTS):
        with engine.begin() as conn:
            won = sorted(conn.execute(claim).all(), key=lambda row: row[1])
            if won:
                conn.execute(
                    sa.insert(t.trial_heartbeats).values(
                        [{"trial_id": trial_id, "heartbeat": sa.func.now()} for trial_id, *_ in won]
                    )
                )
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


def _read_trial(conn: sa.Connection, trial_id: int, number: int, started: datetime) -> FrozenTrial:
    """A RUNNING trial's params, attrs and values, as ``RDBStorage.get_trial`` builds them."""
    p, ua, sa_, v, iv = (
        t.trial_params,
        t.trial_user_attributes,
        t.trial_system_attributes,
        t.trial_values,
        t.trial_intermediate_values,
    )
    params = conn.execute(
        sa.select(p.c.param_name, p.c.param_value, p.c.distribution_json)
        .where(p.c.trial_id == trial_id)
        .order_by(p.c.param_id)
    ).all()
    dists = {name: json_to_distribution(encoded) for name, _, encoded in params}
    user = conn.execute(sa.select(ua.c.key, ua.c.value_json).where(ua.c.trial_id == trial_id))
    system = conn.execute(sa.select(sa_.c.key, sa_.c.value_json).where(sa_.c.trial_id == trial_id))
    stored = conn.execute(
        sa.select(v.c.objective, v.c.value, v.c.value_type).where(v.c.trial_id == trial_id)
    ).all()
    values: list[float] | None = None
    if stored:
        values = [0.0] * len(stored)
        for objective, value, kind in stored:
            values[objective] = t.stored_to_value(value, kind)
    steps = conn.execute(
        sa.select(iv.c.step, iv.c.intermediate_value, iv.c.intermediate_value_type).where(
            iv.c.trial_id == trial_id
        )
    )
    to_value = t.stored_to_intermediate
    return FrozenTrial(
        number=number,
        state=TrialState.RUNNING,
        value=None,
        values=values,
        datetime_start=started,
        datetime_complete=None,
        params={name: dists[name].to_external_repr(value) for name, value, _ in params},
        distributions=dists,
        user_attrs={key: json.loads(value) for key, value in user},
        system_attrs={key: json.loads(value) for key, value in system},
        intermediate_values={step: to_value(value, kind) for step, value, kind in steps},
        trial_id=trial_id,
    )
