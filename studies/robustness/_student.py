"""Student's t distribution for whole degrees of freedom: its CDF and its quantiles.

The verdicts' tests are t tests with whole degrees of freedom (seeds - 1, or a pooled
(seeds - 1)(values - 1)). For whole df the CDF is a finite trigonometric sum (Abramowitz &
Stegun 26.7.3-4), exact to rounding, so the report needs no SciPy import (about half a second
in a text report). ``tests/studies/test_robustness_calibration.py`` checks both functions
against ``scipy.special.stdtr`` / ``stdtrit``.
"""

from __future__ import annotations

import math
from functools import lru_cache

_QUANTILE_TOLERANCE = 1e-12


def t_cdf(x: float, df: int) -> float:
    """P(T <= x) for T ~ Student t with ``df`` (>= 1) degrees of freedom; x may be +-inf."""
    if df < 1:
        raise ValueError(f"df must be a whole number >= 1, got {df}")
    if math.isnan(x):
        return math.nan
    if math.isinf(x):
        return 1.0 if x > 0 else 0.0
    theta = math.atan2(abs(x), math.sqrt(df))
    c2 = math.cos(theta) ** 2
    s = math.sin(theta)
    if df % 2:  # odd: A = (2/pi)(theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...))
        term, total = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        central = 2.0 / math.pi * (theta + (s * math.cos(theta) * total if df > 1 else 0.0))
    else:  # even: A = sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
        term, total = 1.0, 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        central = s * total
    central = min(max(central, 0.0), 1.0)  # P(|T| <= |x|)
    return 0.5 + 0.5 * central if x >= 0 else 0.5 - 0.5 * central


@lru_cache(maxsize=4096)
def t_quantile(p: float, df: int) -> float:
    """The x with P(T <= x) = p (bisection on ``t_cdf``); -inf at 0, inf at 1.

    Cached: a report asks for the same few critical values (one per level and df) many times.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p}")
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
        if hi > 1e300:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= _QUANTILE_TOLERANCE * max(1.0, hi):
            break
    return 0.5 * (lo + hi)
