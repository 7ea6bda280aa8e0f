"""The dynamic bound of AdaBound's step size, as a function of the step count.

Luo et al. (ICLR 2019) clip Adam's per-parameter step size to ``[lower(t), upper(t)]``, two
curves that start at 0 and infinity and both converge to ``final_lr`` at a speed set by
``gamma``. These are the curves of the authors' released code, which the paper's experiments
ran with.
"""

from __future__ import annotations

from typing import Any

__all__ = ["bound_at", "bound_schedule", "current_bounds", "scaled_final_lr"]


def scaled_final_lr(final_lr: float, lr: float, base_lr: float) -> float:
    """The final learning rate coupled to the lr schedule: ``final_lr * lr / base_lr``.

    An lr scheduler that halves ``lr`` halves the bounds too, as the authors intended.
    """
    if base_lr == 0.0:
        # lr was 0 from the start: nothing moves, and the bounds are 0 as well.
        return 0.0
    return final_lr * lr / base_lr


def bound_at(final_lr: float, gamma: float, step: int) -> tuple[float, float]:
    """The (lower, upper) step-size bound after ``step`` (>= 1) optimizer steps.

    Args:
        final_lr: The value both bounds converge to (already scaled by the lr schedule).
        gamma: The convergence speed of the bounds.
        step: The 1-based step count ``t``.

    Returns:
        ``(final_lr * (1 - 1 / (gamma * t + 1)), final_lr * (1 + 1 / (gamma * t)))``.
    """
    lower = final_lr * (1.0 - 1.0 / (gamma * step + 1.0))
    upper = final_lr * (1.0 + 1.0 / (gamma * step))
    return lower, upper


def bound_schedule(final_lr: float, gamma: float, steps: int) -> tuple[list[float], list[float]]:
    """The lower and upper bounds for steps ``1 .. steps``, e.g. to plot the bound schedule.

    Args:
        final_lr: The value both bounds converge to.
        gamma: The convergence speed of the bounds.
        steps: How many steps to compute.

    Returns:
        Two lists of length ``steps``: ``lower[i]`` and ``upper[i]`` hold the bounds at step
        ``i + 1``.
    """
    lower: list[float] = []
    upper: list[float] = []
    for t in range(1, steps + 1):
        lo, hi = bound_at(final_lr, gamma, t)
        lower.append(lo)
        upper.append(hi)
    return lower, upper


def current_bounds(optimizer: Any) -> tuple[float, float] | None:
    """The (lower, upper) step-size bound of the first param group at its current step.

    Args:
        optimizer: Any ``torch.optim.Optimizer``.

    Returns:
        The bounds for a bounded optimizer (AdaBound, AMSBound, AdaBoundW); ``None`` for any
        other optimizer. Before the first step the bounds of step 1 are returned, since that is
        the step they will clip next.
    """
    groups = getattr(optimizer, "param_groups", None)
    if not groups or "final_lr" not in groups[0] or "gamma" not in groups[0]:
        return None
    group = groups[0]
    steps = [
        optimizer.state[p]["step"] for p in group["params"] if "step" in optimizer.state.get(p, {})
    ]
    step = max(steps) if steps else 0
    final_lr = scaled_final_lr(group["final_lr"], group["lr"], group["base_lr"])
    return bound_at(final_lr, group["gamma"], max(int(step), 1))
