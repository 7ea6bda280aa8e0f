"""The trial queue's atomic steps: claim a WAITING trial, fail a RUNNING one, re-queue it.

Optuna's own pop (``Study.ask``) reads WAITING trials and then writes RUNNING; only
PostgreSQL's ``SELECT ... FOR UPDATE`` makes that safe, and ``ask`` creates a fresh trial when
the queue is empty. Here each state change is one conditional ``UPDATE ... WHERE state = X``,
which exactly one process can win on PostgreSQL and on SQLite alike, and nothing is ever
created except as a copy of a failed trial.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import optuna
import sqlalchemy as sa
from boundsweep.studies._storage import _tables as t
from boundsweep.studies._storage._open import engine_of
from optuna.distributions import json_to_distribution
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.dialects import postgresql as sqlalchemy_postgresql
from sqlalchemy.dialects import sqlite as sqlalchemy_sqlite

_T = TypeVar("_T")
_ATTEMPTS = 16
"""Claims tried before giving up while others keep winning the rows picked."""
ATTR_RETRY_HISTORY = "retry_history"  # the key RetryHeartbeatStaleTrialCallback keeps
ATTR_INTERRUPTED = "boundsweep:interrupted"


def claim_waiting_trial(storage: Any, study_id: int) -> int | None:
    """Move the first WAITING trial of the study to RUNNING, with a first heartbeat; its id.

    Returns ``None`` when the study has no WAITING trial left (or others took them all), or
    its campaign was cancelled. See ``claim_trial``, which also returns the trial itself.
    """
    return _claim(storage, study_id, lambda _conn, trial_id, _number, _started: trial_id)


def claim_trial(storage: Any, study_id: int) -> FrozenTrial | None:
    """Claim as ``claim_waiting_trial`` does; the trial as it stands once claimed.

    The trial is read in the claim's own transaction (its params, attrs and values), so it is
    exactly what ``storage.get_trial`` would return right after; ``CampaignStorage.primed``
    lets the ``optuna.Trial`` built next use it instead of reading it again.
    """
    return _claim(storage, study_id, _read_trial)


def _claim(
    storage: Any, study_id: int, then: Callable[[sa.Connection, int, int, datetime], _T]
) -> _T | None:
    """The claim: one ``UPDATE`` whose subquery picks the trial; ``then(conn, trial_id,
    number, datetime_start)`` runs in its transaction and gives the result.

    On PostgreSQL the subquery takes ``FOR UPDATE SKIP LOCKED``, so racing workers take
    different rows instead of queueing on one; the ``UPDATE``'s own ``state = WAITING``
    condition lets exactly one process win a row, on PostgreSQL and SQLite alike. The
    heartbeat is written in the same transaction, so a worker killed right after the claim
    still leaves a trial that goes stale and is retried.
    """
    trials, sua = t.trials, t.study_user_attributes
    cancelled = sa.exists().where(
        sua.c.study_id == study_id,
        sua.c.key == t.ATTR_CANCELLED,
        sua.c.value_json == t.attr_json(True),
    )
    first_waiting = (
        sa.select(trials.c.trial_id)
        .where(trials.c.study_id == study_id, trials.c.state == TrialState.WAITING, ~cancelled)
        .order_by(trials.c.number)
        .limit(1)
        .with_for_update(skip_locked=True)  # SQLite has no row locks and renders nothing
        .scalar_subquery()
    )
    claim = (
        sa.update(trials)
        .where(trials.c.trial_id == first_waiting, trials.c.state == TrialState.WAITING)
        .values(state=TrialState.RUNNING, datetime_start=datetime.now())
        .returning(trials.c.trial_id, trials.c.number, trials.c.datetime_start)
    )
    engine = engine_of(storage)
    for _ in range(_ATTEMPTS):
        with engine.begin() as conn:
            won = conn.execute(claim).one_or_none()
            if won is not None:
                trial_id, number, started = won
                conn.execute(
                    sa.insert(t.trial_heartbeats).values(trial_id=trial_id, heartbeat=sa.func.now())
                )
                return then(conn, trial_id, number, started)
            # Nothing won: the queue is empty, or (PostgreSQL, READ COMMITTED) the row picked
            # was taken by a claim that committed meanwhile; only the first case stays empty.
            left = conn.execute(
                sa.select(sa.func.count())
                .select_from(trials)
                .where(trials.c.study_id == study_id, trials.c.state == TrialState.WAITING)
                .where(~cancelled)
            ).scalar_one()
        if left == 0:
            return None
    return None


def claim_trials(storage: Any, study_id: int, limit: int) -> list[FrozenTrial]:
    """Move up to ``limit`` WAITING trials of the study to RUNNING in one statement; the
    trials as they stand once claimed (``[]`` when none is left, or it was cancelled).

    A batched worker trains them together (``workers._batch``). It is ``_claim`` with the
    subquery picking ``limit`` rows instead of one: one ``UPDATE ... WHERE trial_id IN
    (SELECT ... LIMIT k FOR UPDATE SKIP LOCKED) AND state = WAITING``, so every row is won by
    exactly one process, and racing workers split the queue instead of waiting on each other.
    The heartbeats of all of them are written in the same transaction: a worker killed right
    after the claim leaves K trials that all go stale and are all retried.
    """
    if limit < 1:
        raise ValueError(f"limit: expected a number >= 1, got {limit}")
    trials, sua = t.trials, t.study_user_attributes
    cancelled = sa.exists().where(
        sua.c.study_id == study_id,
        sua.c.key == t.ATTR_CANCELLED,
        sua.c.value_json == t.attr_json(True),
    )
    first_waiting = (
        sa.select(trials.c.trial_id)
        .where(trials.c.study_id == study_id, trials.c.state == TrialState.WAITING, ~cancelled)
        .order_by(trials.c.number)
        .limit(limit)
        .with_for_update(skip_locked=True)
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
                return [_read_trial(conn, *row) for row in won]
            left = conn.execute(
                sa.select(sa.func.count())
                .select_from(trials)
                .where(trials.c.study_id == study_id, trials.c.state == TrialState.WAITING)
                .where(~cancelled)
            ).scalar_one()
        if left == 0:
            return []
    return []


def beat(storage: Any, trial_ids: list[int]) -> None:
    """One heartbeat for each of ``trial_ids`` in one statement (a batch's trials beat
    together; their rows were written by the claim)."""
    beats = t.trial_heartbeats
    with engine_of(storage).begin() as conn:
        conn.execute(
            sa.update(beats).where(beats.c.trial_id.in_(trial_ids)).values(heartbeat=sa.func.now())
        )


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
            values[objective] = models.TrialValueModel.stored_repr_to_value(value, kind)
    steps = conn.execute(
        sa.select(iv.c.step, iv.c.intermediate_value, iv.c.intermediate_value_type).where(
            iv.c.trial_id == trial_id
        )
    )
    to_value = models.TrialIntermediateValueModel.stored_repr_to_intermediate_value
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


def fail_if_running(storage: Any, trial_id: int) -> bool:
    """Move a RUNNING trial to FAIL; ``False`` if it was not RUNNING (someone else won)."""
    trials = t.trials
    with engine_of(storage).begin() as conn:
        return (
            conn.execute(
                sa.update(trials)
                .where(trials.c.trial_id == trial_id, trials.c.state == TrialState.RUNNING)
                .values(state=TrialState.FAIL, datetime_complete=datetime.now())
            ).rowcount
            == 1
        )


def stale_trial_ids(storage: Any, grace_period: float) -> list[tuple[int, int]]:
    """(study id, trial id) of RUNNING trials without a heartbeat for ``grace_period`` s."""
    trials, beats = t.trials, t.trial_heartbeats
    with engine_of(storage).connect() as conn:
        # The database's clock, the one heartbeats are written with (as Optuna does).
        now = conn.execute(sa.select(sa.func.now())).scalar_one()
        cutoff = now.replace(tzinfo=None) - timedelta(seconds=grace_period)
        query = (
            sa.select(trials.c.study_id, trials.c.trial_id)
            .join(beats, beats.c.trial_id == trials.c.trial_id)
            .where(trials.c.state == TrialState.RUNNING, beats.c.heartbeat < cutoff)
        )
        return [(study_id, trial_id) for study_id, trial_id in conn.execute(query)]


def requeue(storage: Any, study_id: int, trial: FrozenTrial, *, count_as_retry: bool) -> int:
    """Queue a WAITING copy of a failed trial (same params, same seed); the copy's id.

    Args:
        storage: The ``RDBStorage``.
        study_id: The trial's study.
        trial: The failed trial.
        count_as_retry: ``True`` for a crash (it counts towards the retry limit, kept in the
            ``retry_history`` system attr as ``RetryHeartbeatStaleTrialCallback`` does);
            ``False`` for a worker that was asked to stop, which is not the trial's fault.
    """
    system_attrs: dict[str, Any] = {
        "failed_trial": trial.number,
        ATTR_RETRY_HISTORY: [],
        **trial.system_attrs,
    }
    history = list(system_attrs[ATTR_RETRY_HISTORY])
    if count_as_retry:
        history.append(trial.number)
    else:
        system_attrs[ATTR_INTERRUPTED] = int(system_attrs.get(ATTR_INTERRUPTED, 0)) + 1
    system_attrs[ATTR_RETRY_HISTORY] = history
    copy = optuna.trial.create_trial(
        state=TrialState.WAITING,
        params=trial.params,
        distributions=trial.distributions,
        system_attrs=system_attrs,
    )
    return _rdb(storage).create_new_trial(study_id, template_trial=copy)


def _rdb(storage: Any) -> RDBStorage:
    backend = getattr(storage, "_backend", storage)  # optuna's _CachedStorage wraps the RDB one
    if not isinstance(backend, RDBStorage):
        raise TypeError(f"expected an RDBStorage, got {type(storage).__name__}")
    return backend


def fail_stale_trials(storage: Any, *, grace_period: float, max_retries: int) -> list[int]:
    """Fail every RUNNING trial whose worker stopped beating; re-queue those with retries left.

    Any live worker calls this now and then (a stale trial is only failed when someone
    looks). Exactly one caller wins each trial, so each crash is re-queued at most once.

    Returns:
        Ids of the trials this call failed.
    """
    failed = []
    backend = _rdb(storage)
    for study_id, trial_id in stale_trial_ids(backend, grace_period):
        if not fail_if_running(backend, trial_id):
            continue
        failed.append(trial_id)
        trial = backend.get_trial(trial_id)
        if retries_left(trial, max_retries):
            requeue(backend, study_id, trial, count_as_retry=True)
    return failed


def retries_left(trial: FrozenTrial, max_retries: int) -> bool:
    """Whether a crashed trial may be queued once more."""
    return len(trial.system_attrs.get(ATTR_RETRY_HISTORY, [])) < max_retries


def set_trial_user_attrs(
    storage: Any,
    trial_id: int,
    attrs: dict[str, Any],
    *,
    intermediate_values: dict[int, float] | None = None,
) -> bool:
    """Write several user attrs (and intermediate values) of a RUNNING trial in one transaction.

    ``Trial.set_user_attr`` costs a transaction (and a trial read) per key; a trial's record
    has a dozen keys. Values are stored as Optuna stores them (JSON), so every Optuna reader
    sees them as usual. A trial's last epochs ride along in the same transaction (their writer
    batches them, see ``studies.objective``).

    Returns:
        ``False`` (nothing written) when the trial is no longer RUNNING.
    """
    with engine_of(storage).begin() as conn:
        if not _is_running(conn, trial_id):
            return False
        _write_record(conn, trial_id, attrs, intermediate_values)
    return True


def set_intermediate_values(storage: Any, trial_id: int, values: dict[int, float]) -> bool:
    """Write a RUNNING trial's intermediate values (epoch -> metric) in one transaction.

    Stored exactly as ``Trial.report`` stores them, so pruners, the dashboard's curves and
    every Optuna reader see them as usual.

    Returns:
        ``False`` (nothing written) when the trial is no longer RUNNING.
    """
    return set_trial_user_attrs(storage, trial_id, {}, intermediate_values=values)


def finish_trial(
    storage: Any,
    trial_id: int,
    value: float,
    *,
    user_attrs: dict[str, Any] | None = None,
    intermediate_values: dict[int, float] | None = None,
) -> bool:
    """COMPLETE a RUNNING trial with its (single-objective) value, in one transaction.

    Stores what Optuna's ``Study.tell`` stores (state, ``datetime_complete`` from the local
    clock, the value in ``trial_values`` with Optuna's encoding of infinities) without its
    re-reading of the whole trial first; the conditional ``UPDATE`` is the check that the
    trial is still ours (another worker may have failed it as stale and queued a copy). The
    run's record (user attrs, last epochs' values) goes in the same transaction, so a trial
    is never COMPLETE without it, nor holds a record once it is someone else's.

    Returns:
        ``False`` (nothing written) when the trial is no longer RUNNING.
    """
    trials = t.trials
    stored, kind = models.TrialValueModel.value_to_stored_repr(float(value))
    with engine_of(storage).begin() as conn:
        won = conn.execute(
            sa.update(trials)
            .where(trials.c.trial_id == trial_id, trials.c.state == TrialState.RUNNING)
            .values(state=TrialState.COMPLETE, datetime_complete=datetime.now())
        ).rowcount
        if won != 1:
            return False
        conn.execute(
            sa.insert(t.trial_values).values(
                trial_id=trial_id, objective=0, value=stored, value_type=kind
            )
        )
        _write_record(conn, trial_id, user_attrs, intermediate_values)
    return True


def _write_record(
    conn: sa.Connection,
    trial_id: int,
    attrs: dict[str, Any] | None,
    intermediate_values: dict[int, float] | None,
) -> None:
    if attrs:
        _write_user_attrs(conn, trial_id, attrs)
    if intermediate_values:
        _write_intermediate_values(conn, trial_id, intermediate_values)


def _is_running(conn: sa.Connection, trial_id: int) -> bool:
    trials = t.trials
    state = conn.execute(
        sa.select(trials.c.state).where(trials.c.trial_id == trial_id)
    ).scalar_one_or_none()
    return state == TrialState.RUNNING


def _upsert(
    conn: sa.Connection, table: sa.Table, key: list[str], rows: list[dict[str, Any]]
) -> None:
    """Insert ``rows``, replacing the rows that share ``key`` (one statement where the
    database has ``ON CONFLICT``, as PostgreSQL and SQLite do; delete + insert elsewhere)."""
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        module = sqlalchemy_postgresql if dialect == "postgresql" else sqlalchemy_sqlite
        stmt = module.insert(table)
        updated = {c: stmt.excluded[c] for c in rows[0] if c not in key}
        conn.execute(stmt.on_conflict_do_update(index_elements=key, set_=updated), rows)
        return
    conditions = [table.c[c].in_([r[c] for r in rows]) for c in key]
    conn.execute(sa.delete(table).where(*conditions))
    conn.execute(sa.insert(table), rows)


def _write_user_attrs(conn: sa.Connection, trial_id: int, attrs: dict[str, Any]) -> None:
    rows = [
        {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
        for key, value in attrs.items()
    ]
    _upsert(conn, t.trial_user_attributes, ["trial_id", "key"], rows)


def _write_intermediate_values(
    conn: sa.Connection, trial_id: int, values: dict[int, float]
) -> None:
    model = models.TrialIntermediateValueModel
    rows = []
    for step, value in values.items():
        stored, kind = model.intermediate_value_to_stored_repr(value)
        rows.append(
            {
                "trial_id": trial_id,
                "step": step,
                "intermediate_value": stored,
                "intermediate_value_type": kind,
            }
        )
    _upsert(conn, t.trial_intermediate_values, ["trial_id", "step"], rows)
