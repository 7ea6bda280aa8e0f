"""The campaign spec: what a user submits, validated against the task and optimizer registries.

A campaign is a task, a training budget, a list of seeds and several arms. An arm is one
optimizer with its search space: every hyperparameter is either fixed (a number), a grid of
values (``{"grid": [...]}``) or a range (``{"low", "high", "log"}``). Hyperparameters left out
of the space take the optimizer's registry default.

A spec a campaign was created with is read back with ``STORED`` as the validation context
(``CampaignSpec.model_validate(data, context=STORED)``): its structure is checked as ever,
but not the admission rules of today (hyperparameter ranges, grid, trial, epoch and step
caps), so a campaign stays readable after those are tightened.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any, Literal

from boundsweep.optimizers import OPTIMIZERS
from boundsweep.studies._campaign._limits import (
    MAX_ARMS,
    MAX_CAMPAIGN_STEPS,
    MAX_DESCRIPTION_CHARS,
    MAX_EPOCHS,
    MAX_GRID_POINTS,
    MAX_SEEDS,
    MAX_TRIALS_PER_ARM,
    MAX_TRIALS_PER_CAMPAIGN,
    check_text,
    parse_yaml,
)
from boundsweep.studies._campaign._names import NAME_PATTERN
from boundsweep.studies.tasks import TASKS, Budget
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

STORED = {"stored": True}
"""Validation context of a spec read back from the storage (see the module docstring)."""
SEED_PARAM = "seed"
"""The trial parameter that carries the seed (next to the varied hyperparameters)."""
DEFAULT_SEED_COUNT = 3
"""Seeds a spec that names none runs: the task's first ones (``Task.first_seeds``)."""

PAPER_BASELINES = ("adam", "amsgrad", "sgdm")
"""The optimizers Luo et al. compare their bounded ones with: a campaign without a
``verdicts`` field tests its bounded arms against its arms of these optimizers."""

SamplerName = Literal["grid", "random", "tpe", "qmc"]
PrunerName = Literal["none", "median", "hyperband"]


class Grid(BaseModel):
    """A hyperparameter swept over a list of values: ``{"grid": [0.01, 0.1, 1.0]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grid: list[float] = Field(min_length=1, max_length=MAX_GRID_POINTS)

    @field_validator("grid")
    @classmethod
    def _distinct(cls, values: list[float]) -> list[float]:
        if len(set(values)) != len(values):
            raise ValueError(f"grid values must be distinct, got {values}")
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"grid values must be finite, got {values}")
        return values


class Range(BaseModel):
    """A hyperparameter sampled from an interval: ``{"low": 1e-4, "high": 1e-1, "log": true}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"low and high must be finite, got {self.low}, {self.high}")
        if not self.low < self.high:
            raise ValueError(f"low must be below high, got low={self.low} high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got low={self.low}")
        return self


def _space_kind(value: Any) -> str:
    """Which of fixed value, grid or range an entry of ``space`` is (for precise errors)."""
    if isinstance(value, Grid) or (isinstance(value, dict) and "grid" in value):
        return "grid"
    if isinstance(value, Range | dict):
        return "range"
    return "value"


SpaceValue = Annotated[
    Annotated[float, Tag("value")] | Annotated[Grid, Tag("grid")] | Annotated[Range, Tag("range")],
    Discriminator(_space_kind),
]
"""A fixed value, ``{"grid": [...]}`` or ``{"low", "high", "log"}``."""


def _stored(info: ValidationInfo) -> bool:
    """Whether the spec is read back from the storage (``STORED``), not submitted."""
    return bool(info.context and info.context.get("stored"))


def _check_hyperparam(optimizer: str, name: str, value: float) -> None:
    """Raise ``ValueError`` naming ``space.<name>`` when ``value`` is outside its valid range."""
    try:
        OPTIMIZERS[optimizer].hyperparams[name].validate(value)
    except ValueError as exc:
        raise ValueError(f"space.{name}: {exc}") from None


