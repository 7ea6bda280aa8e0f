"""The trial queue's atomic steps: claim a WAITING trial, fail a RUNNING one, re-queue it.

Optuna's own pop (``Study.ask``) reads WAITING trials and then writes RUNNING; only
PostgreSQL's ``SELECT ... FOR UPDATE`` makes that safe, and ``ask`` creates a fresh trial when
the queue is empty. Here each state change is one conditional ``UPDATE ... WHERE state = X``,
which exactly one process can win on PostgreSQL and on SQLite alike, and nothing is ever
created except as a copy of a failed trial.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import optuna
import sqlalchemy as sa
from boundsweep.studies._storage._attrs import (
    ATTR_CANCELLED,
    ATTR_INTERRUPTED,
    ATTR_PREVIOUS,
    ATTR_REQUEUED,
)
from boundsweep.studies._storage._optuna import _schema as t
from boundsweep.studies._storage._optuna._schema import (
    Storage,
    engine_of,
    forget_trials_read,
    rdb_of,
)
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.dialects import postgresql as sqlalchemy_postgresql
from sqlalchemy.dialects import sqlite as sqlalchemy_sqlite

_T = TypeVar("_T")
_ATTEMPTS = 16
"""Claims tried before giving up while others keep winning the rows picked."""


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


def beat(storage: Storage, trial_ids: list[int]) -> None:
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


def fail_if_running(storage: Storage, trial_id: int) -> bool:
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


def stale_trial_ids(storage: Storage, grace_period: float) -> list[tuple[int, int]]:
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


def requeue(storage: RDBStorage, study_id: int, trial: FrozenTrial, *, count_as_retry: bool) -> int:
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
        t.FAILED_TRIAL: trial.number,
        t.RETRY_HISTORY: [],
        **trial.system_attrs,
    }
    history = list(system_attrs[t.RETRY_HISTORY])
    if count_as_retry:
        history.append(trial.number)
    else:
        system_attrs[ATTR_INTERRUPTED] = int(system_attrs.get(ATTR_INTERRUPTED, 0)) + 1
    system_attrs[t.RETRY_HISTORY] = history
    system_attrs[ATTR_PREVIOUS] = trial.number
    system_attrs.pop(ATTR_REQUEUED, None)
    # The copy Optuna's own RetryHeartbeatStaleTrialCallback makes (user attrs included).
    copy = optuna.trial.create_trial(
        state=TrialState.WAITING,
        params=trial.params,
        distributions=trial.distributions,
        user_attrs=trial.user_attrs,
        system_attrs=system_attrs,
    )
    return rdb_of(storage).create_new_trial(study_id, template_trial=copy)


def fail_stale_trials(storage: RDBStorage, *, grace_period: float, max_retries: int) -> list[int]:
    """Fail every RUNNING trial whose worker stopped beating; re-queue those with retries left.

    Any live worker calls this now and then (a stale trial is only failed when someone
    looks). Exactly one caller wins each trial, so each crash is re-queued at most once.

    Returns:
        Ids of the trials this call failed.
    """
    failed = []
    backend = rdb_of(storage)
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
    return len(trial.system_attrs.get(t.RETRY_HISTORY, [])) < max_retries


def set_trial_user_attrs(
    storage: Storage,
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


def set_intermediate_values(storage: Storage, trial_id: int, values: dict[int, float]) -> bool:
    """Write a RUNNING trial's intermediate values (epoch -> metric) in one transaction.

    Stored exactly as ``Trial.report`` stores them, so pruners, the dashboard's curves and
    every Optuna reader see them as usual.

    Returns:
        ``False`` (nothing written) when the trial is no longer RUNNING.
    """
    return set_trial_user_attrs(storage, trial_id, {}, intermediate_values=values)


def finish_trial(
    storage: Storage,
    trial_id: int,
    value: float | None,
    *,
    state: TrialState = TrialState.COMPLETE,
    user_attrs: dict[str, Any] | None = None,
    intermediate_values: dict[int, float] | None = None,
    study: optuna.Study | None = None,
) -> bool:
    """Finish a RUNNING trial, COMPLETE with its (single-objective) value or PRUNED, in one
    transaction: the one path every arm's results take, whatever its sampler.

    Stores what Optuna's ``Study.tell`` stores (state, ``datetime_complete`` from the local
    clock, the value in ``trial_values`` with Optuna's encoding of infinities; for PRUNED the
    last intermediate value as the value unless it is NaN) without its re-reading of the whole
    trial first; the conditional ``UPDATE`` is the check that the trial is still ours
    (another worker may have failed it as stale and queued a copy). The run's record (user
    attrs, last epochs' values) goes in the same transaction, so a trial is never finished
    without it, nor holds a record once it is someone else's.

    The rest of what ``tell`` does, for the samplers that learn from results (TPE, QMC):
    it drops the trials the study's sampler read during this trial (``forget_trials_read``,
    when ``study`` is given), so its next suggestion reads this result. Optuna's trial cache
    under the study needs nothing: it re-reads every trial it holds unfinished. Its other
    step, ``sampler.after_trial``, is a no-op for every sampler ``studies.objective``
    builds (TPE without constraints, QMC, random); ``tests/studies/test_optuna_contract.py``
    shows a TPE arm finished here suggests what the same arm finished by ``tell`` suggests.

    Args:
        storage: The storage (or its engine).
        trial_id: The trial.
        value: Its value (COMPLETE); ``None`` for PRUNED.
        state: ``COMPLETE`` or ``PRUNED`` (a FAIL is ``fail_if_running``).
        user_attrs: The run's record, written with the result.
        intermediate_values: Epochs not written yet, written with the result.
        study: The study the trial was suggested through.

    Returns:
        ``False`` (nothing written) when the trial is no longer RUNNING.

    Raises:
        ValueError: A NaN or missing value for COMPLETE, a value for PRUNED, or another
            state (``tell`` refuses the same; nothing is written).
    """
    if state == TrialState.COMPLETE:
        if value is None or math.isnan(float(value)):
            raise ValueError(f"trial {trial_id}: value {value} is not acceptable for COMPLETE")
    elif state == TrialState.PRUNED:
        if value is not None:
            raise ValueError(f"trial {trial_id}: a PRUNED trial takes no value, got {value}")
    else:
        raise ValueError(f"state: expected COMPLETE or PRUNED, got {state.name}")
    trials = t.trials
    with engine_of(storage).begin() as conn:
        won = conn.execute(
            sa.update(trials)
            .where(trials.c.trial_id == trial_id, trials.c.state == TrialState.RUNNING)
            .values(state=state, datetime_complete=datetime.now())
        ).rowcount
        if won != 1:
            return False
        _write_record(conn, trial_id, user_attrs, intermediate_values)
        if state == TrialState.PRUNED:
            value = _last_intermediate_value(conn, trial_id)
        if value is not None:
            stored, kind = t.value_to_stored(float(value))
            conn.execute(
                sa.insert(t.trial_values).values(
                    trial_id=trial_id, objective=0, value=stored, value_type=kind
                )
            )
    if study is not None:
        forget_trials_read(study)
    return True


def _last_intermediate_value(conn: sa.Connection, trial_id: int) -> float | None:
    """The value ``tell`` gives a PRUNED trial: its last step's, unless that is NaN."""
    iv = t.trial_intermediate_values
    row = conn.execute(
        sa.select(iv.c.intermediate_value, iv.c.intermediate_value_type)
        .where(iv.c.trial_id == trial_id)
        .order_by(iv.c.step.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    value = t.stored_to_intermediate(*row)
    return None if math.isnan(value) else value


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
    rows = []
    for step, value in values.items():
        stored, kind = t.intermediate_to_stored(value)
        rows.append(
            {
                "trial_id": trial_id,
                "step": step,
                "intermediate_value": stored,
                "intermediate_value_type": kind,
            }
        )
    _upsert(conn, t.trial_intermediate_values, ["trial_id", "step"], rows)


_BATCH = 1_000


def enqueue_fixed_params(
    storage: Storage,
    study_id: int,
    queued: list[dict[str, Any]],
    distributions: dict[str, BaseDistribution],
    *,
    only_if_empty: bool = False,
) -> bool:
    """Queue one WAITING trial per params dict, in one transaction, with its params set.

    Returns whether trials were queued: with ``only_if_empty`` nothing is queued into a study
    that has trials already, checked under the same lock as the insert, so a creation resumed
    by two processes at once still queues each arm's trials once.

    Each trial gets what ``Study.enqueue_trial`` writes (the ``fixed_params`` system attr),
    and its params are stored with ``distributions`` as well, the way ``Trial.suggest_*``
    would store them. The objective's suggest calls then find every queued value already in
    the trial and write nothing, which saves a worker a transaction per param of every
    trial; a queued trial also shows its configuration to any Optuna reader. Done in bulk:
    Optuna adds trials one transaction each, over a minute for 1,000 trials on a busy
    PostgreSQL.
    """
    trials, attrs, params_table = t.trials, t.trial_system_attributes, t.trial_params
    missing = sorted({name for params in queued for name in params} - set(distributions))
    if missing:
        raise ValueError(f"no distribution for the queued params {missing}")
    encoded = {name: distribution_to_json(d) for name, d in distributions.items()}
    with engine_of(storage).begin() as conn:
        first = _next_trial_number(conn, study_id)
        if only_if_empty and first:
            return False
        for start in range(0, len(queued), _BATCH):
            chunk = queued[start : start + _BATCH]
            ids = list(
                conn.execute(
                    sa.insert(trials).returning(trials.c.trial_id, sort_by_parameter_order=True),
                    [
                        {
                            "study_id": study_id,
                            "number": first + start + i,
                            "state": TrialState.WAITING,
                        }
                        for i in range(len(chunk))
                    ],
                ).scalars()
            )
            conn.execute(
                sa.insert(attrs),
                [
                    {"trial_id": trial_id, "key": t.FIXED_PARAMS, "value_json": json.dumps(params)}
                    for trial_id, params in zip(ids, chunk, strict=True)
                ],
            )
            rows = [
                {
                    "trial_id": trial_id,
                    "param_name": name,
                    "param_value": distributions[name].to_internal_repr(value),
                    "distribution_json": encoded[name],
                }
                for trial_id, params in zip(ids, chunk, strict=True)
                for name, value in params.items()
            ]
            if rows:
                conn.execute(sa.insert(params_table), rows)
    return True


def add_finished_trials(storage: Storage, study_id: int, finished: list[FrozenTrial]) -> list[int]:
    """Add finished trials in a few multi-row statements, as ``Study.add_trials`` stores them.

    ``add_trials`` costs several statements per trial (minutes for 5,000 on a busy
    PostgreSQL); this writes the same rows (state, datetimes, first-objective value, params,
    user attrs, intermediate values) in one transaction. For benchmarks and imports.

    Returns:
        The new trials' ids, in order.
    """
    trials = t.trials
    with engine_of(storage).begin() as conn:
        first = _next_trial_number(conn, study_id)
        ids = list(
            conn.execute(
                sa.insert(trials).returning(trials.c.trial_id, sort_by_parameter_order=True),
                [
                    {
                        "study_id": study_id,
                        "number": first + i,
                        "state": trial.state,
                        "datetime_start": trial.datetime_start,
                        "datetime_complete": trial.datetime_complete,
                    }
                    for i, trial in enumerate(finished)
                ],
            ).scalars()
        )
        values, params = [], []
        for trial_id, trial in zip(ids, finished, strict=True):
            for objective, value in enumerate(trial.values or []):
                stored, kind = t.value_to_stored(float(value))
                values.append(
                    {
                        "trial_id": trial_id,
                        "objective": objective,
                        "value": stored,
                        "value_type": kind,
                    }
                )
            for name, value in trial.params.items():
                dist = trial.distributions[name]
                params.append(
                    {
                        "trial_id": trial_id,
                        "param_name": name,
                        "param_value": dist.to_internal_repr(value),
                        "distribution_json": distribution_to_json(dist),
                    }
                )
        if values:
            conn.execute(sa.insert(t.trial_values), values)
        if params:
            conn.execute(sa.insert(t.trial_params), params)
        for trial_id, trial in zip(ids, finished, strict=True):
            _write_record(conn, trial_id, trial.user_attrs, trial.intermediate_values)
    return ids


def requeue_given_up(storage: Storage, study_id: int, limit: int) -> int:
    """Queue a WAITING copy of up to ``limit`` FAIL trials nothing replaced yet; how many.

    A FAIL is replaced when a copy names it (``retry_history``, ``boundsweep:previous``) or
    it was re-queued already (``boundsweep:requeued``). Each is marked re-queued before its
    copy is made, by an insert Optuna's unique (trial, key) constraint lets one caller win,
    so two requeues racing copy it once. The copy has the same params and a fresh retry
    allowance (the user fixed the cause).
    """
    trials = rdb_of(storage).get_all_trials(study_id, deepcopy=False)
    replaced = {
        number
        for trial in trials
        for number in [
            *trial.system_attrs.get(t.RETRY_HISTORY, []),
            trial.system_attrs.get(ATTR_PREVIOUS),
        ]
    }
    open_fails = sorted(
        (
            trial
            for trial in trials
            if trial.state == TrialState.FAIL
            and trial.number not in replaced
            and ATTR_REQUEUED not in trial.system_attrs
        ),
        key=lambda trial: trial.number,
        reverse=True,  # the newest of a chain is the one given up on
    )
    done = 0
    for trial in open_fails[:limit]:
        try:
            with engine_of(storage).begin() as conn:
                conn.execute(
                    sa.insert(t.trial_system_attributes).values(
                        trial_id=trial._trial_id, key=ATTR_REQUEUED, value_json=json.dumps(True)
                    )
                )
        except sa.exc.IntegrityError:
            continue  # another requeue marked it first
        system_attrs = {
            key: value
            for key, value in trial.system_attrs.items()
            if key not in (ATTR_REQUEUED, ATTR_INTERRUPTED)
        }
        system_attrs.setdefault(t.FAILED_TRIAL, trial.number)  # what marks a copy
        system_attrs[t.RETRY_HISTORY] = []
        system_attrs[ATTR_PREVIOUS] = trial.number
        copy = optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            system_attrs=system_attrs,
        )
        rdb_of(storage).create_new_trial(study_id, template_trial=copy)
        done += 1
    return done


def _next_trial_number(conn: sa.Connection, study_id: int) -> int:
    """The number the study's next trial takes, with the study locked until ``conn`` commits.

    Numbers continue the study's own; the study row lock keeps them unique as Optuna's trial
    creation does (SQLite's writer lock does the same there).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.select(t.studies.c.study_id)
            .where(t.studies.c.study_id == study_id)
            .with_for_update()
        )
    trials = t.trials
    return conn.execute(
        sa.select(sa.func.count()).select_from(trials).where(trials.c.study_id == study_id)
    ).scalar_one()
