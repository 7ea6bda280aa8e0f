"""One page of a campaign's trials, read with SQL over Optuna's tables.

`Study.get_trials` loads every trial of a study (seconds at 5,000); a page needs 50 rows,
their parameters and a few scalar user attributes — never the per-epoch curves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from boundsweep.service.db._progress import _API_STATE, TRIAL_STATES
from boundsweep.studies.storage import optuna_tables as ot
from optuna.distributions import json_to_distribution
from optuna.trial import TrialState

__all__ = ["TRIAL_SUMMARY_ATTRS", "TrialRow", "trial_page"]

# Scalar user attributes worth a column in a listing; `curve` and `hparams` stay out (size).
TRIAL_SUMMARY_ATTRS = (
    "seed",
    "status",
    "val_metric",
    "test_metric",
    "wall_time",
    "device",
    "worker",
)


@dataclass
class TrialRow:
    """One trial as the API lists it."""

    arm: str
    number: int
    state: str
    value: float | None
    params: dict[str, Any] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    datetime_start: datetime | None = None
    datetime_complete: datetime | None = None


@lru_cache(maxsize=256)
def _distribution(distribution_json: str):
    return json_to_distribution(distribution_json)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def trial_page(
    connection: sa.Connection,
    study_arms: dict[int, str],
    state: str | None,
    limit: int,
    offset: int,
) -> tuple[int, list[TrialRow]]:
    """Count and one page of trials of the given studies, ordered by arm then trial number.

    Args:
        connection: A connection to the storage database.
        study_arms: Study id → arm name, the studies to list.
        state: An API trial state (`waiting`, `running`, `complete`, `pruned`, `failed`) or None.
        limit: Page size.
        offset: Rows to skip.

    Returns:
        The number of matching trials and the page.
    """
    t, v = ot.trials, ot.trial_values
    where = [t.c.study_id.in_(list(study_arms))]
    if state is not None:
        where.append(t.c.state == TrialState[TRIAL_STATES[state]])
    count = connection.scalar(sa.select(sa.func.count()).select_from(t).where(*where)) or 0
    rows = connection.execute(
        sa.select(
            t.c.trial_id,
            t.c.study_id,
            t.c.number,
            t.c.state,
            t.c.datetime_start,
            t.c.datetime_complete,
            v.c.value,
        )
        .select_from(t.outerjoin(v, sa.and_(v.c.trial_id == t.c.trial_id, v.c.objective == 0)))
        .where(*where)
        .order_by(t.c.study_id, t.c.number)
        .limit(limit)
        .offset(offset)
    ).all()
    page = {
        trial_id: TrialRow(
            arm=study_arms[study_id],
            number=number,
            state=_API_STATE.get(stored.name, stored.name.lower()),
            value=value,
            datetime_start=_utc(start),
            datetime_complete=_utc(complete),
        )
        for trial_id, study_id, number, stored, start, complete, value in rows
    }
    if page:
        _attach(connection, page)
    return count, list(page.values())


def _attach(connection: sa.Connection, page: dict[int, TrialRow]) -> None:
    p, a = ot.trial_params, ot.trial_user_attributes
    for trial_id, name, internal, distribution_json in connection.execute(
        sa.select(p.c.trial_id, p.c.param_name, p.c.param_value, p.c.distribution_json).where(
            p.c.trial_id.in_(list(page))
        )
    ):
        page[trial_id].params[name] = _distribution(distribution_json).to_external_repr(internal)
    for trial_id, key, value_json in connection.execute(
        sa.select(a.c.trial_id, a.c.key, a.c.value_json).where(
            a.c.trial_id.in_(list(page)), a.c.key.in_(TRIAL_SUMMARY_ATTRS)
        )
    ):
        page[trial_id].user_attrs[key] = json.loads(value_json)
    # Campaigns queue their trials with params set; a trial queued without them (by Optuna's
    # `enqueue_trial`, or by an older boundsweep) has its plan in the `fixed_params` system
    # attribute, so a listing still shows the configuration it will run.
    queued = [trial_id for trial_id, row in page.items() if not row.params]
    if queued:
        s = ot.trial_system_attributes
        for trial_id, value_json in connection.execute(
            sa.select(s.c.trial_id, s.c.value_json).where(
                s.c.trial_id.in_(queued), s.c.key == "fixed_params"
            )
        ):
            fixed = json.loads(value_json)
            if isinstance(fixed, dict):
                page[trial_id].params.update(fixed)
