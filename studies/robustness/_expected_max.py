"""Expected best score after k random trials, and the tunability summaries built on it.

Dodge et al. 2019 ("Show Your Work") report the expected maximum of k configurations drawn
*with* replacement from the N that were run. Tang et al. 2020 ("Showing Your Work Doesn't
Always Work") show that estimator is biased and give the unbiased one for drawing *without*
replacement. Sivaprasad et al. 2020 ("Optimizer Benchmarking Needs to Account for
Hyperparameter Tuning") summarise such a curve as omega-weighted sums of it.
"""

from __future__ import annotations

import numpy as np


def expected_max_with_replacement(scores: np.ndarray | list[float]) -> np.ndarray:
    """Dodge et al. 2019: E[max of k draws with replacement] for k = 1..N.

    With ascending scores v_(1) <= ... <= v_(N), the empirical CDF gives
    P(max = v_(i)) = (i/N)^k - ((i-1)/N)^k.
    """
    v = np.sort(np.asarray(scores, dtype=float))
    n = v.size
    if n == 0:
        return np.empty(0)
    i = np.arange(1, n + 1, dtype=float)
    k = np.arange(1, n + 1, dtype=float)[:, None]
    weights = (i / n) ** k - ((i - 1) / n) ** k
    return weights @ v


def expected_max_unbiased(scores: np.ndarray | list[float]) -> np.ndarray:
    """Tang et al. 2020: unbiased E[max of k draws without replacement] for k = 1..N.

    P(max of a k-subset = v_(i)) = C(i-1, k-1) / C(N, k): the subset holds v_(i) and k-1 of
    the i-1 smaller scores. At k = N this is the best score, at k = 1 the mean.
    """
    v = np.sort(np.asarray(scores, dtype=float))
    n = v.size
    if n == 0:
        return np.empty(0)
    i = np.arange(1, n + 1)[None, :]
    k = np.arange(1, n + 1)[:, None]
    valid = i >= k
    # log C(i-1, k-1) - log C(n, k), evaluated only where i >= k (else the weight is 0).
    ii = np.where(valid, i, k)
    # log j! for j = 0..n: every argument is a whole number, so a running sum of logs is
    # exact enough and needs no special-function library.
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    log_w = (
        log_factorial[ii - 1]
        - log_factorial[k - 1]
        - log_factorial[ii - k]
        - (log_factorial[n] - log_factorial[k] - log_factorial[n - k])
    )
    weights = np.where(valid, np.exp(log_w), 0.0)
    return weights @ v


def tunability(curve: np.ndarray | list[float], budget: int | None = None) -> dict[str, float]:
    """Sivaprasad et al. 2020 omega-tunability summaries of an expected-max curve.

    Each is sum_k w_k * E[max_k] over k = 1..K with weights summing to one:
    one-shot w_1 = 1 (the score of one random configuration), peak w_K = 1 (the best after
    the budget), CPE w_k proportional to K - k + 1 (cumulative performance, early budgets
    count most), CPL w_k proportional to k (late budgets count most).

    Args:
        curve: E[max_k] for k = 1..N (in "higher is better" orientation or not; the sums are
            linear so the orientation does not matter).
        budget: K, the number of trials the summaries look at (default: the whole curve).
            Use the same K for every arm so they are comparable.
    """
    values = np.asarray(curve, dtype=float)
    k_max = values.size if budget is None else min(budget, values.size)
    if k_max == 0:
        return {"budget": 0, "one_shot": None, "peak": None, "cpe": None, "cpl": None}
    head = values[:k_max]
    k = np.arange(1, k_max + 1, dtype=float)
    early = (k_max - k + 1) / np.sum(k_max - k + 1)
    late = k / np.sum(k)
    return {
        "budget": int(k_max),
        "one_shot": float(head[0]),
        "peak": float(head[-1]),
        "cpe": float(early @ head),
        "cpl": float(late @ head),
    }
