"""The bound schedule of AdaBound (Luo et al. 2019), for the report's plot.

At step t the step size is clipped into [lower(t), upper(t)] with
lower = final_lr * (1 - 1 / (gamma * t + 1)) and upper = final_lr * (1 + 1 / (gamma * t)):
`optimizers.bound_at`, the curves the optimizers clip with, evaluated at log-spaced steps.
"""

from __future__ import annotations

import numpy as np
from boundsweep.optimizers import bound_at

POINTS = 60


def log_spaced_bounds(final_lr: float, gamma: float, steps: int, points: int = POINTS) -> dict:
    """Lower and upper bound at log-spaced steps 1..steps (``optimizers.bound_schedule`` gives
    every step; a plot of a long run needs ``points`` of them)."""
    t = np.unique(np.round(np.geomspace(1, max(steps, 2), points))).tolist()
    lower, upper = zip(*(bound_at(final_lr, gamma, int(step)) for step in t), strict=True)
    return {"steps": t, "lower": list(lower), "upper": list(upper)}
