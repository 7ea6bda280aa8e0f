"""Campaigns as Optuna studies: create one (its arms' trials queued), list, load, cancel."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import optuna
import sqlalchemy as sa
from boundsweep.studies._campaign._spec import CampaignSpec
from boundsweep.studies._storage import _tables as t
from boundsweep.studies._storage._errors import CampaignExists, CampaignNotFound
from boundsweep.studies._storage._open import engine_of
from boundsweep.studies.tasks import TASKS
from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.trial import TrialState


def arm_study_name(campaign: str, arm: str) -> str:
    """The Optuna study of one arm: ``<campaign>/<arm>``."""
    return f"{campaign}/{arm}"


def campaign_study_ids(storage: Any, name: str) -> dict[str, int]:
    """Arm name → study id of the campaign ``name`` (empty if there is none)."""
    sua = t.study_user_attributes
    arm_attr = sua.alias("arm_attr")
    query = (
        sa.select(sua.c.study_id, arm_attr.c.value_json)
        .join(arm_attr, arm_attr.c.study_id == sua.c.study_id)
        .where(sua.c.key == t.ATTR_CAMPAIGN, sua.c.value_json == t.attr_json(name))
        .where(arm_attr.c.key == t.ATTR_ARM)
    )
    with engine_of(storage).connect() as conn:
        return {json.loads(arm): study_id for study_id, arm in conn.execute(query)}


_BATCH = 1_000


def enqueue_fixed_params(
    storage: Any,
    study_id: int,
    queued: list[dict[str, Any]],
    distributions: dict[str, BaseDistribution],
) -> None:
    """Queue one WAITING trial per params dict, in one transaction, with its params set.

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
        # Numbers continue the study's own; the study row lock keeps them unique as
        # Optuna's trial creation does.
        if conn.dialect.name == "postgresql":
            conn.execute(
                sa.select(t.studies.c.study_id)
                .where(t.studies.c.study_id == study_id)
                .with_for_update()
            )
        first = conn.execute(
            sa.select(sa.func.count()).select_from(trials).where(trials.c.study_id == study_id)
        ).scalar_one()
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
                    {"trial_id": trial_id, "key": "fixed_params", "value_json": json.dumps(params)}
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


def create_campaign(storage: Any, spec: CampaignSpec) -> list[str]:
    """Create one study per arm and queue every trial the campaign will run.

    Grid arms queue each (configuration, seed) as a WAITING trial; sampled arms queue
    ``n_trials`` WAITING slots that fix the seed (taken in turn) and leave the rest to the
    sampler. Workers only ever run queued trials, which is what keeps the counts exact.

    Args:
        storage: An ``RDBStorage`` (see ``open_storage``).
        spec: The validated campaign.

    Returns:
        The arm study names, in the spec's order.

    Raises:
        CampaignExists: A campaign with this name, or a study with an arm's name, exists.
            Nothing is created then; a failure half-way deletes the studies made so far.
    """
    if campaign_study_ids(storage, spec.name):
        raise CampaignExists(f"campaign {spec.name!r} already exists")
    direction = TASKS[spec.task].direction
    spec_json = spec.model_dump(mode="json")
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    created: list[optuna.Study] = []
    try:
        for arm in spec.arms:
            study = optuna.create_study(
                storage=storage,
                study_name=arm_study_name(spec.name, arm.name),
                direction=direction,
            )
            created.append(study)
            study.set_user_attr(t.ATTR_CAMPAIGN, spec.name)
            study.set_user_attr(t.ATTR_ARM, arm.name)
            study.set_user_attr(t.ATTR_SPEC, spec_json)
            study.set_user_attr(t.ATTR_CANCELLED, False)
            study.set_user_attr(t.ATTR_CREATED_AT, created_at)
            enqueue_fixed_params(
                storage,
                study._study_id,
                arm.queued_params(spec.seeds),
                arm.distributions(spec.seeds),
            )
    except optuna.exceptions.DuplicatedStudyError as exc:
        _delete(created)
        raise CampaignExists(
            f"campaign {spec.name!r}: a study named {exc.args[0] if exc.args else ''} exists"
        ) from None
    except BaseException:
        _delete(created)
        raise
    return [study.study_name for study in created]


def _delete(created: list[optuna.Study]) -> None:
    for study in created:
        optuna.delete_study(study_name=study.study_name, storage=study._storage)


def list_campaigns(storage: Any) -> list[str]:
    """Names of every campaign in the storage, oldest first."""
    sua = t.study_user_attributes
    query = (
        sa.select(sua.c.value_json, sa.func.min(sua.c.study_id))
        .where(sua.c.key == t.ATTR_CAMPAIGN)
        .group_by(sua.c.value_json)
        .order_by(sa.func.min(sua.c.study_id))
    )
    with engine_of(storage).connect() as conn:
        return [json.loads(value) for value, _ in conn.execute(query)]


def _first_attr(storage: Any, name: str, key: str) -> Any:
    ids = campaign_study_ids(storage, name)
    if not ids:
        raise CampaignNotFound(f"no campaign named {name!r}")
    sua = t.study_user_attributes
    query = sa.select(sua.c.value_json).where(sua.c.study_id == min(ids.values()), sua.c.key == key)
    with engine_of(storage).connect() as conn:
        value = conn.execute(query).scalar_one_or_none()
    return None if value is None else json.loads(value)


def load_spec(storage: Any, name: str) -> CampaignSpec:
    """The spec the campaign ``name`` was created with.

    Raises:
        CampaignNotFound: No such campaign.
    """
    return CampaignSpec.model_validate(_first_attr(storage, name, t.ATTR_SPEC))


def is_cancelled(storage: Any, name: str) -> bool:
    """Whether ``cancel_campaign`` was called on ``name``."""
    return bool(_first_attr(storage, name, t.ATTR_CANCELLED))


def cancel_campaign(storage: Any, name: str) -> None:
    """Stop workers from claiming the campaign's trials; WAITING trials stay WAITING.

    Running trials finish; nothing is deleted, so the campaign can be inspected as it is.

    Raises:
        CampaignNotFound: No such campaign.
    """
    ids = campaign_study_ids(storage, name)
    if not ids:
        raise CampaignNotFound(f"no campaign named {name!r}")
    sua = t.study_user_attributes
    with engine_of(storage).begin() as conn:
        conn.execute(
            sa.update(sua)
            .where(sua.c.study_id.in_(ids.values()), sua.c.key == t.ATTR_CANCELLED)
            .values(value_json=t.attr_json(True))
        )
