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
