"""`Metric`: what the verdicts need to know about the score they judge."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Metric:
    """How to read a score: its direction, the difference that matters, how it is printed.

    Attributes:
        maximize: Higher is better (accuracy, return, F1); False for loss, perplexity, MSE.
        margin: The smallest difference that matters, in the scores' own units (absolute):
            the dynamics claims' non-inferiority margin, the tuning gain's bar, and the floor
            below which a baseline's spread is too small to compare with. A task declares it
            (``Task.margin``; relative margins are turned absolute with ``absolute_margin``).
        unit: Printed after a difference ("points").
        name: The metric's name, for sentences.
        step: The scores' resolution (accuracy on 144 images: 100/144 points), 0 when
            continuous; None: read off the scores (``campaign_verdicts``). A step coarser than
            ``margin`` cannot resolve the margin.
        relative: ``margin`` is a fraction of the best score (perplexity: 0.02); ``at(best)``
            gives the metric with the margin in score units.
    """

    maximize: bool
    margin: float
    unit: str = ""
    name: str = "score"
    step: float | None = 0.0
    relative: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.margin, int | float) and math.isfinite(self.margin)):
            raise ValueError(f"margin must be a finite number, got {self.margin!r}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin!r}")
        if self.step is not None and not (math.isfinite(self.step) and self.step >= 0):
            raise ValueError(f"step must be a finite number >= 0, got {self.step!r}")
        if self.relative and self.margin >= 1:
            raise ValueError(f"a relative margin is a fraction below 1, got {self.margin!r}")

    @property
    def resolution(self) -> float:
        """``step`` as a number (0 when unknown)."""
        return self.step or 0.0

    def at(self, best: float) -> Metric:
        """This metric with an absolute margin: a relative one taken of ``|best|``."""
        if not self.relative:
            return self
        return replace(self, margin=self.margin * abs(best) or self.margin, relative=False)

    def oriented(self, value: float) -> float:
        """The value turned so that higher is better."""
        return value if self.maximize else -value
