"""Finishing a RUNNING trial (COMPLETE or PRUNED) with its record, and its records before that."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import optuna
import sqlalchemy as sa
from boundsweep.studies._storage._optuna import _schema as t
from boundsweep.studies._storage._optuna._schema import (
    Storage,
    engine_of,
    forget_trials_read,
)
from optuna.trial import TrialState
from sqlalchemy.dialects import postgresql as sqlalchemy_postgresql
from sqlalchemy.dialects import sqlite as sqlalchemy_sqlite


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


@dataclass
class Finished:
    """One RUNNING trial's end, for ``finish_trials``.

    Attributes:
        trial_id: The trial.
        value: Its value (COMPLETE); ``None`` for PRUNED.
        state: ``COMPLETE`` or ``PRUNED`` (a FAIL is ``give_back`` / ``fail_if_running``).
        user_attrs: The run's record, written with the result.
        intermediate_values: Epochs not written yet, written with the result.
    """

    trial_id: int
    value: float | None
    state: TrialState = TrialState.COMPLETE
    user_attrs: dict[str, Any] | None = None
    intermediate_values: dict[int, float] | None = None


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
    """Finish one RUNNING trial (``finish_trials`` with one); ``False`` (nothing written)
    when it is no longer RUNNING."""
    end = Finished(trial_id, value, state, user_attrs, intermediate_values)
    return trial_id in finish_trials(storage, [end], studies=[study] if study else [])


def finish_trials(
    storage: Storage, ends: list[Finished], *, studies: list[optuna.Study] | tuple = ()
) -> set[int]:
    """Finish RUNNING trials, each COMPLETE with its (single-objective) value or PRUNED, in
    one transaction: the one path every result takes, a single trial's or a batch's.

    Stores what Optuna's ``Study.tell`` stores (state, ``datetime_complete`` from the local
    clock, the value in ``trial_values`` with Optuna's encoding of infinities; for PRUNED the
    last intermediate value as the value unless it is NaN) without its re-reading of the whole
    trial first; the conditional ``UPDATE`` is the check that each trial is still ours
    (another worker may have failed it as stale and queued a copy): a trial that is not is
    skipped, the others are finished. Each run's record (user attrs, last epochs' values) goes
    in the same transaction, so a trial is never finished without it, nor holds a record once
    it is someone else's. One statement per table for all the trials.

    The rest of what ``tell`` does, for the samplers that learn from results (TPE, QMC):
    it drops the trials each of ``studies``' samplers read during the trial
    (``forget_trials_read``), so its next suggestion reads this result. Its other step,
    ``sampler.after_trial``, is a no-op for every sampler ``studies.objective`` builds (TPE
    without constraints, QMC, random); ``tests/studies/test_optuna_contract.py`` shows a TPE
    arm finished here suggests what the same arm finished by ``tell`` suggests.

    Returns:
        The ids of the trials finished (those still RUNNING).

    Raises:
        ValueError: A NaN or missing value for COMPLETE, a value for PRUNED, or another
            state (``tell`` refuses the same; nothing is written).
    """
    for end in ends:
        if end.state == TrialState.COMPLETE:
            if end.value is None or math.isnan(float(end.value)):
                raise ValueError(
                    f"trial {end.trial_id}: value {end.value} is not acceptable for COMPLETE"
                )
        elif end.state == TrialState.PRUNED:
            if end.value is not None:
                raise ValueError(
                    f"trial {end.trial_id}: a PRUNED trial takes no value, got {end.value}"
                )
        else:
            raise ValueError(f"state: expected COMPLETE or PRUNED, got {end.state.name}")
    trials = t.trials
    won: set[int] = set()
    with engine_of(storage).begin() as conn:
        for state in (TrialState.COMPLETE, TrialState.PRUNED):
            ids = [end.trial_id for end in ends if end.state == state]
            if ids:
                won.update(
                    conn.execute(
                        sa.update(trials)
                        .where(trials.c.trial_id.in_(ids), trials.c.state == TrialState.RUNNING)
                        .values(state=state, datetime_complete=datetime.now())
                        .returning(trials.c.trial_id)
                    ).scalars()
                )
        mine = [end for end in ends if end.trial_id in won]
        write_records(
            conn, {end.trial_id: (end.user_attrs, end.intermediate_values) for end in mine}
        )
        values = []
        for end in mine:
            value = end.value
            if end.state == TrialState.PRUNED:
                value = _last_intermediate_value(conn, end.trial_id)
            if value is not None:
                stored, kind = t.value_to_stored(float(value))
                values.append(
                    {"trial_id": end.trial_id, "objective": 0, "value": stored, "value_type": kind}
                )
        if values:
            conn.execute(sa.insert(t.trial_values), values)
    for study in studies:
        forget_trials_read(study)
    return won


def set_intermediate_values_of(
    storage: Storage,
    values: dict[int, dict[int, float]],
    *,
    user_attrs: dict[int, dict[str, Any]] | None = None,
) -> set[int]:
    """Write several RUNNING trials' intermediate values (trial id -> epoch -> metric), and
    user attrs (trial id -> attrs), in one transaction: a batch's live epochs. The ids of the
    trials still RUNNING, whose values were written (the others are skipped)."""
    trials = t.trials
    user_attrs = user_attrs or {}
    ids = sorted({*values, *user_attrs})
    with engine_of(storage).begin() as conn:
        running = set(
            conn.execute(
                sa.select(trials.c.trial_id).where(
                    trials.c.trial_id.in_(ids), trials.c.state == TrialState.RUNNING
                )
            ).scalars()
        )
        write_records(
            conn,
            {i: (user_attrs.get(i), values.get(i)) for i in ids if i in running},
        )
    return running


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
    write_records(conn, {trial_id: (attrs, intermediate_values)})


def write_records(
    conn: sa.Connection,
    records: dict[int, tuple[dict[str, Any] | None, dict[int, float] | None]],
) -> None:
    """Upsert trials' user attrs and intermediate values: one statement per table for all."""
    attrs = [
        {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
        for trial_id, (user_attrs, _) in records.items()
        for key, value in (user_attrs or {}).items()
    ]
    if attrs:
        upsert(conn, t.trial_user_attributes, ["trial_id", "key"], attrs)
    steps = []
    for trial_id, (_, values) in records.items():
        for step, value in (values or {}).items():
            stored, kind = t.intermediate_to_stored(value)
            steps.append(
                {
                    "trial_id": trial_id,
                    "step": step,
                    "intermediate_value": stored,
                    "intermediate_value_type": kind,
                }
            )
    if steps:
        upsert(conn, t.trial_intermediate_values, ["trial_id", "step"], steps)


def _is_running(conn: sa.Connection, trial_id: int) -> bool:
    trials = t.trials
    state = conn.execute(
        sa.select(trials.c.state).where(trials.c.trial_id == trial_id)
    ).scalar_one_or_none()
    return state == TrialState.RUNNING


def upsert(
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
