"""Per-study trial counts, best values and mean trial times in grouped queries.

``Study.get_trials`` reads every trial with all its attributes (seconds for 5,000 trials on
SQLite); progress needs counts, which the database groups in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from boundsweep.studies._storage._optuna import _schema as t
from boundsweep.studies._storage._optuna._schema import Storage, engine_of
from optuna.trial import TrialState


@dataclass(frozen=True)
class StateCount:
    """The trials of one study in one state.

    Attributes:
        count: How many.
        low: Smallest first-objective value among them (``None`` without values).
        high: Largest first-objective value among them.
        mean_seconds: Mean of ``datetime_complete - datetime_start`` (``None`` if none ended).
    """

    count: int
    low: float | None
    high: float | None
    mean_seconds: float | None


@dataclass(frozen=True)
class StudyCounts:
    """A study's trials by state, and how many are retry copies of a crashed attempt."""

    states: dict[TrialState, StateCount]
    retry_copies: int
    running_epochs: int = 0
    """Epochs (intermediate values) written so far by the study's RUNNING trials."""

    def count(self, state: TrialState) -> int:
        found = self.states.get(state)
        return 0 if found is None else found.count


def _seconds_between(start: sa.ColumnElement, end: sa.ColumnElement, dialect: str):
    if dialect == "postgresql":
        return sa.extract("epoch", end - start)
    # SQLite keeps timestamps as text; julianday() turns them into fractional days.
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def study_counts(storage: Storage, study_ids: list[int]) -> dict[int, StudyCounts]:
    """Counts of every study in ``study_ids`` (absent ones: no trials), in three queries.

    A retry copy is a trial carrying Optuna's ``failed_trial`` system attr (the attempt it
    replaces, as ``RetryHeartbeatStaleTrialCallback`` and ``requeue`` write it).
    """
    trials, values, attrs = t.trials, t.trial_values, t.trial_system_attributes
    by_study: dict[int, dict[TrialState, StateCount]] = {sid: {} for sid in study_ids}
    if not study_ids:
        return {}
    with engine_of(storage).connect() as conn:
        seconds = _seconds_between(
            trials.c.datetime_start, trials.c.datetime_complete, conn.dialect.name
        )
        grouped = (
            sa.select(
                trials.c.study_id,
                trials.c.state,
                sa.func.count(),
                sa.func.min(values.c.value),
                sa.func.max(values.c.value),
                sa.func.avg(seconds),
            )
            .select_from(
                trials.outerjoin(
                    values,
                    sa.and_(values.c.trial_id == trials.c.trial_id, values.c.objective == 0),
                )
            )
            .where(trials.c.study_id.in_(study_ids))
            .group_by(trials.c.study_id, trials.c.state)
        )
        for study_id, state, n, low, high, mean in conn.execute(grouped):
            by_study[study_id][state] = StateCount(
                int(n), low, high, None if mean is None else float(mean)
            )

        def per_study(table: sa.Table, *where: sa.ColumnElement[bool]) -> dict[int, int]:
            """Rows of ``table`` joined to the studies' trials (``where`` them), per study."""
            query = (
                sa.select(trials.c.study_id, sa.func.count())
                .select_from(trials.join(table, table.c.trial_id == trials.c.trial_id))
                .where(trials.c.study_id.in_(study_ids), *where)
                .group_by(trials.c.study_id)
            )
            return {study_id: int(n) for study_id, n in conn.execute(query)}

        copies = per_study(attrs, attrs.c.key == t.FAILED_TRIAL)
        epochs = per_study(t.trial_intermediate_values, trials.c.state == TrialState.RUNNING)
    return {
        sid: StudyCounts(states, copies.get(sid, 0), epochs.get(sid, 0))
        for sid, states in by_study.items()
    }
