"""What a task is: the paper's budget, its batch shape, and how it is scored.

This is the metadata half of a task and imports no torch: specs validate against it and the
report computes step counts from it without loading torch. How a task's data is loaded and
its model built is the torch half, :class:`~boundsweep.studies.tasks._trainable.TrainableTask`.

The metric is any name (accuracy, perplexity, loss, return, F1 ...). What the report needs to
judge it generically is declared beside it: its ``margin`` (the smallest difference that
matters, absolute or relative to the best score), the ``scale`` from stored to reported
values and the ``unit`` the report prints. Accuracy and perplexity have defaults
(``METRIC_DEFAULTS``); any other metric must declare its margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from boundsweep.studies.tasks._budget import Budget

DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class MetricDefaults:
    """How the report scales, labels and judges a metric when the task does not say.

    Attributes:
        margin: The smallest difference in the metric that matters, in report units (or, when
            ``relative``, as a fraction of the best score).
        relative: Whether ``margin`` is a fraction of the best score rather than an amount.
        scale: Reported value = stored value x ``scale``.
        unit: The word the report prints after a difference in the metric.
    """

    margin: float
    relative: bool
    scale: float
    unit: str


METRIC_DEFAULTS: dict[str, MetricDefaults] = {
    # Accuracy is stored as a fraction and reported in percentage points; half a point is the
    # smallest difference the paper's figures distinguish.
    "accuracy": MetricDefaults(margin=0.5, relative=False, scale=100.0, unit="points"),
    # Perplexity spans orders of magnitude across tasks: 2% of the best is the margin.
    "perplexity": MetricDefaults(margin=0.02, relative=True, scale=1.0, unit="perplexity"),
}
"""Defaults for the built-in metrics; a task with another metric declares its own."""


@dataclass(frozen=True)
class Task:
    """One of the paper's tasks (or a small stand-in on the same code path).

    Attributes:
        name: Registry key.
        description: One line for people.
        kind: ``"classification"`` (cross-entropy, accuracy), ``"language_model"``
            (next-word cross-entropy over BPTT windows, perplexity), ``"quadratic"``
            (DeepOBS's noisy quadratic, scored by its loss): our training loop; or
            ``"loop"``: the task's own training loop (``code`` names it, see
            ``studies.training.TrialContext``).
        metric: The metric's name (``"accuracy"``, ``"perplexity"``, ``"loss"``, ...).
        direction: ``"maximize"`` or ``"minimize"``, the Optuna direction of ``metric``.
        default_epochs: The paper's number of epochs.
        diverged_value: The metric a diverged run is scored with: chance accuracy
            ``1/num_classes``, or perplexity equal to the vocabulary size. ``None``: what
            the run scored before its first step (DeepOBS's convention, for a problem
            whose starting loss differs from seed to seed).
        batch_size: Training batch size (a ``loop`` task: 1).
        train_size: Training examples (classification) or tokens (language models) of the real
            data after the validation hold-out; gives ``steps_per_epoch`` without loading data.
            A ``loop`` task: 1 (an epoch counts as one step against the campaign caps).
        milestones: Epochs (of ``default_epochs``) after which the lr is multiplied by
            ``lr_decay``. A budget with other epochs scales them proportionally.
        lr_decay: Factor applied at each milestone.
        weight_decay: Applied when the trial's hyperparameters do not set ``weight_decay``.
        grad_clip: Max global gradient norm, or ``None``.
        bptt: Language models: tokens per truncated-backprop window.
        channels_last: Convolutional nets: use the channels-last memory format on CUDA.
        batchable: ``studies.training.train_batched`` may train K configurations of it as one
            stacked model: a classifier whose training step is only forward, cross-entropy,
            backward and step (no augmentation, dropout, batch-norm statistics or clipping).
        margin: The smallest difference in the metric that matters, in report units: the
            verdicts' non-inferiority margin and robust-region width. ``None``: the metric's
            ``METRIC_DEFAULTS`` (accuracy 0.5 points, perplexity 2% of the best); a metric
            without defaults must set it. Always set after construction.
        margin_relative: ``margin`` is a fraction of the best score (perplexity) rather than an
            amount (accuracy points). ``None``: the metric's default, else absolute.
        scale: Reported value = stored value x ``scale`` (accuracy: fraction -> points, 100).
            ``None``: the metric's default, else 1.
        unit: What the report calls a difference in the metric (``"points"``). ``None``: the
            metric's default, else the metric's name.
        drop_remainder: An epoch is the full batches only (the remainder is never trained on).
        seeds: The trial seeds the task takes, when not every seed names a run of it (the
            quadratic's seed picks its Hessian instance); ``None``: any seed.
        code: A plugin task's torch half, loaded only when a trial trains: for a ``loop``
            task ``"package.module:function"``, the function given a ``TrialContext`` that
            returns the final metric; for the other kinds ``"package.module"`` (or
            ``"package.module:object"``) with ``load_data(data_dir)`` and
            ``build_model(data)`` (optionally ``train_inputs``, ``eval_inputs``). ``None``
            for the built-in tasks.
    """

    name: str
    description: str
    kind: Literal["classification", "language_model", "quadratic", "loop"]
    metric: str
    direction: Literal["maximize", "minimize"]
    default_epochs: int
    diverged_value: float | None
    batch_size: int = 1
    train_size: int = 1
    milestones: tuple[int, ...] = ()
    lr_decay: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float | None = None
    bptt: int | None = None
    channels_last: bool = False
    batchable: bool = False
    margin: float | None = None
    margin_relative: bool | None = None
    scale: float | None = None
    unit: str | None = None
    drop_remainder: bool = False
    seeds: range | None = None
    code: str | None = None

    def __post_init__(self) -> None:
        self._resolve_metric()
        if self.kind == "loop":
            if not self.code:
                raise ValueError(f"task {self.name!r}: a loop task needs code (module:function)")
            if self.diverged_value is None or self.batchable:
                raise ValueError(
                    f"task {self.name!r}: a loop task needs a diverged_value and is not batchable"
                )
        if self.batchable:
            assert self.kind == "classification", f"batchable task {self.name} is a classifier"
            assert self.grad_clip is None, f"batchable task {self.name} has no clipping"

    def _resolve_metric(self) -> None:
        """Fill the metric fields left ``None`` from ``METRIC_DEFAULTS`` and check them all.

        Raises:
            ValueError: naming the task and the field: an empty metric, an unknown direction,
                a metric without defaults and no margin, a margin or scale that is not a
                positive finite number, a relative margin of 1 or more.
        """
        where = f"task {self.name!r}"
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"{where}: metric must be a non-empty name, got {self.metric!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"{where}: direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}"
            )
        defaults = METRIC_DEFAULTS.get(self.metric)
        if self.margin is None and defaults is None:
            raise ValueError(
                f"{where}: metric {self.metric!r} has no default margin; set margin (the "
                f"smallest difference that matters; built-in defaults exist for "
                f"{', '.join(sorted(METRIC_DEFAULTS))})"
            )
        filled = {
            "margin": defaults.margin if defaults else None,
            "margin_relative": defaults.relative if defaults else False,
            "scale": defaults.scale if defaults else 1.0,
            "unit": defaults.unit if defaults else self.metric,
        }
        for name, default in filled.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        for name in ("margin", "scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (
                isinstance(value, int | float) and math.isfinite(value) and value > 0
            ):
                raise ValueError(f"{where}: {name} must be a finite number > 0, got {value!r}")
        if self.margin_relative and self.margin >= 1:
            raise ValueError(
                f"{where}: a relative margin is a fraction of the best score below 1, "
                f"got {self.margin!r}"
            )
        if not isinstance(self.unit, str) or not self.unit:
            raise ValueError(f"{where}: unit must be a non-empty word, got {self.unit!r}")

    def absolute_margin(self, best: float) -> float:
        """The margin in report units, given the best score in report units.

        An absolute margin is itself; a relative one is that fraction of ``|best|``.
        """
        assert self.margin is not None  # resolved in __post_init__
        return self.margin * abs(best) if self.margin_relative else self.margin

    def check_seed(self, seed: int) -> None:
        """Raise ``ValueError`` naming the valid seeds when the task does not take ``seed``."""
        if self.seeds is not None and seed not in self.seeds:
            raise ValueError(
                f"seed {seed}: task {self.name} takes seeds {self.seeds.start} to "
                f"{self.seeds.stop - 1}"
            )

    def first_seeds(self, n: int) -> list[int]:
        """The ``n`` smallest seeds the task takes: a campaign's default seeds."""
        return list(self.seeds[:n] if self.seeds is not None else range(n))

    def epochs(self, budget: Budget | None = None) -> int:
        """Epochs a budget gives: ``budget.epochs`` or the paper's default."""
        if budget is None or budget.epochs is None:
            return self.default_epochs
        return budget.epochs

    def scaled_milestones(self, epochs: int) -> list[int]:
        """The lr milestones for a run of ``epochs`` epochs, at the paper's relative positions.

        With the default epochs they are the paper's (e.g. 150 of 200); a 20-epoch run decays
        at epoch 15. Milestones that would fall at 0 or at/after the last epoch are dropped.
        """
        scaled = (round(m * epochs / self.default_epochs) for m in self.milestones)
        return sorted({m for m in scaled if 0 < m < epochs})

    def steps_per_epoch(self, budget: Budget | None = None) -> int:
        """Optimizer steps in one epoch of the real data under ``budget``.

        A partial last batch counts, unless ``drop_remainder``; a training set smaller than one
        batch is one (partial) batch either way.
        """
        fraction = 1.0 if budget is None else budget.data_fraction
        if self.kind == "language_model":
            assert self.bptt is not None, f"task {self.name} needs bptt"
            tokens = max(2, math.ceil(fraction * self.train_size))
            per_stream = tokens // self.batch_size
            steps = math.ceil((per_stream - 1) / self.bptt)
        else:
            examples = max(1, math.ceil(fraction * self.train_size))
            if self.drop_remainder:
                steps = examples // self.batch_size
            else:
                steps = math.ceil(examples / self.batch_size)
        if budget is not None and budget.max_steps is not None:
            steps = min(steps, budget.max_steps)
        return max(1, steps)
