"""`summary_lines`: the verdicts in words, for the CLI and the demo to print."""

from __future__ import annotations


def summary_lines(report: dict) -> list[str]:
    """A header naming the campaign, one line per claim, then how the claims were decided."""
    n = sum(a["n_complete"] for a in report["arms"])
    lines = [
        f"{report['campaign']} ({report.get('task')}, {report['metric']} {report['metric_name']}, "
        f"{n} completed trials in {len(report['arms'])} arms)"
    ]
    lines += [v["sentence"] for v in report["verdicts"]]
    lines += [t["sentence"] for t in report.get("tuning", [])]
    lines += [d["sentence"] for d in report["dynamics"]]
    family = report.get("family")
    if family and family["claims"]:
        lines.append(
            f"family: {family['decisive']} of {family['claims']} tested claims decisive under weighted "
            f"{family['method']}'s family-wise control at {family['alpha']:g}; intervals are 95% "
            f"per claim; a decisive verdict needs {report.get('min_seeds')}+ seeds."
        )
    published = report.get("published") or {}
    lines += [f"published: {r['line']}" for r in published.get("rows", [])]
    lines += [f"caveat: {c}" for c in report.get("caveats", [])]
    return lines
