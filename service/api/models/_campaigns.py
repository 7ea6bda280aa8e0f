"""Request and response bodies of `/campaigns`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from boundsweep.service.api.models._common import Page
from pydantic import BaseModel, Field

__all__ = [
    "ArmStatus",
    "CampaignDetail",
    "CampaignPublic",
    "CampaignsPage",
    "RequeuePublic",
    "TrialPublic",
    "TrialState",
    "TrialsPage",
]

TrialState = Literal["waiting", "running", "complete", "pruned", "failed"]


class CampaignPublic(BaseModel):
    """A campaign as listed: registry facts, no trial counts."""

    name: str
    task: str
    state: Literal["creating", "active", "cancelled"]
    created_at: datetime
    created_by: Literal["api", "schedule", "cli"]
    schedule: str | None = Field(description="The schedule whose firing created it, if any.")
    arms: list[str]


class CampaignsPage(Page):
    """One page of campaigns, newest first."""

    data: list[CampaignPublic]


class ArmStatus(BaseModel):
    """Progress of one arm (one Optuna study `<campaign>/<arm>`)."""

    name: str
    optimizer: str | None
    study_name: str
    direction: Literal["maximize", "minimize"] | None
    total: int
    waiting: int
    running: int
    complete: int
    pruned: int
    failed: int
    best_value: float | None = Field(
        description="Best objective (validation metric) of the completed trials so far."
    )
    mean_trial_seconds: float | None = Field(description="Mean wall time of completed trials.")
    eta_seconds: float | None = Field(
        description="mean_trial_seconds x (waiting + running) / running; null when no trial "
        "has completed yet, none is running, or none is left."
    )
    running_epochs: int = Field(
        default=0,
        description="Epochs the running trials have finished so far (a batch's included, "
        "written as they happen): a running arm moves before any trial finishes.",
    )


class CampaignDetail(CampaignPublic):
    """A campaign with every arm's progress; counts come from Optuna's tables."""

    description: str
    cancelled: bool
    total: int
    finished: int = Field(description="complete + pruned + failed")
    running_epochs: int = Field(
        default=0, description="Epochs the running trials have finished so far (every arm)."
    )
    eta_seconds: float | None = Field(
        description="Sum over arms of mean_trial_seconds x remaining, divided by all running "
        "trials of the campaign (the busy workers); null when nothing runs or an arm with work "
        "left has no completed trial to time."
    )
    arm_status: list[ArmStatus]
    spec: dict[str, Any]
    not_installed_on: dict[str, str] = Field(
        default_factory=dict,
        description="Worker id (host:pid) -> the task or optimizer of this campaign it does "
        "not have installed: those workers skip the campaign and run the others.",
    )


class TrialPublic(BaseModel):
    """One trial: a configuration and a seed trained once."""

    arm: str
    number: int
    state: TrialState
    value: float | None = Field(description="Final validation metric (the study's objective).")
    params: dict[str, Any] = Field(
        description="The varied hyperparameters and the seed; for a waiting trial, those it "
        "was queued with (a sampled arm's sampler adds the rest when it starts)."
    )
    user_attrs: dict[str, Any] = Field(
        description="seed, status, val_metric, test_metric, wall_time, device, worker."
    )
    datetime_start: datetime | None
    datetime_complete: datetime | None


class TrialsPage(Page):
    """One page of trials, ordered by arm then trial number."""

    data: list[TrialPublic]


class RequeuePublic(BaseModel):
    """What `POST /campaigns/{name}/requeue` put back in the queue."""

    name: str
    requeued: dict[str, int] = Field(description="Arm → failed trials queued again now.")
    total: int
