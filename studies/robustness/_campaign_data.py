"""Read a campaign's arm studies from Optuna storage into plain records the analysis uses."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from boundsweep.studies.campaign import ArmSpec, CampaignSpec
from boundsweep.studies.storage import (
    ArmStudy,
    CampaignNotFound,
    Storage,
    TrialRow,
    arm_studies,
    has_tables,
    open_engine,
    spec_of,
    study_counts,
    trial_rows,
)
from boundsweep.studies.tasks import TASKS, Task
from boundsweep.studies.tasks._task import METRIC_DEFAULTS
from optuna.study import StudyDirection
from optuna.trial import TrialState

METRICS = ("val", "test")
BOUNDED_OPTIMIZERS = frozenset({"adabound", "amsbound", "adaboundw"})
BASELINE_OPTIMIZERS = ("sgdm", "adam", "amsgrad")


CampaignNotFoundError = CampaignNotFound
"""No arm study of the named campaign exists: the storage's own `CampaignNotFound` (a
``LookupError``), so one ``except`` catches it from either package."""


@dataclass(frozen=True)
class ScoredTrial:
    """One COMPLETE trial: its configuration (varied hyperparameters), seed and score.

    ``value`` is in report units (accuracy in percentage points, perplexity as is).
    """

    number: int
    config: tuple[tuple[str, float], ...]
    seed: int
    value: float
    diverged: bool
    curve: list[float] | None
    steps_per_epoch: float | None
    user_attrs: dict[str, Any] = field(repr=False)


@dataclass
class ArmData:
    """Everything the analysis needs about one arm."""

    name: str
    optimizer: str
    direction: StudyDirection
    spec: ArmSpec | None
    n_trials: int
    records: list[ScoredTrial] = field(default_factory=list)

    @property
    def bounded(self) -> bool:
        """True for the bounded optimizers of Luo et al. (AdaBound, AMSBound, AdaBoundW)."""
        return self.optimizer in BOUNDED_OPTIMIZERS

    @property
    def maximize(self) -> bool:
        return self.direction == StudyDirection.MAXIMIZE

    def configurations(self) -> dict[tuple[tuple[str, float], ...], list[ScoredTrial]]:
        """Trials grouped by configuration (every varied hyperparameter but the seed)."""
        groups: dict[tuple[tuple[str, float], ...], list[ScoredTrial]] = defaultdict(list)
        for record in self.records:
            groups[record.config].append(record)
        return dict(groups)

    def varied(self) -> list[str]:
        """Hyperparameters that take more than one value among the COMPLETE trials."""
        values: dict[str, set[float]] = defaultdict(set)
        for record in self.records:
            for name, value in record.config:
                values[name].add(value)
        return sorted(name for name, seen in values.items() if len(seen) > 1)


@dataclass
class CampaignData:
    """A campaign as read from storage: its spec (None if none is stored) and one `ArmData`
    per arm study."""

    name: str
    spec: CampaignSpec | None
    arms: list[ArmData]
    metric: str
    metric_name: str
    scale: float


def open_storage(storage: str | Storage) -> Storage:
    """Accept a database URL (read through a bare engine: nothing is created) or a storage."""
    if isinstance(storage, str):
        return open_engine(storage)
    return storage


def task_of(spec: CampaignSpec | None) -> Task | None:
    """The campaign's task metadata, or None (no stored spec, or a task not installed here)."""
    return TASKS.get(spec.task) if spec is not None else None


def _metric_name(task: Task | None, maximize: bool) -> str:
    if task is not None:
        return task.metric
    return "accuracy" if maximize else "perplexity"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _record(trial: TrialRow, metric: str, scale: float) -> ScoredTrial | None:
    attrs = trial.user_attrs
    raw = trial.value if metric == "val" else attrs.get("test_metric")
    value = _finite(raw)
    if value is None:
        return None
    seed = int(attrs.get("seed", trial.params.get("seed", 0)))
    config = tuple(sorted((k, float(v)) for k, v in trial.params.items() if k != "seed"))
    key = "val_metric" if metric == "val" else "test_metric"
    curve_records = attrs.get("curve") or []
    curve = [_finite(r.get(key)) for r in curve_records if isinstance(r, dict)]
    curve_values = [c * scale if c is not None else math.nan for c in curve] or None
    steps_per_epoch = None
    if curve_records and isinstance(curve_records[-1], dict):
        last = curve_records[-1]
        if _finite(last.get("step")) and _finite(last.get("epoch")):
            steps_per_epoch = float(last["step"]) / float(last["epoch"])
    return ScoredTrial(
        number=trial.number,
        config=config,
        seed=seed,
        value=value * scale,
        diverged=attrs.get("status") == "diverged",
        curve=curve_values,
        steps_per_epoch=steps_per_epoch,
        user_attrs=attrs,
    )


