"""The report page and PNGs: every figure present, the page self-contained and viewable offline."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from boundsweep.studies.robustness import analyze_campaign, render_html, write_pngs
from boundsweep.studies.robustness._synthetic import build_synthetic_campaign


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'c.db'}"
    build_synthetic_campaign(
        url,
        "paper-robustness-1",
        final_lr_matters=True,
        seeds=[0, 1],
        epochs=4,
        gamma_grid=[1e-4, 1e-3, 1e-2],
    )
    return analyze_campaign(url, "paper-robustness-1")


def expected_plots(report: dict) -> list[str]:
    """The figures the issue asks for, derived from the report's own arms."""
    ids = ["plot-sensitivity", "plot-expected-max", "plot-learning-curves"]
    for arm in report["arms"]:
        name = arm["name"]
        ids.append(f"plot-importance-{name}")
        if arm["bounded"]:
            ids += [
                f"plot-sweep-{name}-final_lr",
                f"plot-sweep-{name}-gamma",
                f"plot-heatmap-{name}",
                f"plot-bounds-{name}",
            ]
        else:
            ids.append(f"plot-sweep-{name}-lr")
    return ids


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.external: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.append(values["id"])
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if values.get(key):
                self.external.append(values[key])


def test_page_has_every_plot_and_nothing_external(report: dict) -> None:
    page = render_html(report)
    collector = _Collector()
    collector.feed(page)
    for plot in [
        *expected_plots(report),
        "table-verdicts",
        "table-arms",
        "table-spread-elsewhere",
        "context",
    ]:
        assert plot in collector.ids, plot
    assert len(collector.ids) == len(set(collector.ids)), "element ids must be unique"
    assert collector.external == [] and collector.scripts == 0
    # url(#...) points inside the page (matplotlib's clip paths); anything else would fetch.
    assert not re.search(r"url\((?!#)|@import|https?://(?!www\.w3\.org/2000/svg)", page)
    for verdict in report["verdicts"]:
        assert verdict["sentence"].split(":")[0] in page


def test_figures_are_inline_svg_and_the_page_is_stable(report: dict) -> None:
    page = render_html(report)
    assert render_html(report) == page, "the same report must give the same page"
    figures = re.findall(r"<svg [^>]*>", page)
    assert len(figures) == len(re.findall(r'class="plot"', page)) >= len(expected_plots(report))
    # Nothing inside a figure refers to an id, so figures cannot collide on a page.
    assert not re.search(r'url\(#|href="#', page)
    for figure in re.findall(r"<svg .*?</svg>", page, flags=re.DOTALL):
        assert "<title>" in figure and ("<path" in figure or "<rect" in figure)


# What `boundsweep report` has no use for: drawing and learning libraries (their imports were
# most of the page's seconds, issue 19), the web stack, migrations, and the other commands'
# modules. Imports are most of what a report costs; each of these would add to every one.
NOT_ON_THE_REPORT_PATH = (
    "matplotlib", "sklearn", "torch", "scipy", "alembic", "croniter", "fastapi", "uvicorn",
    "boundsweep.service.demo", "boundsweep.service.scheduler", "boundsweep.service.launch",
)  # fmt: skip


