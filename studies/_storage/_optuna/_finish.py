"""Finishing a RUNNING trial (COMPLETE or PRUNED) with its record, and its records before that."""

from __future__ import annotations

import json
import math
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
