"""Create studies in the caller's transaction: what ``optuna.create_study``,
``Study.set_user_attr`` and ``Study.enqueue_trial`` write, for many studies at once.

Optuna commits each of those calls on its own (a study, then one transaction per attr and per
queued trial), so a campaign made through them exists half-made between its first and last
commit, and a creator that dies or loses its connection leaves that half behind. Written
here as a few multi-row statements on one connection, a campaign's studies, attrs and queued
trials commit together with whatever else the caller writes in the same transaction (the
service's registry row), or not at all. ``tests/studies/test_optuna_contract.py`` reads them
back through Optuna's readers and compares them with what Optuna writes for the same calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from boundsweep.studies._storage._optuna import _schema as t
from boundsweep.studies._storage._optuna._queue import _insert, insert_queued_trials
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection

__all__ = ["ExistingStudy", "NewStudy", "existing_studies", "write_studies"]


@dataclass(frozen=True)
class ExistingStudy:
    """A study already in the storage, as far as a creation needs to know it.

    Attributes:
        study_id: Its id.
        study_name: Its name.
        user_attrs: Its user attrs (decoded).
        trials: How many trials it has.
    """

    study_id: int
    study_name: str
    user_attrs: dict[str, Any]
    trials: int


@dataclass(frozen=True)
class NewStudy:
    """One study to write: made afresh (``study_id`` None) or filled in (an existing one).

    Attributes:
        study_name: The study's name.
        direction: ``minimize`` or ``maximize`` (a new study's only objective).
        user_attrs: User attrs to add (an existing study's own are left as they are).
        queued: One params dict per WAITING trial to queue (numbered from 0: the study must
            have no trials yet).
        distributions: The distribution of every queued param.
        study_id: The existing study to fill in; ``None`` makes a new one.
        metric_name: A new study's objective name, as ``Study.set_metric_names`` stores it
            (the dashboard labels the value with it); ``None`` leaves it unnamed.
    """

    study_name: str
    direction: str
    user_attrs: dict[str, Any]
    queued: list[dict[str, Any]]
    distributions: dict[str, BaseDistribution]
    study_id: int | None = None
    metric_name: str | None = None


def existing_studies(
    conn: sa.Connection, names: Iterable[str], tagged: tuple[str, Any] | None = None
) -> list[ExistingStudy]:
    """The studies named in ``names``, and those whose user attr ``tagged`` (key, value) is
    set; one query when there are none."""
    s, sua, trials = t.studies, t.study_user_attributes, t.trials
    found = s.c.study_name.in_(list(names))
    if tagged is not None:
        key, value = tagged
        found = found | s.c.study_id.in_(
            sa.select(sua.c.study_id).where(
                sua.c.key == key, sua.c.value_json == t.attr_json(value)
            )
        )
    rows = conn.execute(sa.select(s.c.study_id, s.c.study_name).where(found)).all()
    if not rows:
        return []
    ids = [study_id for study_id, _ in rows]
    attrs: dict[int, dict[str, Any]] = {}
    for study_id, key, value in conn.execute(
        sa.select(sua.c.study_id, sua.c.key, sua.c.value_json).where(sua.c.study_id.in_(ids))
    ):
        attrs.setdefault(study_id, {})[key] = json.loads(value)
    counts = dict(
        conn.execute(  # type: ignore[arg-type]
            sa.select(trials.c.study_id, sa.func.count())
            .where(trials.c.study_id.in_(ids))
            .group_by(trials.c.study_id)
        ).all()
    )
    return [
        ExistingStudy(study_id, name, attrs.get(study_id, {}), counts.get(study_id, 0))
        for study_id, name in rows
    ]


def write_studies(conn: sa.Connection, studies: list[NewStudy]) -> list[int]:
    """Write ``studies`` in ``conn``'s transaction; their ids, in order.

    A few statements whatever the number of studies and trials: the new studies, their
    directions, every user attr, every queued trial with its plan and params. Rows as Optuna
    writes them (``create_new_study``; ``set_study_user_attr``'s ``json.dumps``; the queued
    trials as ``insert_queued_trials`` says). Nothing is committed here.

    Raises:
        sqlalchemy.exc.IntegrityError: A new study's name is taken (by a study committed or
            being written by another transaction, which the database waits for).
    """
    s = t.studies
    new = [study for study in studies if study.study_id is None]
    ids: dict[str, int] = {}
    if new:
        made = conn.execute(
            sa.insert(s).returning(s.c.study_id, s.c.study_name),
            [{"study_name": study.study_name} for study in new],
        )
        ids = {name: study_id for study_id, name in made}
        _insert(
            conn,
            t.study_directions,
            [
                {
                    "study_id": ids[study.study_name],
                    "objective": 0,
                    "direction": StudyDirection[study.direction.upper()],
                }
                for study in new
            ],
        )
    study_ids = [
        study.study_id if study.study_id is not None else ids[study.study_name] for study in studies
    ]
    attrs = [
        {"study_id": study_id, "key": key, "value_json": json.dumps(value)}
        for study, study_id in zip(studies, study_ids, strict=True)
        for key, value in study.user_attrs.items()
    ]
    _insert(conn, t.study_user_attributes, attrs)
    _insert(
        conn,
        t.study_system_attributes,
        [
            {
                "study_id": ids[study.study_name],
                "key": t.METRIC_NAMES,
                "value_json": json.dumps([study.metric_name]),
            }
            for study in new
            if study.metric_name is not None
        ],
    )
    insert_queued_trials(
        conn,
        [
            (study_id, 0, study.queued, study.distributions)
            for study, study_id in zip(studies, study_ids, strict=True)
            if study.queued
        ],
    )
    return study_ids
