"""`summary_lines`: the verdicts in words, for the CLI and the demo to print."""

from __future__ import annotations


def summary_lines(report: dict) -> list[str]:
    """One line per verdict and dynamics claim, after a header line naming the campaign."""
    n = sum(a["n_complete"] for a in report["arms"])
    lines = [
        f"{report['campaign']} ({report.get('task')}, {report['metric']} {report['metric_name']}, "
        f"{n} completed trials in {len(report['arms'])} arms)"
    ]
    lines += [v["sentence"] for v in report["verdicts"]]
    lines += [d["sentence"] for d in report["dynamics"]]
    published = report.get("published") or {}
    lines += [f"published: {r['line']}" for r in published.get("rows", [])]
    lines += [f"caveat: {c}" for c in report.get("caveats", [])]
    return lines
