"""Which studies are a campaign's arms, read (and the cancel flag written) in Optuna's tables.

A study is an arm of campaign X when its user attrs say so (``boundsweep:campaign`` = X and a
``boundsweep:arm``); ``arm_studies`` is the one query that answers it, for one campaign or all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from boundsweep.studies._storage._attrs import (
    ATTR_ARM,
    ATTR_CAMPAIGN,
    ATTR_CANCELLED,
    ATTR_CREATED_AT,
    ATTR_PLUGINS,
    ATTR_SPEC,
)
from boundsweep.studies._storage._optuna import _schema as t
from boundsweep.studies._storage._optuna._schema import Storage, engine_of
from optuna.study import StudyDirection

_KEYS = (ATTR_CAMPAIGN, ATTR_ARM, ATTR_SPEC, ATTR_CANCELLED, ATTR_CREATED_AT, ATTR_PLUGINS)


@dataclass(frozen=True)
class ArmStudy:
    """One arm's Optuna study and the boundsweep attrs it carries.

    Attributes:
        study_id: The storage's id of the study.
        study_name: ``<campaign>/<arm>``.
        campaign: The campaign it belongs to.
        arm: The arm's name.
        direction: ``minimize`` or ``maximize`` (the first objective's).
        spec_json: The campaign's spec as stored (Optuna's JSON text; on the campaign's
            first arm study), ``None`` if missing.
        cancelled: Whether the campaign was cancelled.
        created_at: When the campaign was created (ISO text), ``None`` if not recorded.
        plugins: The plugin tasks and optimizers the campaign names -> the distribution that
            provided each at creation (``boundsweep:plugins``; empty for older campaigns).
    """

    study_id: int
    study_name: str
    campaign: str
    arm: str
    direction: str | None
    spec_json: str | None = field(repr=False)
    cancelled: bool
    created_at: str | None
    plugins: dict[str, str] = field(default_factory=dict, repr=False)


def arm_studies(storage: Storage, campaign: str | None = None) -> list[ArmStudy]:
    """The arm studies of ``campaign`` (of every campaign with ``None``), oldest first."""
    sua, s, d = t.study_user_attributes, t.studies, t.study_directions
    attrs_query = sa.select(sua.c.study_id, sua.c.key, sua.c.value_json).where(sua.c.key.in_(_KEYS))
    names_query = sa.select(s.c.study_id, s.c.study_name, d.c.direction).outerjoin(
        d, sa.and_(d.c.study_id == s.c.study_id, d.c.objective == 0)
    )
    if campaign is not None:
        of_campaign = sa.select(sua.c.study_id).where(
            sua.c.key == ATTR_CAMPAIGN, sua.c.value_json == t.attr_json(campaign)
        )
        attrs_query = attrs_query.where(sua.c.study_id.in_(of_campaign.scalar_subquery()))
        names_query = names_query.where(s.c.study_id.in_(of_campaign.scalar_subquery()))
    with engine_of(storage).connect() as conn:
        attrs: dict[int, dict[str, str]] = {}
        for study_id, key, value in conn.execute(attrs_query):
            attrs.setdefault(study_id, {})[key] = value
        names = {sid: (name, direction) for sid, name, direction in conn.execute(names_query)}
    # The spec is stored once per campaign, on its first arm (older campaigns carry it on
    # every arm); every arm reads the first one found.
    specs: dict[str, str] = {}
    plugins: dict[str, str] = {}
    for study_id in sorted(attrs):
        a = attrs[study_id]
        if ATTR_CAMPAIGN in a and ATTR_SPEC in a:
            specs.setdefault(a[ATTR_CAMPAIGN], a[ATTR_SPEC])
        if ATTR_CAMPAIGN in a and ATTR_PLUGINS in a:
            plugins.setdefault(a[ATTR_CAMPAIGN], a[ATTR_PLUGINS])
    arms = []
    for study_id in sorted(attrs):
        a = attrs[study_id]
        if ATTR_CAMPAIGN not in a or ATTR_ARM not in a or study_id not in names:
            continue  # an attr set by hand on some other study
        name, direction = names[study_id]
        arms.append(
            ArmStudy(
                study_id=study_id,
                study_name=name,
                campaign=json.loads(a[ATTR_CAMPAIGN]),
                arm=json.loads(a[ATTR_ARM]),
                direction=None if direction is None else _direction_name(direction),
                spec_json=specs.get(a[ATTR_CAMPAIGN]),
                cancelled=json.loads(a.get(ATTR_CANCELLED, "false")) is True,
                created_at=json.loads(a[ATTR_CREATED_AT]) if ATTR_CREATED_AT in a else None,
                plugins=_plugins(plugins.get(a[ATTR_CAMPAIGN])),
            )
        )
    return arms


def _plugins(value_json: str | None) -> dict[str, str]:
    if value_json is None:
        return {}
    value = json.loads(value_json)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _direction_name(direction: StudyDirection) -> str:
    return direction.name.lower()


def campaign_names(storage: Storage) -> list[str]:
    """Names of every campaign in the storage, oldest first (one grouped query)."""
    sua = t.study_user_attributes
    query = (
        sa.select(sua.c.value_json, sa.func.min(sua.c.study_id))
        .where(sua.c.key == ATTR_CAMPAIGN)
        .group_by(sua.c.value_json)
        .order_by(sa.func.min(sua.c.study_id))
    )
    with engine_of(storage).connect() as conn:
        return [json.loads(value) for value, _ in conn.execute(query)]


def set_study_attr(storage: Storage, study_ids: list[int], key: str, value: Any) -> None:
    """Set one existing user attr of several studies in one transaction."""
    sua = t.study_user_attributes
    with engine_of(storage).begin() as conn:
        conn.execute(
            sa.update(sua)
            .where(sua.c.study_id.in_(study_ids), sua.c.key == key)
            .values(value_json=t.attr_json(value))
        )


def put_study_attr(storage: Storage, study_id: int, key: str, value: Any) -> None:
    """Set one user attr of one study, made or replaced, in one transaction."""
    sua = t.study_user_attributes
    with engine_of(storage).begin() as conn:
        conn.execute(sa.delete(sua).where(sua.c.study_id == study_id, sua.c.key == key))
        conn.execute(
            sa.insert(sua).values(study_id=study_id, key=key, value_json=t.attr_json(value))
        )


def study_attrs_starting(storage: Storage, study_ids: list[int], prefix: str) -> dict[str, Any]:
    """The user attrs of ``study_ids`` whose key starts with ``prefix`` (key -> value)."""
    sua = t.study_user_attributes
    query = sa.select(sua.c.key, sua.c.value_json).where(
        sua.c.study_id.in_(study_ids), sua.c.key.startswith(prefix)
    )
    with engine_of(storage).connect() as conn:
        return {key: json.loads(value) for key, value in conn.execute(query)}
