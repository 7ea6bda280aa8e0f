"""Per-arm progress counts straight from Optuna's tables.

``Study.get_trials`` reads every trial with all its attributes (seconds for 5,000 trials on
SQLite); a progress page and a worker's choice of arm need only counts, which one grouped
query gives in milliseconds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from boundsweep.studies._campaign._spec import CampaignSpec
from boundsweep.studies._storage import _tables as t
from boundsweep.studies._storage._campaigns import CampaignNotFound
from boundsweep.studies._storage._open import engine_of
from optuna.study import StudyDirection
from optuna.trial import TrialState


@dataclass(frozen=True)
class ArmProgress:
    """Where one arm of a campaign stands.

    Every planned trial is in exactly one of ``waiting``, ``running``, ``complete``,
    ``pruned`` or ``fail`` (crashed more than ``max_retries`` times, reported failed);
    ``retried`` counts crashed attempts that were queued again.

    Attributes:
        campaign: Campaign name.
        arm: Arm name.
        study_name: The Optuna study, ``<campaign>/<arm>``.
        optimizer: The arm's optimizer.
        sampler: The arm's sampler.
        total: Trials planned (grid points x seeds, or ``n_trials``).
        waiting: Queued, not started.
        running: Being trained now.
        complete: Finished with a value (diverged runs included).
        pruned: Stopped early by the pruner (they count as finished).
        fail: Given up after too many crashes.
        retried: Crashed attempts that were queued again.
        best: Best value so far (per the task's direction), ``None`` before the first.
        cancelled: Whether the campaign was cancelled.
    """

    campaign: str
    arm: str
    study_name: str
    study_id: int
    optimizer: str
    sampler: str
    total: int
    waiting: int
    running: int
    complete: int
    pruned: int
    fail: int
    retried: int
    best: float | None
    cancelled: bool

    @property
    def finished(self) -> int:
        """Trials that will not run again: complete, pruned or failed."""
        return self.complete + self.pruned + self.fail

    @property
    def done(self) -> bool:
        """Whether every planned trial is finished."""
        return self.finished >= self.total

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields plus ``finished`` and ``done``."""
        return {**asdict(self), "finished": self.finished, "done": self.done}


@lru_cache(maxsize=4096)
def _planned(spec_json: str, arm: str) -> tuple[int, str, str]:
    """(planned trials, optimizer, sampler) of one arm; the spec of a study never changes."""
    spec = CampaignSpec.model_validate(json.loads(spec_json))
    arm_spec = spec.arm(arm)
    return arm_spec.planned_trials(spec.seeds), arm_spec.optimizer, arm_spec.sampler


def arm_progress(storage: Any, campaign: str | None = None) -> list[ArmProgress]:
    """Progress of every arm of ``campaign`` (or of every campaign), oldest study first."""
    sua = t.study_user_attributes
    keys = (t.ATTR_CAMPAIGN, t.ATTR_ARM, t.ATTR_SPEC, t.ATTR_CANCELLED)
    attrs_query = sa.select(sua.c.study_id, sua.c.key, sua.c.value_json).where(sua.c.key.in_(keys))
    if campaign is not None:
        of_campaign = sa.select(sua.c.study_id).where(
            sua.c.key == t.ATTR_CAMPAIGN, sua.c.value_json == t.attr_json(campaign)
        )
        attrs_query = attrs_query.where(sua.c.study_id.in_(of_campaign.scalar_subquery()))
    with engine_of(storage).connect() as conn:
        attrs: dict[int, dict[str, str]] = defaultdict(dict)
        for study_id, key, value in conn.execute(attrs_query):
            attrs[study_id][key] = value
        arms = {sid: a for sid, a in attrs.items() if t.ATTR_SPEC in a and t.ATTR_ARM in a}
        if not arms:
            return []
        ids = list(arms)
        counts: dict[int, dict[TrialState, int]] = defaultdict(dict)
        trials = t.trials
        count_query = (
            sa.select(trials.c.study_id, trials.c.state, sa.func.count())
            .where(trials.c.study_id.in_(ids))
            .group_by(trials.c.study_id, trials.c.state)
        )
        for study_id, state, n in conn.execute(count_query):
            counts[study_id][state] = n
        best = _best_values(conn, ids)
        names = dict(
            conn.execute(
                sa.select(t.studies.c.study_id, t.studies.c.study_name).where(
                    t.studies.c.study_id.in_(ids)
                )
            ).all()
        )
    rows = []
    for study_id in sorted(ids):
        a = arms[study_id]
        arm = json.loads(a[t.ATTR_ARM])
        total, optimizer, sampler = _planned(a[t.ATTR_SPEC], arm)
        n = counts[study_id]
        waiting = n.get(TrialState.WAITING, 0)
        running = n.get(TrialState.RUNNING, 0)
        complete = n.get(TrialState.COMPLETE, 0)
        pruned = n.get(TrialState.PRUNED, 0)
        # Every crash leaves a FAIL row; a retried one also left a new WAITING copy, so the
        # slots not accounted for by live or finished trials are the ones given up.
        fail = max(0, total - waiting - running - complete - pruned)
        rows.append(
            ArmProgress(
                campaign=json.loads(a[t.ATTR_CAMPAIGN]),
                arm=arm,
                study_name=names[study_id],
                study_id=study_id,
                optimizer=optimizer,
                sampler=sampler,
                total=total,
                waiting=waiting,
                running=running,
                complete=complete,
                pruned=pruned,
                fail=fail,
                retried=max(0, n.get(TrialState.FAIL, 0) - fail),
                best=best.get(study_id),
                cancelled=json.loads(a.get(t.ATTR_CANCELLED, "false")) is True,
            )
        )
    return rows


def _best_values(conn: sa.Connection, ids: list[int]) -> dict[int, float]:
    trials, values, directions = t.trials, t.trial_values, t.study_directions
    query = (
        sa.select(
            trials.c.study_id,
            directions.c.direction,
            sa.func.max(values.c.value),
            sa.func.min(values.c.value),
        )
        .join(values, values.c.trial_id == trials.c.trial_id)
        .join(
            directions,
            sa.and_(directions.c.study_id == trials.c.study_id, directions.c.objective == 0),
        )
        .where(
            trials.c.study_id.in_(ids),
            trials.c.state == TrialState.COMPLETE,
            values.c.objective == 0,
        )
        .group_by(trials.c.study_id, directions.c.direction)
    )
    best = {}
    for study_id, direction, high, low in conn.execute(query):
        best[study_id] = high if direction == StudyDirection.MAXIMIZE else low
    return best


def campaign_progress(storage: Any, name: str) -> list[ArmProgress]:
    """Per-arm progress of the campaign ``name``, in the spec's arm order.

    Args:
        storage: An ``RDBStorage``, a SQLAlchemy ``Engine`` or a URL.
        name: Campaign name.

    Raises:
        CampaignNotFound: No such campaign.
    """
    rows = arm_progress(storage, name)
    if not rows:
        raise CampaignNotFound(f"no campaign named {name!r}")
    return rows
