"""Trials with their params and user attrs, read in four queries.

``Study.get_trials`` loads every trial of a study with everything Optuna keeps (seconds at
5,000); a page needs 50 rows, their parameters and a few scalar user attrs, never the
per-epoch curves, and the report needs the finished trials' values and user attrs alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from boundsweep.studies._storage._optuna import _schema as t
from boundsweep.studies._storage._optuna._schema import Storage, engine_of
from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.trial import TrialState


@dataclass
class TrialRow:
    """One trial as a listing shows it (datetimes timezone-aware UTC)."""

    study_id: int
    number: int
    state: TrialState
    value: float | None
    params: dict[str, Any] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    datetime_start: datetime | None = None
    datetime_complete: datetime | None = None


@lru_cache(maxsize=256)
def _distribution(distribution_json: str) -> BaseDistribution:
    return json_to_distribution(distribution_json)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def trial_rows(
    storage: Storage,
    study_ids: list[int],
    state: TrialState | None,
    limit: int | None,
    offset: int,
    user_attrs: tuple[str, ...] | None,
) -> tuple[int, list[TrialRow]]:
    """Count and one page of the studies' trials, ordered by study then trial number.

    Args:
        storage: The storage (or its engine).
        study_ids: The studies to list.
        state: Only trials in this state, or every trial.
        limit: Page size; ``None``: every trial from ``offset`` on.
        offset: Rows to skip.
        user_attrs: The user attrs to read (a listing: scalars, leave out the curves);
            ``None``: all of them.

    Returns:
        The number of matching trials and the page.
    """
    trials, v = t.trials, t.trial_values
    where = [trials.c.study_id.in_(study_ids)]
    if state is not None:
        where.append(trials.c.state == state)
    with engine_of(storage).connect() as conn:
        count = conn.scalar(sa.select(sa.func.count()).select_from(trials).where(*where)) or 0
        rows = conn.execute(
            sa.select(
                trials.c.trial_id,
                trials.c.study_id,
                trials.c.number,
                trials.c.state,
                trials.c.datetime_start,
                trials.c.datetime_complete,
                v.c.value,
            )
            .select_from(
                trials.outerjoin(v, sa.and_(v.c.trial_id == trials.c.trial_id, v.c.objective == 0))
            )
            .where(*where)
            .order_by(trials.c.study_id, trials.c.number)
            .limit(limit)
            .offset(offset)
        ).all()
        page = {
            trial_id: TrialRow(
                study_id=study_id,
                number=number,
                state=stored,
                value=value,
                datetime_start=_utc(start),
                datetime_complete=_utc(complete),
            )
            for trial_id, study_id, number, stored, start, complete, value in rows
        }
        if page:
            _attach(conn, page, user_attrs)
    return count, list(page.values())


def _attach(
    conn: sa.Connection, page: dict[int, TrialRow], user_attrs: tuple[str, ...] | None
) -> None:
    p, a = t.trial_params, t.trial_user_attributes
    for trial_id, name, internal, distribution_json in conn.execute(
        sa.select(p.c.trial_id, p.c.param_name, p.c.param_value, p.c.distribution_json).where(
            p.c.trial_id.in_(list(page))
        )
    ):
        page[trial_id].params[name] = _distribution(distribution_json).to_external_repr(internal)
    wanted = [a.c.trial_id.in_(list(page))]
    if user_attrs is not None:
        wanted.append(a.c.key.in_(user_attrs))
    for trial_id, key, value_json in conn.execute(
        sa.select(a.c.trial_id, a.c.key, a.c.value_json).where(*wanted)
    ):
        page[trial_id].user_attrs[key] = json.loads(value_json)
    # Campaigns queue their trials with params set; a trial queued without them (by Optuna's
    # `enqueue_trial`, or by an older boundsweep) has its plan in the `fixed_params` system
    # attr, so a listing still shows the configuration it will run.
    queued = [trial_id for trial_id, row in page.items() if not row.params]
    if queued:
        s = t.trial_system_attributes
        for trial_id, value_json in conn.execute(
            sa.select(s.c.trial_id, s.c.value_json).where(
                s.c.trial_id.in_(queued), s.c.key == t.FIXED_PARAMS
            )
        ):
            fixed = json.loads(value_json)
            if isinstance(fixed, dict):
                page[trial_id].params.update(fixed)
