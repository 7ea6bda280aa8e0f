"""Small hand-written SVG charts: the report page must open with no network and no scripts.

Each chart is one `<svg>` with an ``id`` and a ``data-plot`` kind so a browser test can find
it. Values that are None (a missing grid cell, a diverged run's gap) are skipped, not drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
WIDTH, HEIGHT = 520, 300
LEFT, RIGHT, TOP, BOTTOM = 62, 120, 30, 44


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-2:
        return f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")
    return f"{v:.3g}"


class _Axis:
    """Maps data to pixels, linear or log10."""

    def __init__(self, values: Sequence[float], lo_px: float, hi_px: float, log: bool) -> None:
        finite = [v for v in values if v is not None and math.isfinite(v) and (not log or v > 0)]
        self.log = log
        t = [math.log10(v) for v in finite] if log else list(finite)
        a, b = (min(t), max(t)) if t else (0.0, 1.0)
        if a == b:
            a, b = a - 0.5, b + 0.5
        pad = 0.0 if log else (b - a) * 0.05
        self.a, self.b = a - pad, b + pad
        self.lo_px, self.hi_px = lo_px, hi_px

    def __call__(self, v: float) -> float:
        t = math.log10(v) if self.log else v
        return self.lo_px + (t - self.a) / (self.b - self.a) * (self.hi_px - self.lo_px)

    def ticks(self) -> list[float]:
        if self.log:
            decades = range(math.floor(self.a), math.floor(self.b + 1e-9) + 1)
            # Under two decades, label the half-decade steps (1, 3) too, as the grids use them.
            mantissas = (1.0,) if self.b - self.a >= 2 else (1.0, 3.0)
            return [
                m * 10.0**e
                for e in decades
                for m in mantissas
                if self.a - 1e-9 <= math.log10(m * 10.0**e) <= self.b + 1e-9
            ]
        span = self.b - self.a
        step = 10 ** math.floor(math.log10(span / 5))
        for m in (1, 2, 5, 10):
            if span / (step * m) <= 6:
                step *= m
                break
        start = math.ceil(self.a / step) * step
        return [start + i * step for i in range(int((self.b - start) / step) + 1)]


def _frame(
    plot_id: str, kind: str, title: str, body: list[str], width: int = WIDTH, height: int = HEIGHT
) -> str:
    return (
        f'<svg id="{escape(plot_id)}" data-plot="{escape(kind)}" class="plot" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>"
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">'
        f"{escape(title)}</text>" + "".join(body) + "</svg>"
    )


def _axes(xa: _Axis, ya: _Axis, x_label: str, y_label: str) -> list[str]:
    x0, x1 = xa.lo_px, xa.hi_px
    y0, y1 = ya.lo_px, ya.hi_px
    out = [
        f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#888"/>'
    ]
    for t in xa.ticks():
        px = xa(t)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y0}" y2="{y0 + 4}" stroke="#888"/>')
        out.append(f'<text x="{px:.1f}" y="{y0 + 15}" text-anchor="middle">{_fmt(t)}</text>')
    for t in ya.ticks():
        py = ya(t)
        out.append(f'<line x1="{x0 - 4}" x2="{x1}" y1="{py:.1f}" y2="{py:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 - 6}" y="{py + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    out.append(
        f'<text x="{(x0 + x1) / 2}" y="{y0 + 32}" text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text transform="translate(14 {(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    return out


def _path(points: list[tuple[float, float]]) -> str:
    return "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)


def line_chart(
    plot_id: str,
    title: str,
    series: list[dict],
    x_label: str,
    y_label: str,
    *,
    log_x: bool = False,
    log_y: bool = False,
) -> str:
    """Lines with optional bands. Each series: name, x, y, and optionally lo, hi, dash."""
    xs = [x for s in series for x in s["x"]]
    ys = [y for s in series for key in ("y", "lo", "hi") for y in (s.get(key) or [])]
    xa = _Axis(xs, LEFT, WIDTH - RIGHT, log_x)
    ya = _Axis(ys, HEIGHT - BOTTOM, TOP, log_y)
    body = _axes(xa, ya, x_label, y_label)

    def ok(v: float | None, log: bool) -> bool:
        return v is not None and math.isfinite(v) and (not log or v > 0)

    for i, s in enumerate(series):
        color = PALETTE[s.get("color", i) % len(PALETTE)]
        if s.get("lo") and s.get("hi"):
            band = [
                (x, lo, hi)
                for x, lo, hi in zip(s["x"], s["lo"], s["hi"], strict=True)
                if ok(x, log_x) and ok(lo, log_y) and ok(hi, log_y)
            ]
            if len(band) > 1:
                upper = [(xa(x), ya(hi)) for x, _, hi in band]
                lower = [(xa(x), ya(lo)) for x, lo, _ in reversed(band)]
                body.append(
                    f'<path d="{_path(upper + lower)} Z" fill="{color}" fill-opacity="0.18" stroke="none"/>'
                )
        pts = [
            (xa(x), ya(y))
            for x, y in zip(s["x"], s["y"], strict=True)
            if ok(x, log_x) and ok(y, log_y)
        ]
        dash = ' stroke-dasharray="5,3"' if s.get("dash") else ""
        if len(pts) > 1:
            body.append(
                f'<path d="{_path(pts)}" fill="none" stroke="{color}" stroke-width="1.8"{dash}/>'
            )
        if len(pts) <= 12:
            body.extend(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>' for x, y in pts
            )
        ly = TOP + 8 + 16 * i
        lx = WIDTH - RIGHT + 8
        body.append(
            f'<line x1="{lx}" x2="{lx + 16}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/>'
        )
        body.append(f'<text x="{lx + 20}" y="{ly + 4}">{escape(str(s["name"]))[:18]}</text>')
    return _frame(plot_id, "line", title, body)


def _color(t: float) -> str:
    """A perceptually ordered ramp (dark blue -> teal -> yellow) for t in [0, 1]."""
    stops = [(0.0, (68, 1, 84)), (0.5, (33, 145, 140)), (1.0, (253, 231, 37))]
    t = min(max(t, 0.0), 1.0)
    for (t0, c0), (t1, c1) in zip(stops, stops[1:], strict=False):
        if t <= t1:
            f = (t - t0) / (t1 - t0)
            return "#" + "".join(
                f"{round(a + (b - a) * f):02x}" for a, b in zip(c0, c1, strict=True)
            )
    return "#fde725"


def heatmap(
    plot_id: str,
    title: str,
    xs: list[float],
    ys: list[float],
    z: list[list[float | None]],
    x_label: str,
    y_label: str,
) -> str:
    """A grid of cells coloured by value (brighter = higher), each labelled with its value."""
    values = [v for row in z for v in row if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    x0, x1, y0, y1 = LEFT + 10, WIDTH - 40, HEIGHT - BOTTOM, TOP
    cw, ch = (x1 - x0) / len(xs), (y0 - y1) / len(ys)
    body = []
    for j, row in enumerate(z):
        for i, v in enumerate(row):
            x, y = x0 + i * cw, y0 - (j + 1) * ch
            fill = "#ddd" if v is None else _color((v - lo) / (hi - lo) if hi > lo else 0.5)
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cw:.1f}" height="{ch:.1f}" fill="{fill}" stroke="#fff"/>'
            )
            if v is not None:
                ink = "#000" if hi > lo and (v - lo) / (hi - lo) > 0.6 else "#fff"
                body.append(
                    f'<text x="{x + cw / 2:.1f}" y="{y + ch / 2 + 4:.1f}" text-anchor="middle" fill="{ink}">{v:.4g}</text>'
                )
    for i, x in enumerate(xs):
        body.append(
            f'<text x="{x0 + (i + 0.5) * cw:.1f}" y="{y0 + 15}" text-anchor="middle">{_fmt(x)}</text>'
        )
    for j, y in enumerate(ys):
        body.append(
            f'<text x="{x0 - 6}" y="{y0 - (j + 0.5) * ch + 4:.1f}" text-anchor="end">{_fmt(y)}</text>'
        )
    body.append(
        f'<text x="{(x0 + x1) / 2}" y="{y0 + 32}" text-anchor="middle">{escape(x_label)}</text>'
    )
    body.append(
        f'<text transform="translate(14 {(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>'
    )
    return _frame(plot_id, "heatmap", title, body)


def bar_chart(plot_id: str, title: str, groups: dict[str, dict[str, float]]) -> str:
    """Horizontal bars: one row per factor, one bar per group (e.g. fANOVA, PED-ANOVA)."""
    factors = sorted(
        {f for g in groups.values() for f in g},
        key=lambda f: -max(g.get(f, 0.0) for g in groups.values()),
    )
    n = max(len(factors), 1)
    height = max(HEIGHT // 2, TOP + 30 * n + 30)
    x0, x1 = LEFT + 30, WIDTH - RIGHT
    peak = max([v for g in groups.values() for v in g.values()] + [1e-12])
    body = []
    bar_h = 22 / max(len(groups), 1)
    for r, factor in enumerate(factors):
        y = TOP + 10 + 30 * r
        body.append(f'<text x="{x0 - 6}" y="{y + 15}" text-anchor="end">{escape(factor)}</text>')
        for g, (name, values) in enumerate(groups.items()):
            v = values.get(factor, 0.0)
            w = (x1 - x0) * v / peak
            body.append(
                f'<rect x="{x0}" y="{y + g * bar_h:.1f}" width="{w:.1f}" height="{bar_h - 1:.1f}" fill="{PALETTE[g % len(PALETTE)]}"><title>{escape(name)} {escape(factor)}: {v:.3f}</title></rect>'
            )
            body.append(
                f'<text x="{x0 + w + 4:.1f}" y="{y + g * bar_h + bar_h - 3:.1f}" font-size="9">{v:.2f}</text>'
            )
    for g, name in enumerate(groups):
        ly = TOP + 8 + 16 * g
        body.append(
            f'<rect x="{WIDTH - RIGHT + 30}" y="{ly - 6}" width="12" height="10" fill="{PALETTE[g % len(PALETTE)]}"/>'
        )
        body.append(f'<text x="{WIDTH - RIGHT + 46}" y="{ly + 3}">{escape(name)}</text>')
    return _frame(plot_id, "bars", title, body, height=height)
