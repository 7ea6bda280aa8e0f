"""The report's figures as hand-written SVG: the page draws each in about a millisecond.

matplotlib drew them before, and its import and layout were a third of every page's time
(issue 19: 19 figures, seconds). The figures are simple (lines with seed bands, a grid of
cells, bars), so they are written here as SVG elements: axes with ticks and light grid lines, a
legend under the plot, and a title shrunk or wrapped to fit. Nothing refers to an id, so
figures never collide on one page, and the same figure gives the same bytes.

Text widths are estimated (``_CHAR_EM`` per character), generously, to lay out margins and
to thin tick labels that would touch; the browser test measures the real boxes.
"""

from __future__ import annotations

import math
from html import escape

from boundsweep.studies.robustness._figures import Figure

__all__ = ["svg"]

WIDTH, HEIGHT = 560, 340
"""One figure's size in CSS pixels: two fit side by side on the page (max width 1140)."""
# matplotlib's tab10 colours, so the PNG files and the page use the same ones.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
# viridis at nine evenly spaced points, interpolated in between.
_VIRIDIS = (
    (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
    (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
)  # fmt: skip
_CHAR_EM = 0.62  # a generous average character width of a sans-serif font, in em
_TICK, _LABEL, _TITLE = 10, 11, 13  # font sizes
_PAD = 8
_LEGEND_ROW = 16


def _width(text: str, size: float) -> float:
    return len(text) * size * _CHAR_EM


class _Scale:
    """Data to pixels along one axis, linear or log10, with its ticks and their labels."""

    def __init__(self, values: list[float], px0: float, px1: float, log: bool, pad: float) -> None:
        finite = [v for v in values if v is not None and math.isfinite(v) and (not log or v > 0)]
        t = [math.log10(v) for v in finite] if log else finite
        lo, hi = (min(t), max(t)) if t else (0.0, 1.0)
        if hi - lo < 1e-12:
            half = 0.5 if log else max(abs(lo) * 0.05, 0.5)
            lo, hi = lo - half, hi + half
        self.lo, self.hi = lo - pad * (hi - lo), hi + pad * (hi - lo)
        self.px0, self.px1, self.log = px0, px1, log

    def __call__(self, v: float) -> float:
        t = math.log10(v) if self.log else v
        return self.px0 + (t - self.lo) / (self.hi - self.lo) * (self.px1 - self.px0)

    def shows(self, v: float | None) -> bool:
        return v is not None and math.isfinite(v) and (not self.log or v > 0)

    def ticks(self) -> list[tuple[float, str]]:
        """Tick values in range and their labels: 1-2-5 steps, or decades (and 3s, or 2s, 3s and
        5s, the shorter the axis) on a log axis."""
        if self.log:
            span = self.hi - self.lo
            every = max(1, math.ceil(span / 8))
            mantissas = (1.0, 2.0, 3.0, 5.0) if span < 1.2 else (1.0, 3.0) if span < 2.5 else (1.0,)
            return [
                (m * 10.0**e, f"{m * 10.0**e:g}")
                for e in range(math.floor(self.lo), math.ceil(self.hi) + 1)
                if e % every == 0
                for m in mantissas
                if self.lo <= math.log10(m * 10.0**e) <= self.hi
            ]
        raw = (self.hi - self.lo) / 5
        power = 10.0 ** math.floor(math.log10(raw))
        step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
        decimals = max(0, -math.floor(math.log10(step) + 1e-9) + (1 if step / power == 2.5 else 0))
        first = math.ceil(self.lo / step - 1e-9)
        values = [k * step for k in range(first, math.floor(self.hi / step + 1e-9) + 1)]
        big = max(abs(v) for v in values) >= 1e5
        return [(v, f"{v:.3g}" if big else f"{v + 0.0:.{decimals}f}") for v in values]


def _thinned(ticks: list[tuple[float, str]], scale: _Scale, size: float) -> list[tuple[float, str]]:
    """Every other label dropped until neighbours along a horizontal axis no longer touch."""
    labelled = ticks
    while len(labelled) > 2 and any(
        abs(scale(b) - scale(a)) < (_width(la, size) + _width(lb, size)) / 2 + 6
        for (a, la), (b, lb) in zip(labelled, labelled[1:], strict=False)
    ):
        labelled = labelled[::2]
    return labelled


def _text(
    x: float, y: float, text: str, size: float = _TICK, anchor: str = "middle", **attrs
) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{escape(text)}</text>"
    )


def _title(title: str) -> tuple[list[str], float]:
    """The title, shrunk to fit the width (down to 10 px), else on two lines (each cut short
    with an ellipsis if it still does not fit); its height."""
    room = WIDTH - 2 * _PAD
    size = _TITLE
    while size > 10 and _width(title, size) > room:
        size -= 1
    lines = [title]
    if _width(title, size) > room:
        spaces = [i for i, c in enumerate(title) if c == " "]
        cut = min(spaces, key=lambda i: abs(i - len(title) / 2)) if spaces else len(title) // 2
        lines = [title[:cut], title[cut:].strip()]
    fitting = int(room / (size * _CHAR_EM))
    lines = [line if len(line) <= fitting else line[: fitting - 1] + "…" for line in lines]
    out = [
        _text(WIDTH / 2, 18 + i * (size + 3), line, size, font_weight="600")
        for i, line in enumerate(lines)
    ]
    return out, 18 + len(lines) * (size + 3)


def _legend(entries: list[tuple[str, str, bool, str]], top: float) -> tuple[list[str], float]:
    """Entries (name, colour, dashed, "line" | "box") in rows under the plot; its height."""
    out, x, y = [], _PAD + 4.0, top + 10
    for name, color, dashed, mark in entries:
        w = 24 + _width(name, _TICK) + 14
        if x + w > WIDTH - _PAD and x > _PAD + 4:
            x, y = _PAD + 4.0, y + _LEGEND_ROW
        if mark == "box":
            out.append(f'<rect x="{x:.1f}" y="{y - 5:.1f}" width="16" height="10" fill="{color}"/>')
        else:
            dash = ' stroke-dasharray="5 3"' if dashed else ""
            out.append(f'<path d="M{x:.1f} {y:.1f}h18" stroke="{color}" stroke-width="2"{dash}/>')
        out.append(_text(x + 24, y + 3.5, name, _TICK, "start"))
        x += w
    return out, (y - top + _LEGEND_ROW) if entries else 0.0


def _frame(fig: Figure, height: float, body: list[str]) -> str:
    return (
        f'<svg id="{escape(fig.id)}" data-plot="{escape(fig.kind)}" class="plot" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" font-family="sans-serif">'
        f"<title>{escape(fig.title)}</title>" + "".join(body) + "</svg>"
    )


def _axes(
    x: _Scale, y: _Scale, fig: Figure, x_ticks: list[tuple[float, str]] | None = None
) -> list[str]:
    """Frame, grid lines, ticks, tick labels and axis labels of a plot area."""
    left, right, bottom, top = x.px0, x.px1, y.px0, y.px1
    out = []
    for v, label in y.ticks():
        py = y(v)
        out.append(f'<path d="M{left:.1f} {py:.1f}H{right:.1f}" stroke="#e6e6e6"/>')
        out.append(f'<path d="M{left - 4:.1f} {py:.1f}h4" stroke="#444"/>')
        out.append(_text(left - 7, py + 3.5, label, _TICK, "end"))
    ticks = x.ticks() if x_ticks is None else x_ticks
    labelled = {v for v, _ in _thinned(ticks, x, _TICK)}
    for v, label in ticks:
        px = x(v)
        out.append(f'<path d="M{px:.1f} {top:.1f}V{bottom:.1f}" stroke="#e6e6e6"/>')
        out.append(f'<path d="M{px:.1f} {bottom:.1f}v4" stroke="#444"/>')
        if v in labelled:
            out.append(_text(px, bottom + 16, label))
    out.append(
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" '
        f'height="{bottom - top:.1f}" fill="none" stroke="#444"/>'
    )
    out.append(_text((left + right) / 2, bottom + 33, fig.x_label, _LABEL))
    out.append(
        f'<text transform="translate(14 {(top + bottom) / 2:.1f}) rotate(-90)" '
        f'font-size="{_LABEL}" text-anchor="middle">{escape(fig.y_label)}</text>'
    )
    return out


def _left_margin(labels: list[str]) -> float:
    return 24 + max((_width(label, _TICK) for label in labels), default=20) + 10


def _lines(fig: Figure) -> str:
    title, top = _title(fig.title)
    shown = [s for s in fig.series if any(v is not None for v in s["y"])]
    entries = [
        (str(s["name"]), _colour(s, i), bool(s.get("dash")), "line") for i, s in enumerate(shown)
    ]
    legend_height = _legend(entries, 0)[1]
    bottom = HEIGHT - 44 - legend_height
    xs = [v for s in shown for v in s["x"]]
    ys = [v for s in shown for key in ("y", "lo", "hi") for v in (s.get(key) or [])]
    y = _Scale(ys, bottom, top + 6, fig.log_y, 0.03 if fig.log_y else 0.05)
    left = _left_margin([label for _, label in y.ticks()])
    x = _Scale(xs, left, WIDTH - 18, fig.log_x, 0.03)
    body = [*title, *_axes(x, y, fig)]
    for i, s in enumerate(shown):
        band = [
            (a, lo, hi)
            for a, lo, hi in zip(s["x"], s.get("lo") or [], s.get("hi") or [], strict=False)
            if x.shows(a) and y.shows(lo) and y.shows(hi)
        ]
        if len(band) > 1:
            outline = [(x(a), y(hi)) for a, _, hi in band] + [
                (x(a), y(lo)) for a, lo, _ in band[::-1]
            ]
            body.append(f'<path d="{_path(outline)}Z" fill="{_colour(s, i)}" fill-opacity="0.2"/>')
    for i, s in enumerate(shown):
        points = [
            (x(a), y(b)) for a, b in zip(s["x"], s["y"], strict=True) if x.shows(a) and y.shows(b)
        ]
        colour = _colour(s, i)
        dash = ' stroke-dasharray="5 3"' if s.get("dash") else ""
        if len(points) > 1:
            body.append(
                f'<path d="{_path(points)}" fill="none" stroke="{colour}" stroke-width="1.8"{dash}/>'
            )
        if len(points) <= 12:
            body.extend(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.6" fill="{colour}"/>'
                for px, py in points
            )
    body += _legend(entries, bottom + 40)[0]
    return _frame(fig, HEIGHT, body)


def _colour(series: dict, index: int) -> str:
    return PALETTE[series.get("color", index) % len(PALETTE)]


def _path(points: list[tuple[float, float]]) -> str:
    return "M" + "L".join(f"{px:.1f} {py:.1f}" for px, py in points)


def _viridis(t: float) -> tuple[int, int, int]:
    t = min(max(t, 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(t), len(_VIRIDIS) - 2)
    f = t - i
    return tuple(round(a + (b - a) * f) for a, b in zip(_VIRIDIS[i], _VIRIDIS[i + 1], strict=True))


def _hex(rgb: tuple[int, ...]) -> str:
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _heatmap(fig: Figure) -> str:
    hm = fig.heat or {}
    xs, ys, z = hm["xs"], hm["ys"], hm["z"]
    values = [v for row in z for v in row if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    title, top = _title(fig.title)
    y_labels = [f"{v:.3g}" for v in ys]
    left, right, bottom = _left_margin(y_labels), WIDTH - 92, HEIGHT - 44
    cw, ch = (right - left) / len(xs), (bottom - top - 6) / len(ys)
    body = list(title)
    for j, row in enumerate(z):
        for i, v in enumerate(row):
            px, py = left + i * cw, bottom - (j + 1) * ch
            share = (v - lo) / (hi - lo) if v is not None and hi > lo else 0.5
            rgb = (221, 221, 221) if v is None else _viridis(share)
            tip = "no trial" if v is None else f"{v:.4g}"
            body.append(
                f'<rect x="{px:.1f}" y="{py:.1f}" width="{cw:.1f}" height="{ch:.1f}" '
                f'fill="{_hex(rgb)}" stroke="#fff"><title>{escape(fig.x_label)} {xs[i]:.3g}, '
                f"{escape(fig.y_label)} {ys[j]:.3g}: {tip}</title></rect>"
            )
            # The value in its cell where it fits (the colour bar and the tooltip say it anyway).
            if v is not None and ch > 14 and _width(f"{v:.4g}", 10) + 4 < cw:
                ink = "#000" if 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140 else "#fff"
                body.append(_text(px + cw / 2, py + ch / 2 + 3.5, f"{v:.4g}", 10, fill=ink))
    for j, label in enumerate(y_labels):
        body.append(_text(left - 7, bottom - (j + 0.5) * ch + 3.5, label, _TICK, "end"))
    x = _Scale([0.0, 1.0], left, right, False, 0.0)
    x_ticks = [((i + 0.5) / len(xs), f"{v:.3g}") for i, v in enumerate(xs)]
    for v, label in _thinned(x_ticks, x, _TICK):
        body.append(_text(x(v), bottom + 16, label))
    body.append(_text((left + right) / 2, bottom + 33, fig.x_label, _LABEL))
    body.append(
        f'<text transform="translate(14 {(top + bottom) / 2:.1f}) rotate(-90)" '
        f'font-size="{_LABEL}" text-anchor="middle">{escape(fig.y_label)}</text>'
    )
    body += _colour_bar(lo, hi, right + 16, top + 6, bottom)
    return _frame(fig, HEIGHT, body)


def _colour_bar(lo: float, hi: float, left: float, top: float, bottom: float) -> list[str]:
    """A vertical scale of the colours, low at the bottom, with tick labels on its right."""
    steps = 48
    h = (bottom - top) / steps
    out = [
        f'<rect x="{left:.1f}" y="{bottom - (k + 1) * h:.2f}" width="14" height="{h + 0.3:.2f}" '
        f'fill="{_hex(_viridis((k + 0.5) / steps))}"/>'
        for k in range(steps)
    ]
    out.append(
        f'<rect x="{left:.1f}" y="{top:.1f}" width="14" height="{bottom - top:.1f}" '
        'fill="none" stroke="#444"/>'
    )
    scale = _Scale([lo, hi], bottom, top, False, 0.0)
    for v, label in scale.ticks():
        out.append(f'<path d="M{left + 14:.1f} {scale(v):.1f}h4" stroke="#444"/>')
        out.append(_text(left + 21, scale(v) + 3.5, label, _TICK, "start"))
    return out


def _bars(fig: Figure) -> str:
    groups = fig.groups or {}
    factors = sorted(
        {f for g in groups.values() for f in g},
        key=lambda f: (-max(g.get(f, 0.0) for g in groups.values()), f),
    )
    title, top = _title(fig.title)
    entries = [(name, PALETTE[g % len(PALETTE)], False, "box") for g, name in enumerate(groups)]
    legend_height = _legend(entries, 0)[1]
    row = 14 * len(groups) + 12
    bottom = top + 6 + max(row * len(factors), 120)
    height = bottom + 40 + legend_height + 4
    left = _left_margin(factors)
    peak = max([v for g in groups.values() for v in g.values()] + [1e-12])
    x = _Scale([0.0, min(1.0, peak * 1.15)], left, WIDTH - 36, False, 0.0)
    y = _Scale([0.0, 1.0], bottom, top + 6, False, 0.0)
    fig_x = Figure(fig.id, fig.kind, fig.title, "importance (normalised to sum to one)", "")
    body = [*title, *_axes(x, _NoTicks(y), fig_x)]
    band = (bottom - top - 6) / max(len(factors), 1)
    for r, factor in enumerate(factors):
        y0 = top + 6 + r * band + (band - 14 * len(groups)) / 2
        body.append(_text(left - 7, y0 + 7 * len(groups) + 3.5, factor, _TICK, "end"))
        for g, (name, values) in enumerate(groups.items()):
            v = values.get(factor, 0.0)
            w = x(v) - left
            body.append(
                f'<rect x="{left:.1f}" y="{y0 + 14 * g:.1f}" width="{w:.1f}" height="12" '
                f'fill="{PALETTE[g % len(PALETTE)]}"><title>{escape(name)} {escape(factor)}: '
                f"{v:.3f}</title></rect>"
            )
            body.append(_text(left + w + 4, y0 + 14 * g + 10, f"{v:.2f}", 9, "start"))
    body += _legend(entries, bottom + 40)[0]
    return _frame(fig, height, body)


class _NoTicks(_Scale):
    """A vertical extent without ticks (the bars' factor axis labels itself)."""

    def __init__(self, scale: _Scale) -> None:
        self.__dict__.update(scale.__dict__)

    def ticks(self) -> list[tuple[float, str]]:
        return []


def svg(fig: Figure) -> str:
    """The figure as one inline ``<svg>`` with the figure's id, its kind and a ``<title>``."""
    if fig.kind == "heatmap":
        return _heatmap(fig)
    if fig.kind == "bars":
        return _bars(fig)
    return _lines(fig)
