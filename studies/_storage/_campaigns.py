"""Campaigns as Optuna studies: create one (its arms' trials queued), list, load, cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from boundsweep.optimizers import OPTIMIZERS
from boundsweep.studies._campaign._spec import CampaignSpec
from boundsweep.studies._storage._attrs import (
    ATTR_ARM,
    ATTR_CAMPAIGN,
    ATTR_CANCELLED,
    ATTR_CREATED_AT,
    ATTR_NOT_INSTALLED,
    ATTR_PLUGINS,
    ATTR_SPEC,
)
from boundsweep.studies._storage._errors import CampaignExists, CampaignNotFound
from boundsweep.studies._storage._optuna import (
    ArmStudy,
    ExistingStudy,
    NewStudy,
    Storage,
    arm_studies,
    campaign_names,
    engine_of,
    existing_studies,
    put_study_attr,
    set_study_attr,
    study_attrs_starting,
    write_studies,
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
    storage: Storage | sa.Connection, spec: CampaignSpec, *, resume: bool = False
) -> list[str]:
    """Create one study per arm and queue every trial the campaign will run, in one transaction.

    Grid arms queue each (configuration, seed) as a WAITING trial; sampled arms queue
    ``n_trials`` WAITING slots that fix the seed (taken in turn) and leave the rest to the
    sampler. Workers only ever run queued trials, which is what keeps the counts exact.

    The arms' studies, their attributes and their trials are written with a few statements
    in one transaction, so the campaign appears whole or not at all: a creator killed, or
    whose connection is cut, at any point leaves nothing behind and the name free. Given an
    open connection, the campaign is written in the caller's transaction (the service adds
    its registry row to it) and commits with it.

    Args:
        storage: An ``RDBStorage`` (see ``open_storage``) or its engine, or a connection whose
            transaction is to hold the creation.
        spec: The validated campaign.
        resume: Finish a creation that an older boundsweep left half-made (it made an arm's
            study, its attributes, its trials and its ``boundsweep:campaign`` tag one commit
            each): its arms' studies are adopted and completed instead of refused.

    Returns:
        The arm study names, in the spec's order.

    Raises:
        CampaignExists: A campaign with this name, or a study with an arm's name that is not
            a part of this campaign, exists. Nothing is written then.
    """
    if isinstance(storage, sa.Connection):
        return _write_campaign(storage, spec, resume)
    with engine_of(storage).begin() as conn:
        return _write_campaign(conn, spec, resume)


def _write_campaign(conn: sa.Connection, spec: CampaignSpec, resume: bool) -> list[str]:
    names = [arm_study_name(spec.name, arm.name) for arm in spec.arms]
    found = {
        study.study_name: study
        for study in existing_studies(conn, names, tagged=(ATTR_CAMPAIGN, spec.name))
    }
    if found and not resume:
        tagged = [s for s in found.values() if s.user_attrs.get(ATTR_CAMPAIGN) == spec.name]
        if tagged:
            raise CampaignExists(f"campaign {spec.name!r} already exists")
        raise CampaignExists(f"campaign {spec.name!r}: a study named {min(found)} exists")
    others = sorted(set(found) - set(names))
    if others:  # tagged as this campaign's, but no arm of this spec
        raise CampaignExists(f"campaign {spec.name!r} already exists (study {others[0]})")
    direction, metric = TASKS[spec.task].direction, TASKS[spec.task].metric
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    studies = []
    for index, (arm, name) in enumerate(zip(spec.arms, names, strict=True)):
        attrs: dict[str, Any] = {ATTR_ARM: arm.name}
        if index == 0:  # stored once, on the first arm; readers share it (arm_studies)
            attrs[ATTR_SPEC] = spec.model_dump(mode="json")
            plugins = _plugin_origins(spec)
            if plugins:
                attrs[ATTR_PLUGINS] = plugins
        attrs.update({ATTR_CANCELLED: False, ATTR_CREATED_AT: created_at})
        attrs[ATTR_CAMPAIGN] = spec.name
        queued = arm.queued_params(spec.seeds)
        study = found.get(name)
        if study is not None:
            _check_adoptable(study, spec.name, arm.name)
            attrs = {key: value for key, value in attrs.items() if key not in study.user_attrs}
            queued = [] if study.trials else queued
        studies.append(
            NewStudy(
                study_name=name,
                direction=direction,
                user_attrs=attrs,
                queued=queued,
                distributions=arm.distributions(spec.seeds),
                study_id=None if study is None else study.study_id,
                metric_name=metric,
            )
        )
    try:
        write_studies(conn, studies)
    except sa.exc.IntegrityError:  # a study of an arm's name committed meanwhile
        raise CampaignExists(
            f"campaign {spec.name!r}: a study with one of its arms' names was created meanwhile"
        ) from None
    return names


def _plugin_origins(spec: CampaignSpec) -> dict[str, str]:
    """The campaign's tasks and optimizers that are not built in -> who provides them here."""
    names = [("task", spec.task, TASKS)] + [
        ("optimizer", arm.optimizer, OPTIMIZERS) for arm in spec.arms
    ]
    out = {}
    for _, name, catalog in names:
        origin = catalog.origin(name)
        if origin.distribution != "boundsweep":
            out[name] = str(origin)
    return out


def _check_adoptable(study: ExistingStudy, campaign: str, arm: str) -> None:
    """Refuse to adopt a study that is not what an interrupted creation of ``arm`` left.

    It left either this arm's study (``boundsweep:arm`` says so, and any campaign tag is
    this campaign's) or a study made just before its creator died: empty, without our
    attributes. Anything else is someone else's study, and the campaign cannot have its name.
    """
    attrs = study.user_attrs
    ours = attrs.get(ATTR_ARM) == arm and attrs.get(ATTR_CAMPAIGN, campaign) == campaign
    fresh = not any(key.startswith("boundsweep:") for key in attrs) and not study.trials
    if not (ours or fresh):
        raise CampaignExists(f"campaign {campaign!r}: a study named {study.study_name} exists")


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


def record_not_installed(storage: Storage, campaign: str, worker: str, why: str) -> None:
    """Note on the campaign that ``worker`` skips it, and why (``not_installed_on`` reads it
    back for the status). One attr per worker, replaced when written again."""
    arms = arm_studies(storage, campaign)
    if arms:
        put_study_attr(storage, arms[0].study_id, f"{ATTR_NOT_INSTALLED}{worker}", why)


def not_installed_on(storage: Storage, campaign: str) -> dict[str, str]:
    """Worker id -> why it skips ``campaign`` (a task or optimizer it does not have)."""
    ids = [arm.study_id for arm in arm_studies(storage, campaign)]
    found = study_attrs_starting(storage, ids, ATTR_NOT_INSTALLED)
    return {key.removeprefix(ATTR_NOT_INSTALLED): str(why) for key, why in found.items()}