def test_the_report_command_imports_only_what_it_needs(tmp_path: Path) -> None:
    """The page is hand-written SVG and importance is numpy: `boundsweep report --html` loads
    none of NOT_ON_THE_REPORT_PATH."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    build_synthetic_campaign(
        url, "c", final_lr_matters=False, seeds=[0, 1], epochs=2, arms=["adabound", "sgdm"]
    )
    page = tmp_path / "r.html"
    script = (
        "import contextlib, io, sys; from boundsweep.service.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['report', 'c', '--storage', {url!r}, '--html', {str(page)!r}])\n"
        f"print(sorted(m for m in {NOT_ON_THE_REPORT_PATH!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
    assert "plot-importance-adabound" in page.read_text()


def test_page_escapes_names() -> None:
    report = {
        "campaign": "<script>alert(1)</script>",
        "task": "t",
        "metric": "val",
        "metric_name": "accuracy",
        "direction": "maximize",
        "seeds": [0],
        "delta": 0.5,
        "delta_kind": "absolute points",
        "generated_at": "now",
        "arms": [],
        "verdicts": [],
        "dynamics": [],
        "published": None,
        "context": [],
    }
    assert "<script>" not in render_html(report)


def test_pngs_are_written_for_every_plot(report: dict, tmp_path: Path) -> None:
    paths = write_pngs(report, tmp_path / "png")
    assert {p.stem for p in paths} >= set(expected_plots(report))
    for path in paths:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, path


def test_published_figures_are_set_beside_a_matching_task(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    build_synthetic_campaign(
        url, "cifar", final_lr_matters=False, seeds=[0, 1], epochs=2, arms=["adabound", "sgdm"]
    )
    # relabel the synthetic campaign as the paper's CIFAR-10 ResNet-34 task
    import optuna

    study = optuna.load_study(study_name="cifar/adabound", storage=url)  # holds the spec
    spec = study.user_attrs["boundsweep:spec"]
    study.set_user_attr("boundsweep:spec", {**spec, "task": "cifar10_resnet34"})
    report = analyze_campaign(url, "cifar")
    rows = {r["arm"]: r for r in report["published"]["rows"]}
    assert rows["adabound"]["published_final"] == 94.86
    assert rows["sgdm"]["published_final"] == 92.64
    assert rows["adabound"]["line"].startswith("adabound: published 94.86 · this campaign ")
    page = render_html(report)
    assert "published 94.86" in page and 'id="published"' in page


# Per figure: text boxes that leave the figure, and pairs of text boxes that overlap (by more
# than a pixel each way): a tick label on a tick label, a legend entry on another, a clipped title.
_TEXT_LAYOUT = """svg => {
  const frame = svg.getBoundingClientRect();
  const boxes = [...svg.querySelectorAll('text')]
    .map(t => [t.textContent, t.getBoundingClientRect()]).filter(([, r]) => r.width > 0);
  const outside = boxes.filter(([, r]) => r.left < frame.left - 0.5 || r.right > frame.right + 0.5
    || r.top < frame.top - 0.5 || r.bottom > frame.bottom + 0.5).map(([t]) => t);
  const overlapping = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, ra] = boxes[i], [b, rb] = boxes[j];
    const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
    const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (w > 1 && h > 1) overlapping.push(a + ' / ' + b);
  }
  return {texts: boxes.length, outside, overlapping};
}"""


@pytest.mark.browser
def test_page_renders_in_chromium_with_every_plot_visible_and_no_network(
    report: dict, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from tests._chromium import launch_chromium

    path = tmp_path / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    requests: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(path.as_uri())
            for plot in [*expected_plots(report), "table-verdicts"]:
                element = page.locator(f"#{plot}")
                assert element.count() == 1, plot
                element.scroll_into_view_if_needed()
                assert element.is_visible(), plot
                box = element.bounding_box()
                assert box and box["width"] > 200 and box["height"] > 100, plot
                if plot.startswith("plot-"):
                    marks = element.locator("path, rect, circle").count()
                    assert marks > 3, f"{plot} draws nothing"
                    # Readable: titled, labelled, and no text clipped or drawn over other text.
                    layout = element.evaluate(_TEXT_LAYOUT)
                    assert layout["texts"] >= 5, (plot, layout)
                    assert layout["outside"] == [] and layout["overlapping"] == [], (plot, layout)
            assert page.evaluate("document.documentElement.scrollWidth") <= 1200
            rows = page.locator("#table-verdicts tr").count()
            claims = report["verdicts"] + report["tuning"] + report["dynamics"]
            assert rows == 1 + len(claims)
            assert errors == []
        finally:
            browser.close()
    assert requests == [path.as_uri()], requests


def test_a_campaign_with_no_finished_trial_still_reports(tmp_path: Path) -> None:
    import warnings

    import optuna

    url = f"sqlite:///{tmp_path / 'c.db'}"
    spec = {"name": "fresh", "task": "mnist1d_mlp", "seeds": [0], "arms": []}
    for arm in ("adabound", "adam"):
        study = optuna.create_study(storage=url, study_name=f"fresh/{arm}", direction="maximize")
        study.set_user_attr("boundsweep:campaign", "fresh")
        study.set_user_attr("boundsweep:arm", arm)
        study.set_user_attr("boundsweep:spec", {**spec, "arms": [{"name": arm, "optimizer": arm}]})
        study.enqueue_trial({})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = analyze_campaign(url, "fresh")
        assert [a["n_complete"] for a in report["arms"]] == [0, 0]
        assert [a["n_trials"] for a in report["arms"]] == [1, 1]
        assert {v["outcome"] for v in report["verdicts"]} == {"inconclusive"}
        assert 'id="table-verdicts"' in render_html(report)
        assert write_pngs(report, tmp_path / "png") == []


def test_the_report_reads_the_arms_the_cli_and_api_read(tmp_path: Path) -> None:
    # Membership is the read model's (boundsweep:campaign), not the study name: a study named
    # like an arm but not (yet) tagged as one, e.g. a creation cut short, is not in the report.
    import optuna
    from boundsweep.studies.storage import campaign_progress, open_storage

    url = f"sqlite:///{tmp_path / 'c.db'}"
    build_synthetic_campaign(
        url, "c", final_lr_matters=False, seeds=[0], epochs=2, arms=["adabound", "sgdm"]
    )
    stray = optuna.create_study(storage=url, study_name="c/stray", direction="maximize")
    stray.add_trial(optuna.trial.create_trial(value=0.99, params={}, distributions={}))
    report = analyze_campaign(url, "c")
    assert [a["name"] for a in report["arms"]] == [
        a.arm for a in campaign_progress(open_storage(url), "c")
    ]
    assert [a["name"] for a in report["arms"]] == ["adabound", "sgdm"]