def load_campaign(
    storage: str | Storage,
    name: str,
    metric: str = "val",
    *,
    arms: list[ArmStudy] | None = None,
) -> CampaignData:
    """Read every arm study of the campaign and its COMPLETE trials.

    The arms are the read model's (``studies.storage.arm_studies``: the studies whose
    ``boundsweep:campaign`` is ``name``), as the worker, the CLI and the API see them.

    Args:
        arms: ``arm_studies(storage)`` when the caller already has it (reading several
            campaigns); read here otherwise.

    Raises:
        ValueError: ``metric`` is not one of ``"val"``, ``"test"``.
        CampaignNotFoundError: no study of that campaign exists.
    """
    if metric not in METRICS:
        raise ValueError(f"Invalid metric {metric!r}: choose one of {', '.join(METRICS)}")
    backend = open_storage(storage)
    if arms is None:
        arms = read_arms(backend, name)  # names, directions and attrs only, never trials
    studies = [arm for arm in arms if arm.campaign == name]
    if not studies:
        raise CampaignNotFound(f"no campaign named {name!r}")
    spec = spec_of(studies[0])  # the read model's one loader, as a CampaignSpec
    arm_specs = {a.name: a for a in spec.arms} if spec is not None else {}
    maximize = studies[0].direction == "maximize"
    task = task_of(spec)
    metric_name = _metric_name(task, maximize)
    ids = [study.study_id for study in studies]
    # Two reads for the whole campaign: counts per study, and its COMPLETE trials with their
    # params and user attrs (the adapter's SQL; no FrozenTrial is built).
    counts = study_counts(backend, ids)
    _, rows = trial_rows(backend, ids, TrialState.COMPLETE, None, 0, None)
    complete: dict[int, list[TrialRow]] = {study_id: [] for study_id in ids}
    for row in rows:
        complete[row.study_id].append(row)
    raw: list[tuple[ArmData, list[TrialRow]]] = []
    for study in studies:
        arm_spec = arm_specs.get(study.arm)
        arm = ArmData(
            name=study.arm,
            optimizer=study.arm if arm_spec is None else arm_spec.optimizer,
            direction=StudyDirection[(study.direction or "minimize").upper()],
            spec=arm_spec,
            n_trials=sum(state.count for state in counts[study.study_id].states.values()),
        )
        raw.append((arm, complete[study.study_id]))
    scale = _report_scale(task, metric_name, [t for _, ts in raw for t in ts], metric)
    for arm, trials in raw:
        arm.records = [r for r in (_record(t, metric, scale) for t in trials) if r is not None]
    order = {a: i for i, a in enumerate(arm_specs)}
    arms_read = sorted(
        (arm for arm, _ in raw), key=lambda a: (order.get(a.name, len(order)), a.name)
    )
    return CampaignData(name, spec, arms_read, metric, metric_name, scale)


def read_arms(storage: Storage, name: str | None = None) -> list[ArmStudy]:
    """The campaign's arm studies (every campaign's with ``None``); none where Optuna's
    tables do not exist (a reader opens a bare engine, which creates nothing)."""
    try:
        return arm_studies(storage, name)
    except sa.exc.DBAPIError:
        if not has_tables(storage):
            return []
        raise


def campaign_state(storage: str | Storage, name: str) -> tuple:
    """What a report of ``name`` is computed from, as a hashable value: each arm study with
    its trial counts per state (two grouped queries). A trial that finishes, fails or is
    queued again changes it; a finished trial's record never changes, so two equal states
    give the same report (a cache key, ``service.api.report_cache``).

    Raises:
        CampaignNotFoundError: no arm study of that campaign.
    """
    backend = open_storage(storage)
    arms = read_arms(backend, name)
    if not arms:
        raise CampaignNotFound(f"no campaign named {name!r}")
    counts = study_counts(backend, [arm.study_id for arm in arms])
    return tuple(
        (
            arm.study_id,
            arm.arm,
            arm.cancelled,
            tuple(sorted((s.name, c.count) for s, c in counts[arm.study_id].states.items())),
        )
        for arm in sorted(arms, key=lambda a: a.study_id)
    )


def _report_scale(
    task: Task | None, metric_name: str, trials: list[TrialRow], metric: str
) -> float:
    """Reported value = stored value x the task's ``scale`` (accuracy: fraction -> points).

    An accuracy store that already holds percentages (values above 1) is left as is.
    """
    defaults = METRIC_DEFAULTS.get(metric_name)
    scale = task.scale if task is not None else defaults.scale if defaults else 1.0
    if metric_name != "accuracy" or scale == 1.0:
        return scale or 1.0
    values = [
        _finite(t.value if metric == "val" else t.user_attrs.get("test_metric")) for t in trials
    ]
    return 1.0 if any(v is not None and v > 1.0 for v in values) else scale
