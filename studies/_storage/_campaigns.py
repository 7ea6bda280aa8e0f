"""Campaigns as Optuna studies: create one (its arms' trials queued), list, load, cancel."""

from __future__ import annotations

from collections.abc import Callable
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
from boundsweep.studies._storage._progress import spec_of
from boundsweep.studies.tasks import TASKS


def arm_study_name(campaign: str, arm: str) -> str:
    """The Optuna study of one arm: ``<campaign>/<arm>``."""
    return f"{campaign}/{arm}"


def campaign_study_ids(storage: Storage, name: str) -> dict[str, int]:
    """Arm name → study id of the campaign ``name`` (empty if there is none)."""
    return {arm.arm: arm.study_id for arm in arm_studies(storage, name)}


def create_campaign(
    storage: CampaignStorage,
    spec: CampaignSpec,
    *,
    resume: bool = False,
    checkpoint: Callable[[str], None] | None = None,
) -> list[str]:
    """Create one study per arm and queue every trial the campaign will run.

    Grid arms queue each (configuration, seed) as a WAITING trial; sampled arms queue
    ``n_trials`` WAITING slots that fix the seed (taken in turn) and leave the rest to the
    sampler. Workers only ever run queued trials, which is what keeps the counts exact.

    Every step can be done again, so a creation cut short (its process killed) is finished by
    calling this again with ``resume=True``: an arm's study is made, then its attributes set,
    then its trials queued in one transaction (into an empty study only), and only then is it
    tagged ``boundsweep:campaign``, which is what makes workers and listings see it. So a
    half-made arm is invisible, and a resumed creation adopts what the dead one left.

    Args:
        storage: An ``RDBStorage`` (see ``open_storage``).
        spec: The validated campaign.
        resume: Finish a creation begun before instead of refusing an existing campaign.
        checkpoint: Called after each step with its name (the service renews its claim on
            the creation there).

    Returns:
        The arm study names, in the spec's order.

    Raises:
        CampaignExists: A campaign with this name, or a study with an arm's name that is not
            a part of this campaign, exists. Nothing is created then; a failure half-way of a
            fresh creation deletes the studies made so far.
    """
    if not resume and campaign_study_ids(storage, spec.name):
        raise CampaignExists(f"campaign {spec.name!r} already exists")
    step = checkpoint or (lambda _: None)
    direction = TASKS[spec.task].direction
    spec_json = spec.model_dump(mode="json")
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    created: list[optuna.Study] = []
    names: list[str] = []
    try:
        for index, arm in enumerate(spec.arms):
            name = arm_study_name(spec.name, arm.name)
            study = _adopt(storage, spec.name, arm.name, name) if resume else None
            if study is None:
                study = optuna.create_study(storage=storage, study_name=name, direction=direction)
                created.append(study)
            step(f"{arm.name}: study")
            attrs = study.user_attrs
            study.set_user_attr(ATTR_ARM, arm.name)
            if index == 0:  # stored once, on the first arm; readers share it (arm_studies)
                study.set_user_attr(ATTR_SPEC, spec_json)
            if ATTR_CANCELLED not in attrs:
                study.set_user_attr(ATTR_CANCELLED, False)
            study.set_user_attr(ATTR_CREATED_AT, attrs.get(ATTR_CREATED_AT, created_at))
            step(f"{arm.name}: attributes")
            enqueue_fixed_params(
                storage,
                study_id_of(study),
                arm.queued_params(spec.seeds),
                arm.distributions(spec.seeds),
                only_if_empty=True,
            )
            step(f"{arm.name}: trials")
            study.set_user_attr(ATTR_CAMPAIGN, spec.name)  # last: the arm is complete
            step(f"{arm.name}: done")
            names.append(name)
    except optuna.exceptions.DuplicatedStudyError as exc:
        _delete(storage, created)
        raise CampaignExists(
            f"campaign {spec.name!r}: a study named {exc.args[0] if exc.args else ''} exists"
        ) from None
    except BaseException:
        if not resume:
            _delete(storage, created)
        raise
    return names


def _adopt(storage: CampaignStorage, campaign: str, arm: str, name: str) -> optuna.Study | None:
    """The study ``name`` left by an earlier try at this creation; None if there is none.

    A study of that name is adopted when it is this arm's (its ``boundsweep:arm`` says so) or
    an empty study without our attributes (made just before its creator died); anything
    else is someone else's study, and the campaign cannot have that name.
    """
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    attrs = study.user_attrs
    ours = attrs.get(ATTR_ARM) == arm and attrs.get(ATTR_CAMPAIGN, campaign) == campaign
    fresh = not any(key.startswith("boundsweep:") for key in attrs) and not study.get_trials(
        deepcopy=False
    )
    if not (ours or fresh):
        raise CampaignExists(f"campaign {campaign!r}: a study named {name} exists")
    return study


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
    """The spec the campaign ``name`` was created with (read by ``spec_of``).

    Raises:
        CampaignNotFound: No such campaign.
        ValueError: Its stored spec is unreadable (the message names the field).
    """
    spec = spec_of(_arms(storage, name)[0])
    if spec is None:
        raise CampaignNotFound(f"campaign {name!r} has no stored spec")
    return spec


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
