"""`write_pngs`: the report's figures as PNG files (matplotlib, Agg, no pyplot state)."""

from __future__ import annotations

from pathlib import Path

from boundsweep.studies.robustness._figures import Figure, figures
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure


def _draw(fig: Figure) -> MplFigure:
    canvas_figure = MplFigure(figsize=(7, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(canvas_figure)
    ax = canvas_figure.add_subplot()
    ax.set_title(fig.title, fontsize=10)
    if fig.kind == "heatmap":
        hm = fig.heat
        z = [[float("nan") if v is None else v for v in row] for row in hm["z"]]
        image = ax.imshow(z, origin="lower", aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(hm["xs"])), [f"{x:.3g}" for x in hm["xs"]])
        ax.set_yticks(range(len(hm["ys"])), [f"{y:.3g}" for y in hm["ys"]])
        for j, row in enumerate(hm["z"]):
            for i, v in enumerate(row):
                if v is not None:
                    ax.text(i, j, f"{v:.4g}", ha="center", va="center", fontsize=7, color="w")
        canvas_figure.colorbar(image, ax=ax)
    elif fig.kind == "bars":
        factors = sorted({f for g in fig.groups.values() for f in g})
        width = 0.8 / len(fig.groups)
        for g, (name, values) in enumerate(fig.groups.items()):
            ax.barh(
                [i + g * width for i in range(len(factors))],
                [values.get(f, 0.0) for f in factors],
                height=width,
                label=name,
            )
        ax.set_yticks([i + 0.4 - width / 2 for i in range(len(factors))], factors)
        ax.set_xlabel("importance (normalised)")
        ax.legend(fontsize=8)
    else:
        for s in fig.series:
            pts = [
                (x, y)
                for x, y in zip(s["x"], s["y"], strict=True)
                if x is not None and y is not None
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
        if fig.log_x:
            ax.set_xscale("log")
        if fig.log_y:
            ax.set_yscale("log")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    ax.set_xlabel(fig.x_label or ax.get_xlabel())
    ax.set_ylabel(fig.y_label or ax.get_ylabel())
    return canvas_figure


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
