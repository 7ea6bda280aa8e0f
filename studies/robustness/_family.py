"""Family-wise error control over a report's claims (Holm 1979).

A report makes many claims (robustness per arm and hyperparameter, tuning gains, dynamics);
each decided at 95% alone, one in twenty true-at-the-threshold claims would come out decisive,
and a report of 8 such claims would carry one 34% of the time. Holm's step-down procedure
keeps the probability of any wrong decisive verdict in the report at most FAMILY_ALPHA
(whatever the dependence between the claims), and rejects more than Bonferroni when several
claims are clear. Its weighted form gives the robustness claims, the report's headline, twice
the share of the error budget of a tuning or dynamics claim (``WEIGHTS``): a report of 4
robustness, 4 tuning and 4 dynamics claims tests a robustness claim first at 5% x 2/16.

Each claim's p is two-sided: twice the smaller of its two one-sided p values ("supported",
"not supported"), so a claim alone is decisive exactly when its 95% interval excludes the
threshold. Claims that cannot be decided (``p`` None: too few seeds, a coarse metric, an arm
identical to another) are not tested and not counted.
"""

from __future__ import annotations

from boundsweep.studies.robustness._words import with_sentence

FAMILY_ALPHA = 0.05


WEIGHTS = {"robustness": 2.0, "tuning": 1.0, "dynamics": 1.0}
"""Each claim kind's share of the error budget: the robustness claims are the report's
headline (what the campaign exists to test) and weigh twice a tuning or dynamics claim."""


def holm(p_values: list[float], weights: list[float] | None = None) -> list[float]:
    """(Weighted) Holm-adjusted p values, in the order given.

    In the order of p / weight, each adjusted p is p x (total weight of the claims not yet
    rejected) / its weight, and never below an earlier one's (Holm 1979, weighted form). With
    equal weights this is max over earlier ranks of (m - k + 1) p.
    """
    weights = weights or [1.0] * len(p_values)
    order = sorted(range(len(p_values)), key=lambda i: p_values[i] / weights[i])
    adjusted = [1.0] * len(p_values)
    remaining = sum(weights)
    running = 0.0
    for i in order:
        running = max(running, min(1.0, p_values[i] * remaining / weights[i]))
        adjusted[i] = running
        remaining -= weights[i]
    return adjusted


def family_verdicts(claims: list[dict], alpha: float = FAMILY_ALPHA) -> dict:
    """Apply Holm to ``claims`` in place and return the family's summary.

    A claim decisive alone keeps its outcome when its Holm-adjusted p is at most ``alpha``;
    otherwise it becomes inconclusive with a note giving both p values. Every tested claim
    gets ``p_adjusted`` and ``outcome_alone`` (its outcome at 95% without the family).
    """
    tested = [c for c in claims if c.get("p") is not None]
    adjusted = holm([c["p"] for c in tested], [WEIGHTS.get(c.get("kind"), 1.0) for c in tested])
    for claim, p_adjusted in zip(tested, adjusted, strict=True):
        claim["p_adjusted"] = p_adjusted
        claim["outcome_alone"] = claim["outcome"]
        if claim["outcome"] != "inconclusive" and p_adjusted > alpha:
            claim["outcome"] = "inconclusive"
            claim["note"] = (
                f"decisive alone at 95% (p = {claim['p']:.2g}), but not after family-wise "
                f"control over the report's {len(tested)} claims (Holm p = {p_adjusted:.2g} > "
                f"{alpha:g})"
            )
        with_sentence(claim)
    return {
        "method": "Holm",
        "alpha": alpha,
        "weights": {
            kind: w for kind, w in WEIGHTS.items() if any(c.get("kind") == kind for c in tested)
        },
        "claims": len(tested),
        "untested": len(claims) - len(tested),
        "decisive": sum(c["outcome"] != "inconclusive" for c in tested),
    }
