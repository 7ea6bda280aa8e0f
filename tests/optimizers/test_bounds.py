"""The bound schedule and the current bounds of an optimizer."""

from __future__ import annotations

import pytest
import torch
from boundsweep.optimizers import AdaBound, bound_schedule, current_bounds
from boundsweep.optimizers._bounds import bound_at


def test_schedule_starts_wide_and_converges_to_final_lr() -> None:
    lower, upper = bound_schedule(final_lr=0.1, gamma=1e-3, steps=100_000)
    assert len(lower) == len(upper) == 100_000
    assert lower[0] == pytest.approx(0.1 * (1 - 1 / (1e-3 + 1)))
    assert upper[0] == pytest.approx(0.1 * (1 + 1 / 1e-3))
    assert all(a < b for a, b in zip(lower, lower[1:], strict=False))
    assert all(a > b for a, b in zip(upper, upper[1:], strict=False))
    assert all(lo < 0.1 < hi for lo, hi in zip(lower, upper, strict=True))
    # After 100k steps at gamma=1e-3 (gamma * t = 100) both are within 1/100 of final_lr.
    assert lower[-1] == pytest.approx(0.1, rel=0.0101) and upper[-1] == pytest.approx(
        0.1, rel=0.0101
    )


def test_faster_gamma_closes_the_bounds_sooner() -> None:
    slow = bound_at(0.1, 1e-3, 1000)
    fast = bound_at(0.1, 1e-1, 1000)
    assert slow[0] < fast[0] < 0.1 < fast[1] < slow[1]


def test_current_bounds_follow_the_step_and_the_lr_schedule() -> None:
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = AdaBound([weight], lr=0.01, final_lr=0.1, gamma=0.01)
    assert current_bounds(optimizer) == bound_at(0.1, 0.01, 1)  # the next step's
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    for _ in range(4):
        weight.grad = torch.ones(2)
        optimizer.step()
        scheduler.step()
    # lr halved once: final_lr * lr / base_lr halves with it.
    assert current_bounds(optimizer) == bound_at(0.05, 0.01, 4)


def test_current_bounds_is_none_for_unbounded_optimizers() -> None:
    weight = torch.nn.Parameter(torch.ones(2))
    assert current_bounds(torch.optim.Adam([weight])) is None
    assert current_bounds(torch.optim.SGD([weight], lr=0.1)) is None
