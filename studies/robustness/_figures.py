"""The report's figures as data: what each figure shows, drawn by ``_drawing``.

One description per figure, drawn by matplotlib once per format, keeps the page's SVG and the
PNG files showing the same thing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field


@dataclass
class Figure:
    """One figure: ``kind`` is "line", "heatmap" or "bars"."""

    id: str
    kind: str
    title: str
    x_label: str = ""
    y_label: str = ""
    log_x: bool = False
    log_y: bool = False
    series: list[dict] = field(default_factory=list)
    heat: dict | None = None
    groups: dict[str, dict[str, float]] | None = None


def slug(text: str) -> str:
    """A name safe inside an element id and a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def _metric_label(report: dict) -> str:
    unit = "%" if report["metric_name"] == "accuracy" else ""
    return f"{report['metric']} {report['metric_name']}" + (f" ({unit})" if unit else "")


def figures(report: dict) -> list[Figure]:
    """Every figure the report's data supports, in page order."""
    y = _metric_label(report)
    arms = [a for a in report["arms"] if a.get("n_configurations")]
    out: list[Figure] = []

    sensitivity = []
    for arm in arms:
        best = arm["best_configuration"]["params"]
        for h, sw in arm.get("sweeps", {}).items():
            if h not in ("lr", "final_lr", "gamma") or not best.get(h) or best[h] <= 0:
                continue
            sensitivity.append(
                {
                    "name": f"{arm['name']} {h}",
                    "x": [math.log10(v / best[h]) if v > 0 else None for v in sw["values"]],
                    "y": sw["mean"],
                    "lo": sw["lo"],
                    "hi": sw["hi"],
                    "dash": not arm["bounded"],
                }
            )
    if sensitivity:
        out.append(
            Figure(
                "plot-sensitivity",
                "line",
                "Sensitivity: every sweep, centred on its best value",
                "decades from the best value (log10 ratio)",
                y,
                series=sensitivity,
            )
        )

    for arm in arms:
        for h, sw in arm.get("sweeps", {}).items():
            held = {k: v for k, v in arm["best_configuration"]["params"].items() if k != h}
            note = ", ".join(f"{k}={v:.3g}" for k, v in held.items())
            out.append(
                Figure(
                    f"plot-sweep-{slug(arm['name'])}-{slug(h)}",
                    "line",
                    f"{arm['name']}: {y} vs {h}" + (f" ({note})" if note else ""),
                    h,
                    y,
                    log_x=min(sw["values"]) > 0,
                    series=[
                        {
                            "name": "mean ± seed sd",
                            "x": sw["values"],
                            "y": sw["mean"],
                            "lo": sw["lo"],
                            "hi": sw["hi"],
                        }
                    ],
                )
            )
        if arm.get("heatmap"):
            hm = arm["heatmap"]
            out.append(
                Figure(
                    f"plot-heatmap-{slug(arm['name'])}",
                    "heatmap",
                    f"{arm['name']}: seed-mean {y}, {hm['x']} x {hm['y']}",
                    hm["x"],
                    hm["y"],
                    heat=hm,
                )
            )

    if arms:
        out.append(
            Figure(
                "plot-expected-max",
                "line",
                "Expected best score after k random configurations (Tang et al. 2020)",
                "k (configurations tried)",
                y,
                log_x=True,
                series=[
                    {
                        "name": a["name"],
                        "x": a["expected_max"]["k"],
                        "y": a["expected_max"]["unbiased"],
                    }
                    for a in arms
                ],
            )
        )
    curves = [
        {
            "name": a["name"],
            "x": a["learning_curve"]["epochs"],
            "y": a["learning_curve"]["mean"],
            "lo": a["learning_curve"]["lo"],
            "hi": a["learning_curve"]["hi"],
        }
        for a in arms
        if a.get("learning_curve")
    ]
    if curves:
        out.append(
            Figure(
                "plot-learning-curves",
                "line",
                "Learning curves of each arm's best configuration (± seed sd)",
                "epoch",
                y,
                series=curves,
            )
        )
    for arm in arms:
        bs = arm.get("bound_schedule")
        if not bs:
            continue
        series = []
        for i, sched in enumerate(bs["schedules"]):
            label = f"γ={sched['gamma']:.0e}"
            series.append(
                {"name": f"{label} lower", "x": sched["steps"], "y": sched["lower"], "color": i}
            )
            series.append(
                {
                    "name": f"{label} upper",
                    "x": sched["steps"],
                    "y": sched["upper"],
                    "dash": True,
                    "color": i,
                }
            )
        out.append(
            Figure(
                f"plot-bounds-{slug(arm['name'])}",
                "line",
                f"{arm['name']}: step-size bounds, final_lr={bs['final_lr']:.3g}",
                "step",
                "bound on the step size",
                log_x=True,
                log_y=True,
                series=series,
            )
        )
    for arm in arms:
        imp = arm.get("importance") or {}
        groups = {
            label: imp[key]
            for key, label in (("fanova", "fANOVA"), ("ped_anova", "PED-ANOVA"))
            if imp.get(key)
        }
        if groups:
            out.append(
                Figure(
                    f"plot-importance-{slug(arm['name'])}",
                    "bars",
                    f"{arm['name']}: importance (seed as a factor)",
                    groups=groups,
                )
            )
    return out
