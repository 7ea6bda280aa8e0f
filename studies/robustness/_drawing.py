"""The report's figures as PNG files, drawn by matplotlib (Agg canvases, no pyplot state).

The page draws the same `Figure` descriptions as hand-written SVG (``_svg``), in milliseconds
and without importing matplotlib; the PNG files, for slides and papers, are matplotlib's.
"""

from __future__ import annotations

from pathlib import Path

from boundsweep.studies.robustness._figures import Figure, figures
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure

__all__ = ["write_pngs"]

_MARGINS = {"left": 0.12, "right": 0.97, "bottom": 0.13, "top": 0.91}


def _draw(fig: Figure) -> MplFigure:
    # Fixed margins, not a layout engine: constrained layout draws every figure twice.
    canvas_figure = MplFigure(figsize=(7, 4), dpi=100)
    canvas_figure.subplots_adjust(**_MARGINS)
    FigureCanvasAgg(canvas_figure)
    ax = canvas_figure.add_subplot()
    ax.set_title(fig.title, fontsize=10)
    if fig.kind == "heatmap":
        _heatmap(canvas_figure, ax, fig.heat)
    elif fig.kind == "bars":
        _bars(ax, fig.groups)
    else:
        _lines(ax, fig)
    ax.set_xlabel(fig.x_label or ax.get_xlabel())
    ax.set_ylabel(fig.y_label or ax.get_ylabel())
    return canvas_figure


def _heatmap(canvas_figure: MplFigure, ax, hm: dict) -> None:
    # Cells as vector quads (pcolormesh), not an embedded raster: sharp in the page's SVG.
    z = [[float("nan") if v is None else v for v in row] for row in hm["z"]]
    mesh = ax.pcolormesh(z, cmap="viridis")
    ax.set_xticks([i + 0.5 for i in range(len(hm["xs"]))], [f"{x:.3g}" for x in hm["xs"]])
    ax.set_yticks([j + 0.5 for j in range(len(hm["ys"]))], [f"{y:.3g}" for y in hm["ys"]])
    for j, row in enumerate(hm["z"]):
        for i, v in enumerate(row):
            if v is not None:
                ax.text(
                    i + 0.5, j + 0.5, f"{v:.4g}", ha="center", va="center", fontsize=7, color="w"
                )
    canvas_figure.colorbar(mesh, ax=ax)


def _bars(ax, groups: dict[str, dict[str, float]]) -> None:
    factors = sorted({f for g in groups.values() for f in g})
    width = 0.8 / len(groups)
    for g, (name, values) in enumerate(groups.items()):
        ax.barh(
            [i + g * width for i in range(len(factors))],
            [values.get(f, 0.0) for f in factors],
            height=width,
            label=name,
        )
    ax.set_yticks([i + 0.4 - width / 2 for i in range(len(factors))], factors)
    ax.set_xlabel("importance (normalised)")
    ax.legend(fontsize=8)


def _lines(ax, fig: Figure) -> None:
    for s in fig.series:
        # None (a diverged run's gap, a value a log axis cannot show) is skipped, not drawn.
        pts = [
            (x, y) for x, y in zip(s["x"], s["y"], strict=True) if x is not None and y is not None
        ]
        if not pts:
            continue
        color = f"C{s['color']}" if "color" in s else None
        line = ax.plot(
            *zip(*pts, strict=True),
            label=s["name"],
            color=color,
            linestyle="--" if s.get("dash") else "-",
            marker="." if len(pts) <= 12 else None,
        )
        if s.get("lo") and s.get("hi"):
            band = [
                (x, lo, hi)
                for x, lo, hi in zip(s["x"], s["lo"], s["hi"], strict=True)
                if None not in (x, lo, hi)
            ]
            if band:
                xs, los, his = zip(*band, strict=True)
                ax.fill_between(xs, los, his, alpha=0.2, color=line[0].get_color())
    for log, axis, set_scale in (
        (fig.log_x, ax.xaxis, ax.set_xscale),
        (fig.log_y, ax.yaxis, ax.set_yscale),
    ):
        if log:
            set_scale("log")
            _plain_log_ticks(axis)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")


def _plain_log_ticks(axis) -> None:
    # Labels as plain numbers (0.001, 3e-05) on the half-decade ladder the grids use, not
    # mathtext powers on every minor tick: the same information for a fraction of the
    # text layout, which is most of what a figure costs to draw.
    axis.set_major_locator(ticker.LogLocator(subs=(1.0, 3.0), numticks=12))
    axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def write_pngs(report: dict, out_dir: str | Path) -> list[Path]:
    """Write one PNG per figure into ``out_dir`` (created if missing); return the paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fig in figures(report):
        path = folder / f"{fig.id}.png"
        _draw(fig).savefig(path)
        paths.append(path)
    return paths
