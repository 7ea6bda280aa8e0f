"""Heartbeats of RUNNING trials, and which ones stopped beating."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from boundsweep.studies._storage._optuna import _schema as t
from boundsweep.studies._storage._optuna._schema import (
    Storage,
    engine_of,
)
from optuna.trial import TrialState


def beat(storage: Storage, trial_ids: list[int]) -> None:
    """One heartbeat for each of ``trial_ids`` in one statement (a batch's trials beat
    together; their rows were written by the claim)."""
    beats = t.trial_heartbeats
    with engine_of(storage).begin() as conn:
        conn.execute(
            sa.update(beats).where(beats.c.trial_id.in_(trial_ids)).values(heartbeat=sa.func.now())
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
