"""The read model of campaigns: one answer for the worker, the CLI, the API and the report.

Counts come from grouped queries (``_optuna.study_counts``), membership from the arm
studies' attrs (``_optuna.arm_studies``), the spec from ``spec_of``, the one loader of a
campaign's stored spec; nothing here loads a trial.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from boundsweep.optimizers import NotInstalledError
from boundsweep.studies._storage._errors import CampaignNotFound
from boundsweep.studies._storage._optuna import (
    ArmStudy,
    Storage,
    StudyCounts,
    arm_studies,
    study_counts,
)
from boundsweep.studies.campaign import STORED, CampaignSpec
from optuna.trial import TrialState

log = logging.getLogger(__name__)

API_STATES = ("waiting", "running", "complete", "pruned", "failed")
"""The trial states as the API and CLI name them (``failed`` is Optuna's ``FAIL``)."""
TRIAL_STATES: dict[str, TrialState] = {
    "waiting": TrialState.WAITING,
    "running": TrialState.RUNNING,
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "failed": TrialState.FAIL,
}
"""Each API state name's Optuna ``TrialState``."""
_API_NAME = {state: name for name, state in TRIAL_STATES.items()}


def api_state(state: TrialState) -> str:
    """The API's name of an Optuna trial state (``failed`` for ``FAIL``)."""
    return _API_NAME.get(state, state.name.lower())


@dataclass(frozen=True)
class ArmProgress:
    """Where one arm of a campaign stands.

    Every trial is in exactly one of ``waiting``, ``running``, ``complete``, ``pruned`` or
    ``fail`` (crashed and given up); a crash that was queued again is one FAIL row plus a
    WAITING copy, and counts once (in ``retried``, not in ``fail`` nor ``total``).

    Attributes:
        campaign: Campaign name.
        arm: Arm name.
        study_name: The Optuna study, ``<campaign>/<arm>``.
        study_id: The study's id in the storage.
        optimizer: The arm's optimizer.
        sampler: The arm's sampler.
        direction: ``minimize`` or ``maximize``.
        total: The arm's trials: waiting + running + complete + pruned + fail.
        waiting: Queued, not started.
        running: Being trained now.
        complete: Finished with a value (diverged runs included).
        pruned: Stopped early by the pruner (they count as finished).
        fail: Given up after too many crashes.
        retried: Crashed attempts that were queued again.
        best: Best value so far (per the direction), ``None`` before the first.
        mean_trial_seconds: Mean wall time of the complete trials, ``None`` before the first.
        cancelled: Whether the campaign was cancelled.
        running_epochs: Epochs the running trials have finished so far (written live, a
            batch's too), so a running arm is seen to move before any trial finishes.
    """

    campaign: str
    arm: str
    study_name: str
    study_id: int
    optimizer: str
    sampler: str
    direction: str | None
    total: int
    waiting: int
    running: int
    complete: int
    pruned: int
    fail: int
    retried: int
    best: float | None
    mean_trial_seconds: float | None
    cancelled: bool
    running_epochs: int = 0

    @property
    def finished(self) -> int:
        """Trials that will not run again: complete, pruned or failed."""
        return self.complete + self.pruned + self.fail

    @property
    def remaining(self) -> int:
        """Trials still to run: waiting or running."""
        return self.waiting + self.running

    @property
    def done(self) -> bool:
        """Whether every trial is finished."""
        return self.finished >= self.total

    @property
    def counts(self) -> dict[str, int]:
        """The count of each state, by its API name."""
        values = (self.waiting, self.running, self.complete, self.pruned, self.fail)
        return dict(zip(API_STATES, values, strict=True))

    @property
    def eta_seconds(self) -> float | None:
        """Mean trial time x remaining / running trials (the workers busy on the arm);
        ``None`` when nothing completed yet, nothing runs, or nothing is left."""
        if self.mean_trial_seconds is None or not self.running or not self.remaining:
            return None
        return self.mean_trial_seconds * self.remaining / self.running

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields plus ``finished``, ``done`` and ``eta_seconds``."""
        return {
            **asdict(self),
            "finished": self.finished,
            "done": self.done,
            "eta_seconds": self.eta_seconds,
        }


def campaign_eta_seconds(arms: list[ArmProgress]) -> float | None:
    """Σ over arms of (mean trial time x remaining trials) / all running trials.

    Workers move between arms, so the campaign's running trials are the worker count that
    drains the remaining work of every arm. ``None`` when nothing runs, or when an arm with
    work left has no completed trial to time yet.
    """
    running = sum(arm.running for arm in arms)
    work = 0.0
    for arm in arms:
        if not arm.remaining:
            continue
        if arm.mean_trial_seconds is None:
            return None
        work += arm.mean_trial_seconds * arm.remaining
    if not running or not work:
        return None
    return work / running


@lru_cache(maxsize=1024)
def _parsed(spec_json: str) -> CampaignSpec:
    """A stored spec, validated once per text (a campaign's spec never changes)."""
    return CampaignSpec.model_validate(json.loads(spec_json), context=STORED)


def spec_of(arm: ArmStudy) -> CampaignSpec | None:
    """The spec the arm's campaign was created with; ``None`` if none is stored.

    The one loader of a campaign's spec (the worker, the CLI, the API and the report read it
    here). It is stored once, on the campaign's first arm study (``boundsweep:spec``; older
    campaigns carry it on every arm, and ``arm_studies`` gives every arm the first one). It
    is read as stored: its structure is checked, today's admission ranges and caps are not
    (``studies.campaign.STORED``), so tightening them leaves old campaigns readable.

    Raises:
        ValueError: The stored spec is not a campaign spec; the message names the campaign
            and the field.
        NotInstalledError: It names a task or optimizer this process does not have.
    """
    if arm.spec_json is None:
        return None
    try:
        spec = _parsed(arm.spec_json)
    except NotInstalledError as exc:  # a plugin this process lacks: the caller skips it
        raise exc.in_campaign(arm.campaign, arm.plugins) from None
    except ValueError as exc:
        raise ValueError(
            f"campaign {arm.campaign!r}: its stored spec is unreadable: {exc}"
        ) from None
    return spec.model_copy(deep=True)


def campaign_specs(storage: Storage) -> dict[str, CampaignSpec]:
    """Campaign name → its spec, for every campaign with a readable one (one query).

    A campaign whose stored spec is unreadable is left out with a warning, so one bad
    campaign does not hide the others from a listing.
    """
    specs: dict[str, CampaignSpec] = {}
    for arm in arm_studies(storage):
        if arm.campaign in specs or arm.spec_json is None:
            continue
        try:
            spec = spec_of(arm)
        except NotInstalledError:
            continue  # listed from its plan; its detail says what is missing
        except ValueError as exc:
            log.warning("%s", exc)
            continue
        if spec is not None:
            specs[arm.campaign] = spec
    return specs


@lru_cache(maxsize=4096)
def _arm_of_spec(spec_json: str | None, arm: str) -> tuple[str, str]:
    """(optimizer, sampler) of one arm from the stored spec; (arm, "") without a readable one."""
    if spec_json is not None:
        try:
            arm_spec = next((a for a in _parsed(spec_json).arms if a.name == arm), None)
        except (ValueError, NotInstalledError):
            arm_spec = None  # shown by name; the loaders say what is wrong with it
        if arm_spec is not None:
            return arm_spec.optimizer, arm_spec.sampler
    return arm, ""


def _progress(study: ArmStudy, counts: StudyCounts) -> ArmProgress:
    n = counts.count
    retried = min(counts.retry_copies, n(TrialState.FAIL))
    fail = n(TrialState.FAIL) - retried
    complete = counts.states.get(TrialState.COMPLETE)
    best = None
    if complete is not None:
        best = complete.high if study.direction == "maximize" else complete.low
    optimizer, sampler = _arm_of_spec(study.spec_json, study.arm)
    waiting, running = n(TrialState.WAITING), n(TrialState.RUNNING)
    pruned, done = n(TrialState.PRUNED), n(TrialState.COMPLETE)
    return ArmProgress(
        campaign=study.campaign,
        arm=study.arm,
        study_name=study.study_name,
        study_id=study.study_id,
        optimizer=optimizer,
        sampler=sampler,
        direction=study.direction,
        total=waiting + running + done + pruned + fail,
        waiting=waiting,
        running=running,
        complete=done,
        pruned=pruned,
        fail=fail,
        retried=retried,
        best=best,
        mean_trial_seconds=None if complete is None else complete.mean_seconds,
        cancelled=study.cancelled,
        running_epochs=counts.running_epochs,
    )


def arm_progress(storage: Storage, campaign: str | None = None) -> list[ArmProgress]:
    """Progress of every arm of ``campaign`` (or of every campaign), oldest study first."""
    studies = [s for s in arm_studies(storage, campaign) if s.spec_json is not None]
    counts = study_counts(storage, [s.study_id for s in studies])
    return [_progress(study, counts[study.study_id]) for study in studies]


def campaign_progress(storage: Storage, name: str) -> list[ArmProgress]:
    """Per-arm progress of the campaign ``name``, in the spec's arm order.

    Args:
        storage: An ``RDBStorage`` or its SQLAlchemy ``Engine``.
        name: Campaign name.

    Raises:
        CampaignNotFound: No such campaign.
    """
    rows = arm_progress(storage, name)
    if not rows:
        raise CampaignNotFound(f"no campaign named {name!r}")
    return rows
