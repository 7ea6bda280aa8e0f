"""``boundsweep`` on an install without the extra a command needs: one line, exit 2.

Each case runs the installed ``boundsweep`` script in a fresh interpreter where the modules
named are absent as on a machine without them: a ``sitecustomize`` sets
``sys.modules[name] = None``, which makes ``import name`` raise ``ModuleNotFoundError``
exactly as when it is not installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from boundsweep.service.cli import build_parser
from boundsweep.service.entry import COMMAND_EXTRAS, MODULE_EXTRAS
from boundsweep.studies.robustness._synthetic import build_synthetic_campaign

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "boundsweep"
DISTRIBUTION = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "fastapi_offline": "fastapi-offline",
    "optuna_dashboard": "optuna-dashboard",
    "pydantic_settings": "pydantic-settings",
}
"""Import names whose distribution is named otherwise."""


def _run(tmp_path: Path, absent: list[str], *argv: str) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "absent"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in absent)
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [str(SCRIPT), *argv], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )


def _line(command: str | None, module: str) -> str:
    name = "boundsweep" if command is None else f"boundsweep {command}"
    return (
        f"{name} needs the [service] extra (module {module!r} is not installed): "
        "pip install 'boundsweep[service]'"
    )


@pytest.mark.parametrize(
    ("absent", "argv", "command"),
    [
        (["fastapi"], ["serve"], "serve"),
        (["alembic"], ["scheduler", "--once"], "scheduler"),
        (["uvicorn"], ["dashboard"], "dashboard"),
        (["croniter"], ["scheduler", "--once"], "scheduler"),
        (["pydantic_settings"], ["status"], "status"),
        (["optuna"], ["submit", "--preset", "paper-robustness", "--dry-run"], "submit"),
    ],
    ids=["serve-fastapi", "scheduler-alembic", "dashboard-uvicorn", "scheduler-croniter",
         "status-pydantic-settings", "submit-optuna"],
)  # fmt: skip
def test_a_command_without_its_extra_says_which_in_one_line(
    tmp_path: Path, sqlite_url: str, absent: list[str], argv: list[str], command: str | None
) -> None:
    storage = [] if command is None else ["--storage", sqlite_url]
    done = _run(tmp_path, absent, *argv, *storage)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == _line(command, absent[0]) + "\n"
    assert done.stdout == ""


def test_help_version_and_a_refused_spec_file_need_no_extra(tmp_path: Path) -> None:
    # The command line is parsed, and a spec file held to the document limits, with the
    # standard library and PyYAML alone: on a bare install they answer instead of naming an extra.
    bare = ["optuna", "sqlalchemy", "pydantic", "numpy", "torch", "fastapi"]
    assert _run(tmp_path, bare, "--version").stdout.startswith("boundsweep ")
    helped = _run(tmp_path, bare, "submit", "--help")
    assert helped.returncode == 0 and "--preset" in helped.stdout, helped.stderr
    (tmp_path / "laughs.yaml").write_text(
        "a: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n"
            for a, b in zip("abcdefgh", "bcdefghi", strict=True)
        )
    )
    refused = _run(tmp_path, bare, "submit", "laughs.yaml")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr == (
        "boundsweep submit: error: laughs.yaml: the document holds more than 50,000 values "
        "(the limit; a YAML alias counts as every value it repeats)\n"
    )


def test_the_report_without_matplotlib_says_which_extra(tmp_path: Path, sqlite_url: str) -> None:
    build_synthetic_campaign(sqlite_url, "c", final_lr_matters=False, seeds=[0], epochs=2)
    # The text report and the page (hand-written SVG) need no drawing library; PNGs do.
    text = _run(tmp_path, ["matplotlib"], "report", "c", "--storage", sqlite_url)
    assert text.returncode == 0, text.stderr
    assert "adabound" in text.stdout
    page = _run(
        tmp_path, ["matplotlib"], "report", "c", "--html", "r.html", "--storage", sqlite_url
    )
    assert page.returncode == 0, page.stderr
    assert 'id="plot-sensitivity"' in (tmp_path / "r.html").read_text()
    pngs = _run(
        tmp_path, ["matplotlib"], "report", "c", "--png-dir", "png", "--storage", sqlite_url
    )
    assert pngs.returncode == 2, pngs.stdout + pngs.stderr
    assert pngs.stderr == _line("report", "matplotlib") + "\n"


def test_the_worker_line_names_the_lighter_way(tmp_path: Path, sqlite_url: str) -> None:
    done = _run(tmp_path, ["pydantic_settings"], "worker", "--storage", sqlite_url, "--until-idle")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(
        _line("worker", "pydantic_settings") + " (or `python -m boundsweep."
    )
    assert done.stderr.count("\n") == 1


def test_a_command_that_needs_nothing_absent_still_runs(tmp_path: Path, sqlite_url: str) -> None:
    done = _run(tmp_path, ["fastapi", "uvicorn", "matplotlib"], "status", "--storage", sqlite_url)
    assert done.returncode == 0, done.stderr


def test_a_missing_module_of_boundsweep_itself_is_a_traceback(tmp_path: Path) -> None:
    # Not an extra's module: a bug, which must not hide behind an install hint.
    done = _run(tmp_path, ["boundsweep.studies.robustness"], "status")
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "boundsweep.studies.robustness" in done.stderr
    assert "pip install" not in done.stderr


def test_every_command_and_every_extras_module_is_in_the_tables() -> None:
    parser = build_parser(worker_options=False)
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(commands) | {None} == set(COMMAND_EXTRAS)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for module, extra in MODULE_EXTRAS.items():
        wanted = DISTRIBUTION.get(module, module)
        names = {re.split(r"[\[<>=!;~ ]", r, maxsplit=1)[0].lower() for r in extras[extra]}
        assert wanted in names, f"{module}: {wanted} is not in [{extra}]"
    assert set(COMMAND_EXTRAS.values()) <= set(extras)
