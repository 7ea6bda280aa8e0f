"""How the verdicts print numbers and sentences."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from boundsweep.studies.robustness._metric import Metric


def fmt(x: float | None) -> str:
    """Three significant digits for small numbers, two decimals up to 10, one beyond."""
    if x is None or not math.isfinite(x):
        return "∞" if x is not None and x > 0 else "–"
    return f"{x:.3g}" if abs(x) < 0.1 else f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"


def fmt_ci(ci: list[float]) -> str:
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def coarse_reason(metric: Metric) -> str:
    """Why a margin claim cannot be decided when the metric's step is coarser than the margin."""
    return (
        f"the {metric.name} moves in steps of {fmt(metric.resolution)} {metric.unit}, coarser than the "
        f"{fmt(metric.margin)} {metric.unit} margin, so it cannot resolve the margin"
    ).replace("  ", " ")


def with_sentence(record: dict) -> dict:
    """Set ``record["sentence"]``: the evidence (``body``) and the outcome; with a ``reason``
    (why it cannot be decided) or a ``note`` (why the family-wise control held it back)."""
    outcome = record["outcome"]
    if record.get("reason"):
        record["sentence"] = f"{record['claim']}: {outcome} — {record['reason']}."
    elif record.get("note"):
        record["sentence"] = f"{record['body']} — {outcome} ({record['note']})."
    else:
        record["sentence"] = f"{record['body']} — {outcome}."
    return record