class ArmSpec(BaseModel):
    """One optimizer with its search space; it becomes one Optuna study ``<campaign>/<arm>``.

    Attributes:
        name: The arm's name inside the campaign (defaults to the optimizer's name).
        optimizer: A key of ``optimizers.OPTIMIZERS`` (built-in, ``torch.optim`` or plugin).
        space: Hyperparameter → fixed value, ``Grid`` or ``Range``.
        sampler: ``grid`` runs every grid point with every seed; ``random``, ``tpe`` and ``qmc``
            draw ``n_trials`` configurations, seeds taken in turn.
        n_trials: Trials of a sampled arm (a grid arm's count follows from its grid).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", pattern=r"^$|" + NAME_PATTERN)
    optimizer: str
    space: dict[str, SpaceValue] = Field(default_factory=dict)
    sampler: SamplerName = "grid"
    n_trials: StrictInt | None = Field(default=None, ge=1, le=MAX_TRIALS_PER_ARM)

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, optimizer: str, info: ValidationInfo) -> str:
        if optimizer not in OPTIMIZERS:
            if _stored(info):  # a campaign of a plugin this process lacks: not a bad spec
                raise OPTIMIZERS.missing(optimizer)
            raise ValueError(
                f"unknown optimizer {optimizer!r}; valid optimizers: "
                f"{', '.join(sorted(OPTIMIZERS))}"
            )
        return optimizer

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> ArmSpec:
        if not self.name:
            self.name = self.optimizer
        entry = OPTIMIZERS[self.optimizer]
        stored = _stored(info)
        for param, value in self.space.items():
            if param not in entry.hyperparams:
                raise ValueError(
                    f"space.{param}: {self.optimizer} has no hyperparameter {param!r}; "
                    f"valid hyperparameters: {', '.join(sorted(entry.hyperparams))}"
                )
            if stored:
                continue  # admitted when it was created; today's ranges do not apply
            if isinstance(value, Grid):
                for v in value.grid:
                    _check_hyperparam(self.optimizer, param, v)
            elif isinstance(value, Range):
                _check_hyperparam(self.optimizer, param, value.low)
                _check_hyperparam(self.optimizer, param, value.high)
            else:
                _check_hyperparam(self.optimizer, param, value)
        if self.sampler == "grid":
            ranged = sorted(p for p, v in self.space.items() if isinstance(v, Range))
            if ranged:
                raise ValueError(
                    f"space.{ranged[0]}: the grid sampler needs a grid or a fixed value, not a "
                    "range; use sampler random, tpe or qmc for ranges"
                )
            if self.n_trials is not None:
                raise ValueError(
                    "n_trials: a grid arm runs every grid point with every seed; leave n_trials out"
                )
            points = math.prod(len(v.grid) for v in self.varied().values())
            if points > MAX_GRID_POINTS and not stored:
                raise ValueError(
                    f"space: the grid has {points} points, more than the cap of {MAX_GRID_POINTS}"
                )
        elif self.n_trials is None:
            raise ValueError(f"n_trials: required for the {self.sampler} sampler")
        return self

    def varied(self) -> dict[str, Grid | Range]:
        """The hyperparameters the arm searches over (they become trial params)."""
        return {p: v for p, v in self.space.items() if isinstance(v, Grid | Range)}

    def fixed(self) -> dict[str, float]:
        """The hyperparameters held at one value (registry defaults not included)."""
        return {p: float(v) for p, v in self.space.items() if not isinstance(v, Grid | Range)}

    def grid_points(self) -> list[dict[str, float]]:
        """Every configuration of a grid arm, in a stable order (empty dict if nothing varies)."""
        varied = self.varied()
        names = sorted(varied)
        grids = [varied[n].grid for n in names]  # type: ignore[union-attr]
        return [dict(zip(names, values, strict=True)) for values in itertools.product(*grids)]

    def planned_trials(self, seeds: list[int]) -> int:
        """How many trials the arm runs to completion."""
        if self.sampler == "grid":
            return len(self.grid_points()) * len(seeds)
        assert self.n_trials is not None
        return self.n_trials

    def distributions(self, seeds: list[int]) -> dict[str, BaseDistribution]:
        """The Optuna distribution of every trial param: the varied hyperparameters and the seed.

        Grids are categorical (a queued grid point is one of its choices), ranges floats. The
        objective suggests with exactly these, and a campaign's queued trials are created with
        their params already set in them, so Optuna accepts the queued values as suggested.
        """
        out: dict[str, BaseDistribution] = {}
        for name, value in sorted(self.varied().items()):
            if isinstance(value, Grid):
                out[name] = CategoricalDistribution(value.grid)
            else:
                out[name] = FloatDistribution(value.low, value.high, log=value.log)
        out[SEED_PARAM] = CategoricalDistribution(seeds)
        return out

    def queued_params(self, seeds: list[int]) -> list[dict[str, float | int]]:
        """The params of every trial queued when the campaign is created.

        A grid arm queues each (configuration, seed) pair; a sampled arm queues ``n_trials``
        slots that fix only the seed (taken in turn), the sampler fills in the rest.
        """
        if self.sampler == "grid":
            return [{**point, SEED_PARAM: seed} for point in self.grid_points() for seed in seeds]
        assert self.n_trials is not None
        return [{SEED_PARAM: seeds[i % len(seeds)]} for i in range(self.n_trials)]


class VerdictSpec(BaseModel):
    """Which arms the report's claims are about (docs/report.md, "Verdicts").

    Attributes:
        under_test: The arms whose robustness is claimed.
        baselines: The arms they are compared with, each swept over its ``lr``.
        hyperparameters: Arm under test -> the hyperparameters examined for robustness;
            an arm left out is examined over every hyperparameter it varies (the paper's
            bounded arms: ``final_lr`` and ``gamma``).
        early_reference: The arm the "as fast early" claim compares with (the paper: Adam).
        final_reference: The arm the "as good at the end" claim compares with (SGD-momentum).
    """

    model_config = ConfigDict(extra="forbid")

    under_test: list[str] = Field(min_length=1, max_length=MAX_ARMS)
    baselines: list[str] = Field(default_factory=list, max_length=MAX_ARMS)
    hyperparameters: dict[str, list[str]] = Field(default_factory=dict)
    early_reference: str | None = None
    final_reference: str | None = None


class CampaignSpec(BaseModel):
    """One experiment: a task, a budget, seeds and the arms to compare.

    Attributes:
        name: Unique name; arm studies are named ``<name>/<arm>``.
        task: A key of ``studies.tasks.TASKS`` (built-in or an installed plugin's).
        budget: Training budget of every trial.
        seeds: Every configuration runs once per seed.
        arms: The optimizers compared, each with its search space.
        pruner: ``none``, ``median`` or ``hyperband`` (stops bad trials early; a pruned trial
            counts as finished).
        description: Free text shown with the campaign.
        verdicts: Which arms are under test and which are their baselines; None: the bounded
            arms against the arms of ``PAPER_BASELINES`` (``verdict_roles``).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    task: str
    budget: Budget = Field(default_factory=Budget)
    # Strict: `true` is not the seed 1 (pydantic would take it for one).
    seeds: list[StrictInt] = Field(
        default_factory=lambda: list(range(DEFAULT_SEED_COUNT)), min_length=1, max_length=MAX_SEEDS
    )
    arms: list[ArmSpec] = Field(min_length=1, max_length=MAX_ARMS)
    pruner: PrunerName = "none"
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    verdicts: VerdictSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _task_seeds_by_default(cls, data: Any) -> Any:
        # Left out, the seeds are the task's first ones: 0, 1, 2, or for quadratic_deep,
        # whose seed names a published Hessian instance, 43, 44, 45.
        if isinstance(data, dict) and "seeds" not in data:
            task = TASKS.get(data["task"]) if isinstance(data.get("task"), str) else None
            if task is not None:
                return {**data, "seeds": task.first_seeds(DEFAULT_SEED_COUNT)}
        return data

    @model_validator(mode="after")
    def _seeds_the_task_takes(self, info: ValidationInfo) -> CampaignSpec:
        if not _stored(info):
            for seed in self.seeds:
                try:
                    TASKS[self.task].check_seed(seed)
                except ValueError as exc:
                    raise ValueError(f"seeds: {exc}") from None
        return self

    @field_validator("description")
    @classmethod
    def _plain_text(cls, description: str) -> str:
        return check_text(description)

    @field_validator("task")
    @classmethod
    def _known_task(cls, task: str, info: ValidationInfo) -> str:
        if task not in TASKS:
            if _stored(info):  # a campaign of a plugin this process lacks: not a bad spec
                raise TASKS.missing(task)
            raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(sorted(TASKS))}")
        return task

    @field_validator("seeds")
    @classmethod
    def _valid_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        for seed in seeds:
            if not 0 <= seed < 2**32:
                raise ValueError(f"seed {seed} is outside [0, 2**32)")
        return seeds

    @model_validator(mode="after")
    def _campaign_caps(self, info: ValidationInfo) -> CampaignSpec:
        names = [arm.name for arm in self.arms]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(
                f"arms: names must be unique, {', '.join(duplicated)} appears more than once; "
                "give the arms a name"
            )
        if self.verdicts is not None:
            self._check_verdicts(self.verdicts)
        if _stored(info):
            return self  # admitted when it was created; today's caps do not apply
        total = self.total_trials()
        if total > MAX_TRIALS_PER_CAMPAIGN:
            raise ValueError(
                f"arms: the campaign plans {total} trials, more than the cap of "
                f"{MAX_TRIALS_PER_CAMPAIGN}"
            )
        epochs = TASKS[self.task].epochs(self.budget)
        if epochs > MAX_EPOCHS:
            raise ValueError(
                f"budget.epochs: {epochs} epochs per trial, more than the cap of {MAX_EPOCHS}"
            )
        steps = self.total_steps()
        if steps > MAX_CAMPAIGN_STEPS:
            raise ValueError(
                f"budget: the campaign plans {steps} optimizer steps in all ({total} trials of "
                f"up to {steps // total} steps), more than the cap of {MAX_CAMPAIGN_STEPS}; "
                "lower budget.epochs, budget.max_steps or the number of trials"
            )
        return self

    def _check_verdicts(self, verdicts: VerdictSpec) -> None:
        """Every arm ``verdicts`` names exists, plays one role, and examines what it varies."""
        names = [arm.name for arm in self.arms]
        valid = ", ".join(names)
        roles = {
            "under_test": verdicts.under_test,
            "baselines": verdicts.baselines,
            "early_reference": [verdicts.early_reference] if verdicts.early_reference else [],
            "final_reference": [verdicts.final_reference] if verdicts.final_reference else [],
        }
        for field, listed in roles.items():
            for name in listed:
                if name not in names:
                    raise ValueError(f"verdicts.{field}: no arm {name!r}; arms: {valid}")
        for field in ("under_test", "baselines"):
            listed = roles[field]
            twice = sorted({n for n in listed if listed.count(n) > 1})
            if twice:
                raise ValueError(f"verdicts.{field}: {', '.join(twice)} listed twice")
        both = sorted(set(verdicts.under_test) & set(verdicts.baselines))
        if both:
            raise ValueError(
                f"verdicts.baselines: {', '.join(both)} is also under test; an arm is either "
                "under test or a baseline"
            )
        for name, examined in verdicts.hyperparameters.items():
            if name not in verdicts.under_test:
                raise ValueError(
                    f"verdicts.hyperparameters.{name}: not an arm under test; under test: "
                    f"{', '.join(verdicts.under_test)}"
                )
            varied = sorted(self.arm(name).varied())
            for h in examined:
                if h not in varied:
                    raise ValueError(
                        f"verdicts.hyperparameters.{name}: {name} does not vary {h!r}; it "
                        f"varies: {', '.join(varied) or 'nothing'}"
                    )

    def verdict_roles(self) -> VerdictSpec:
        """The ``verdicts`` field, or the paper's choice when it is not set: every arm of a
        bounded optimizer under test, the arms of ``PAPER_BASELINES`` as baselines, the first
        Adam arm as the early reference and the first SGD-momentum arm as the final one."""
        if self.verdicts is not None:
            return self.verdicts
        under_test = [
            a.name
            for a in self.arms
            if a.optimizer in OPTIMIZERS and OPTIMIZERS[a.optimizer].bounded
        ]
        baselines = [a.name for a in self.arms if a.optimizer in PAPER_BASELINES]
        first = {
            optimizer: next((a.name for a in self.arms if a.optimizer == optimizer), None)
            for optimizer in ("adam", "sgdm")
        }
        return VerdictSpec.model_construct(
            under_test=under_test,
            baselines=baselines,
            hyperparameters={},
            early_reference=first["adam"],
            final_reference=first["sgdm"],
        )

    def total_steps(self) -> int:
        """Optimizer steps of every trial together, at most (pruning and divergence end some
        trials early)."""
        task = TASKS[self.task]
        per_trial = task.epochs(self.budget) * task.steps_per_epoch(self.budget)
        if self.budget.max_steps is not None:
            per_trial = min(per_trial, self.budget.max_steps)
        return self.total_trials() * per_trial

    def total_trials(self) -> int:
        """Trials of every arm together."""
        return sum(arm.planned_trials(self.seeds) for arm in self.arms)

    def arm(self, name: str) -> ArmSpec:
        """The arm called ``name``; ``KeyError`` listing the arms otherwise."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"no arm {name!r} in {self.name}; arms: {[a.name for a in self.arms]}")

    def to_yaml(self) -> str:
        """The spec as YAML (what ``from_yaml`` reads back)."""
        import yaml  # here: readers of specs (the report, the API) never write YAML

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> CampaignSpec:
        """Read a spec from YAML text within the document limits (``parse_yaml``); a document
        that is not a mapping, or one over a limit, is a ``ValueError``."""
        data: Any = parse_yaml(text)
        if not isinstance(data, dict):
            raise ValueError("a campaign spec must be a YAML mapping (name, task, arms, ...)")
        return cls.model_validate(data)
