"""Queueing trials: WAITING trials in bulk, with their params, as ``enqueue_trial`` writes them.

Optuna adds trials one transaction each; here a campaign's whole queue (and, for benchmarks
and imports, finished trials) goes in a few multi-row statements, numbered under the study's
lock as Optuna numbers them.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from boundsweep.studies._storage._optuna import _schema as t
from boundsweep.studies._storage._optuna._finish import _write_record
from boundsweep.studies._storage._optuna._schema import (
    Storage,
    engine_of,
)
from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.trial import FrozenTrial, TrialState


def enqueue_fixed_params(
    storage: Storage,
    study_id: int,
    queued: list[dict[str, Any]],
    distributions: dict[str, BaseDistribution],
) -> None:
    """Queue one WAITING trial per params dict, in one transaction, with its params set
    (``insert_queued_trials``; numbered after the study's own trials, under its lock).

    Done in bulk: Optuna adds trials one transaction each, over a minute for 1,000 trials on
    a busy PostgreSQL.
    """
    with engine_of(storage).begin() as conn:
        first = next_trial_number(conn, study_id)
        insert_queued_trials(conn, [(study_id, first, queued, distributions)])


def insert_queued_trials(
    conn: sa.Connection,
    queues: list[tuple[int, int, list[dict[str, Any]], dict[str, BaseDistribution]]],
) -> None:
    """Queue WAITING trials into several studies in ``conn``'s transaction.

    Each of ``queues`` is (study id, number of its first new trial, one params dict per
    trial, the params' distributions). Each trial gets what ``Study.enqueue_trial`` writes
    (the ``fixed_params`` system attr), and its params are stored with their distributions
    as ``Trial.suggest_*`` would store them: the objective's suggest calls then find every
    queued value already in the trial and write nothing, and a queued trial shows its
    configuration to any Optuna reader.

    Raises:
        ValueError: A queued param has no distribution (nothing is written).
    """
    for _, _, queued, distributions in queues:
        missing = sorted({name for params in queued for name in params} - set(distributions))
        if missing:
            raise ValueError(f"no distribution for the queued params {missing}")
    plans = {
        (study_id, first + i): params
        for study_id, first, queued, _ in queues
        for i, params in enumerate(queued)
    }
    if not plans:
        return
    trials = t.trials
    made = conn.execute(
        sa.insert(trials).returning(trials.c.trial_id, trials.c.study_id, trials.c.number),
        [
            {"study_id": study_id, "number": number, "state": TrialState.WAITING}
            for study_id, number in plans
        ],
    ).all()
    ids = {(study_id, number): trial_id for trial_id, study_id, number in made}
    _insert(
        conn,
        t.trial_system_attributes,
        [
            {"trial_id": ids[key], "key": t.FIXED_PARAMS, "value_json": json.dumps(params)}
            for key, params in plans.items()
        ],
    )
    distributions = {study_id: dists for study_id, _, _, dists in queues}
    encoded = {
        study_id: {name: distribution_to_json(d) for name, d in dists.items()}
        for study_id, dists in distributions.items()
    }
    params_rows = [
        {
            "trial_id": ids[key],
            "param_name": name,
            "param_value": distributions[key[0]][name].to_internal_repr(value),
            "distribution_json": encoded[key[0]][name],
        }
        for key, params in plans.items()
        for name, value in params.items()
    ]
    _insert(conn, t.trial_params, params_rows)


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` as multi-row ``INSERT``s (1,000 rows each), not the driver's
    ``executemany``.

    SQLAlchemy batches an ``INSERT ... RETURNING`` into multi-row statements; without
    ``RETURNING`` it hands psycopg an ``executemany``, which psycopg pipelines, and the Flush
    it sends after the pipeline's Sync leaves PostgreSQL's
    ``idle_in_transaction_session_timeout`` unarmed until the next statement: a creator that
    vanished right then would hold its locks until TCP gives up (``service.launch`` bounds a
    creation's idle time with that timeout). The ids returned are not needed.
    """
    if rows:
        conn.execute(sa.insert(table).returning(*table.primary_key.columns), rows).all()


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
        first = next_trial_number(conn, study_id)
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


def next_trial_number(conn: sa.Connection, study_id: int) -> int:
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
