"""The training budget a trial runs under: epochs, a fraction of the training data, a step cap."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class Budget(BaseModel):
    """How much training one trial gets.

    The default (every field left out) is the paper's budget for the task. Tests, CI and quick
    looks shrink it: ``Budget(epochs=2, data_fraction=0.1, max_steps=20)`` runs any task in
    seconds on a CPU.

    Attributes:
        epochs: Passes over the (possibly reduced) training set; ``None`` means the task's
            ``default_epochs``. The task's lr milestones scale with it (see ``Task.milestones``).
        data_fraction: Fraction of the training split used, ``0 < f <= 1``. The subset is fixed
            (independent of the trial seed), so every trial of a campaign sees the same data.
        max_steps: Stop after this many optimizer steps in total, mid-epoch if need be; the
            epoch in progress is still evaluated and recorded.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Strict: `true` is not one epoch.
    epochs: StrictInt | None = Field(default=None, ge=1)
    data_fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    max_steps: StrictInt | None = Field(default=None, ge=1)
