"""Campaigns as Optuna studies: create one (its arms' trials queued), list, load, cancel."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import optuna
from boundsweep.studies._campaign._spec import CampaignSpec
from boundsweep.studies._storage._attrs import (
    ATTR_ARM,
    ATTR_CAMPAIGN,
    ATTR_CANCELLED,
    ATTR_CREATED_AT,
    ATTR_SPEC,
)
from boundsweep.studies._storage._errors import CampaignExists, CampaignNotFound
from boundsweep.studies._storage._optuna import (
    ArmStudy,
    CampaignStorage,
    Storage,
    arm_studies,
    campaign_names,
    enqueue_fixed_params,
    set_study_attr,
    study_id_of,
)
from boundsweep.studies.tasks import TASKS


def arm_study_name(campaign: str, arm: str) -> str:
    """The Optuna study of one arm: ``<campaign>/<arm>``."""
    return f"{campaign}/{arm}"


def campaign_study_ids(storage: Storage, name: str) -> dict[str, int]:
    """Arm name → study id of the campaign ``name`` (empty if there is none)."""
    return {arm.arm: arm.study_id for arm in arm_studies(storage, name)}


def create_campaign(storage: CampaignStorage, spec: CampaignSpec) -> list[str]:
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
        for index, arm in enumerate(spec.arms):
            study = optuna.create_study(
                storage=storage,
                study_name=arm_study_name(spec.name, arm.name),
                direction=direction,
            )
            created.append(study)
            study.set_user_attr(ATTR_CAMPAIGN, spec.name)
            study.set_user_attr(ATTR_ARM, arm.name)
            if index == 0:  # stored once, on the first arm; readers share it (arm_studies)
                study.set_user_attr(ATTR_SPEC, spec_json)
            study.set_user_attr(ATTR_CANCELLED, False)
            study.set_user_attr(ATTR_CREATED_AT, created_at)
            enqueue_fixed_params(
                storage,
                study_id_of(study),
                arm.queued_params(spec.seeds),
                arm.distributions(spec.seeds),
            )
    except optuna.exceptions.DuplicatedStudyError as exc:
        _delete(storage, created)
        raise CampaignExists(
            f"campaign {spec.name!r}: a study named {exc.args[0] if exc.args else ''} exists"
        ) from None
    except BaseException:
        _delete(storage, created)
        raise
    return [study.study_name for study in created]


def _delete(storage: CampaignStorage, created: list[optuna.Study]) -> None:
    for study in created:
        optuna.delete_study(study_name=study.study_name, storage=storage)


def list_campaigns(storage: Storage) -> list[str]:
    """Names of every campaign in the storage, oldest first."""
    return campaign_names(storage)


def _arms(storage: Storage, name: str) -> list[ArmStudy]:
    arms = arm_studies(storage, name)
    if not arms:
        raise CampaignNotFound(f"no campaign named {name!r}")
    return arms


def load_spec(storage: Storage, name: str) -> CampaignSpec:
    """The spec the campaign ``name`` was created with.

    Raises:
        CampaignNotFound: No such campaign.
    """
    stored = next((arm.spec_json for arm in _arms(storage, name) if arm.spec_json), None)
    if stored is None:
        raise CampaignNotFound(f"campaign {name!r} has no stored spec")
    return CampaignSpec.model_validate(json.loads(stored))


def is_cancelled(storage: Storage, name: str) -> bool:
    """Whether ``cancel_campaign`` was called on ``name``."""
    return _arms(storage, name)[0].cancelled


def cancel_campaign(storage: Storage, name: str) -> None:
    """Stop workers from claiming the campaign's trials; WAITING trials stay WAITING.

    Running trials finish; nothing is deleted, so the campaign can be inspected as it is.

    Raises:
        CampaignNotFound: No such campaign.
    """
    ids = [arm.study_id for arm in _arms(storage, name)]
    set_study_attr(storage, ids, ATTR_CANCELLED, True)
