"""`render_html`: the report as one self-contained page (SVG figures and CSS inline, no scripts)."""

from __future__ import annotations

from html import escape

from boundsweep.studies.robustness._figures import figures
from boundsweep.studies.robustness._svg import svg

_CSS = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:1140px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.supported{background:#e3f6e3}.not-supported{background:#fbe3e3}
.inconclusive{background:#fff6da}.plots{display:flex;flex-wrap:wrap;gap:12px}
.plot{border:1px solid #eee;background:#fff}.note{color:#555;font-size:13px}
"""


def _num(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f" [{_num(ci[0])}, {_num(ci[1])}]"


def _verdict_rows(report: dict) -> str:
    rows = []
    for v in report["verdicts"]:
        cls = v["outcome"].replace(" ", "-")
        spread = v.get("spread")
        ratio = v.get("ratio")
        rows.append(
            f'<tr class="{cls}"><td>{escape(v["arm"])}</td><td>{escape(v["hyperparameter"])}</td>'
            f"<td>{escape(v['outcome'])}</td>"
            f"<td>{_num(spread['value']) + _ci(spread['ci']) if spread else '–'}</td>"
            f"<td>{escape(v.get('reference') or '–')}</td>"
            f"<td>{_num(ratio['value'], 3) + _ci(ratio['ci']) if ratio else '–'}</td>"
            f"<td>{escape(v['sentence'])}</td></tr>"
        )
    for t in report.get("tuning", []):
        cls = t["outcome"].replace(" ", "-")
        gain = t.get("gain")
        rows.append(
            f'<tr class="{cls}"><td>{escape(t["arm"])}</td><td>tuning gain of {escape(t["hyperparameter"])}</td>'
            f"<td>{escape(t['outcome'])}</td><td>{_num(gain['value']) + _ci(gain['ci']) if gain else '–'}</td>"
            f"<td>default {t['default']:g}</td><td>–</td><td>{escape(t['sentence'])}</td></tr>"
        )
    for d in report["dynamics"]:
        cls = d["outcome"].replace(" ", "-")
        diff = d.get("difference")
        rows.append(
            f'<tr class="{cls}"><td>{escape(d["arm"])}</td><td>{escape(d["phase"])} vs {escape(d["reference"])}</td>'
            f"<td>{escape(d['outcome'])}</td><td>{_num(diff['value']) + _ci(diff['ci']) if diff else '–'}</td>"
            f"<td>{escape(d['reference'])}</td><td>–</td><td>{escape(d['sentence'])}</td></tr>"
        )
    head = "<tr><th>arm</th><th>claim</th><th>outcome</th><th>spread / advantage [95% CI]</th><th>against</th><th>ratio [95% CI]</th><th>in words</th></tr>"
    return f'<table id="table-verdicts">{head}{"".join(rows)}</table>'


def _arm_rows(report: dict) -> str:
    head = (
        "<tr><th>arm</th><th>trials (complete / diverged)</th><th>configs</th><th>best</th><th>median</th>"
        "<th>worst</th><th>IQR [95% CI]</th><th>robust region</th><th>seed sd (median)</th>"
        "<th>one-shot</th><th>CPE</th><th>CPL</th><th>peak</th></tr>"
    )
    rows = []
    for a in report["arms"]:
        s, t = a.get("summary"), a.get("tunability") or {}
        if not s:
            rows.append(
                f"<tr><td>{escape(a['name'])}</td><td>{a['n_trials']} (0 complete)</td>"
                + "<td>–</td>" * 11
                + "</tr>"
            )
            continue
        rr = s["robust_region"]
        rows.append(
            f"<tr><td>{escape(a['name'])}</td><td>{a['n_trials']} ({a['n_complete']} / {a['n_diverged']})</td>"
            f"<td>{a['n_configurations']}</td><td>{_num(s['best'])}</td><td>{_num(s['median'])}</td>"
            f"<td>{_num(s['worst'])}</td><td>{_num(s['iqr'])}{_ci(s['iqr_ci'])}</td>"
            f"<td>{rr['count']}/{a['n_configurations']} ({rr['fraction']:.0%}) within {_num(rr['delta'])}</td>"
            f"<td>{_num(s['seed_sd']['median'])}</td><td>{_num(t.get('one_shot'))}</td><td>{_num(t.get('cpe'))}</td>"
            f"<td>{_num(t.get('cpl'))}</td><td>{_num(t.get('peak'))}</td></tr>"
        )
    return f'<table id="table-arms">{head}{"".join(rows)}</table>'


def _elsewhere(report: dict) -> str:
    """The verdict's spread cut through the other grid values, one row per verdict."""
    rows = []
    for v in report["verdicts"]:
        cells = []
        for e in v.get("spread_elsewhere", []):
            other = next(k for k in e if k not in ("spread", "values"))
            cells.append(f"{escape(other)} {e[other]:.3g}: {e['spread']:.2f}")
        if cells:
            rows.append(
                f"<tr><td>{escape(v['arm'])}</td><td>{escape(v['hyperparameter'])}</td>"
                f"<td>{'; '.join(cells)}</td></tr>"
            )
    if not rows:
        return ""
    head = "<tr><th>arm</th><th>spread over</th><th>spread with the other hyperparameter held elsewhere</th></tr>"
    return f'<table id="table-spread-elsewhere">{head}{"".join(rows)}</table>'


def _caveat_list(report: dict) -> str:
    items = "".join(f"<li>{escape(c)}</li>" for c in report.get("caveats", []))
    return f'<h2>Caveats</h2><ul id="caveats">{items}</ul>' if items else ""


def render_html(report: dict) -> str:
    """The report as one HTML page that needs no network: inline SVG figures, inline CSS.

    Args:
        report: the dict `analyze_campaign` returns.
    """
    title = f"boundsweep report — {report['campaign']}"
    figs = figures(report)
    published = report.get("published") or {}
    pub = "".join(f"<li>{escape(r['line'])}</li>" for r in published.get("rows", []))
    pub_html = (
        f'<h2>Published figures</h2><ul id="published">{pub}</ul><p class="note">Source: {escape(published["source"])} '
        f"({escape(published['note'])}).</p>"
        if pub
        else ""
    )
    context = "".join(f"<li>{escape(c)}</li>" for c in report.get("context", []))
    k = next((a["tunability"]["budget"] for a in report["arms"] if a.get("tunability")), 0)
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>Task <b>{escape(str(report.get('task')))}</b> · metric: {escape(report['metric'])} "
        f"{escape(report['metric_name'])} ({escape(report['direction'])}) · seeds {escape(str(report.get('seeds')))} · "
        f"robust-region delta {report['delta']:g} ({escape(report['delta_kind'])}) · generated {escape(report['generated_at'])}</p>",
        "<h2>Verdict</h2>",
        _verdict_rows(report),
        '<p class="note">Spreads are best − worst of the seed-averaged metric over a sweep, other '
        "hyperparameters held at the arm's best; baselines over the same number of learning rates centred on "
        "their best; each arm's best configuration chosen on other seeds than it is scored on. Intervals: 95% "
        "t intervals per claim; outcomes under Holm's family-wise control over the report's claims. "
        "Method: docs/report.md.</p>",
        _elsewhere(report),
        _caveat_list(report),
        pub_html,
        "<h2>Arms</h2>",
        _arm_rows(report),
        f'<p class="note">Tunability (Sivaprasad et al. 2020) over a common budget of K={k} configurations.</p>',
        '<h2>Figures</h2><div class="plots">',
        *(svg(f) for f in figs),
        "</div>",
        f'<h2>Independent re-runs</h2><ul id="context">{context}</ul>',
        "</body></html>",
    ]
    return "".join(parts)
