"""The wheel as a user installs it: one top-level name, the optimizers alone by default.

Built from a copy of the tracked files with the environment's setuptools (no build
isolation, so nothing is downloaded).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FOLDERS = ("optimizers", "studies", "workers", "service")
# Top-level names other distributions on PyPI install (PyPI's `service` 0.6.0 writes
# service/__init__.py): boundsweep's wheel must write none of them.
TAKEN_ON_PYPI = ("service", "workers", "optimizers", "studies")
# What only an extra may pull in: the optimizers need torch and nothing else.
HEAVY = ("fastapi", "psycopg", "alembic", "matplotlib", "uvicorn", "optuna", "sqlalchemy")
# Each declared distribution and the text that shows the code uses it (an import, or the
# SQLAlchemy driver name that loads it).
USED_AS = {
    "torch": r"^\s*(import|from) torch\b",
    "torchvision": r"^\s*(import|from) torchvision\b",
    "numpy": r"^\s*import numpy\b",
    "scikit-learn": r"^\s*from sklearn\b",
    "mnist1d": r"^\s*from mnist1d\b",
    "optuna": r"^\s*(import|from) optuna\b",
    "sqlalchemy": r"^\s*(import|from) sqlalchemy\b",
    "pydantic": r"^\s*from pydantic\b",
    "pyyaml": r"^\s*import yaml\b",
    "psycopg": r"postgresql\+psycopg",
    "matplotlib": r"^\s*(import|from) matplotlib\b",
    "fastapi": r"^\s*from fastapi\b",
    "fastapi-offline": r"^\s*import fastapi_offline\b",
    "uvicorn": r"^\s*import uvicorn\b",
    "alembic": r"^\s*from alembic\b",
    "a2wsgi": r"^\s*from a2wsgi\b",
    "optuna-dashboard": r"^\s*import optuna_dashboard\b",
    "pydantic-settings": r"^\s*from pydantic_settings\b",
    "croniter": r"^\s*from croniter\b",
}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!;~ ]", requirement, maxsplit=1)[0].lower()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(
        ["git", "ls-files", "-z", *FOLDERS, "setup.py", "pyproject.toml", "README.md", "LICENSE"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, tracked):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (path,) = out.glob("boundsweep-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_claims_only_boundsweep(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    assert {n.split("/")[0] for n in names} == {"boundsweep", dist_info}
    for taken in TAKEN_ON_PYPI:
        assert not any(n.startswith(f"{taken}/") for n in names), taken
    # Every folder and the files the service reads at run time are in it.
    for folder in FOLDERS:
        assert f"boundsweep/{folder}/__init__.py" in names
    assert "boundsweep/service/migrations/script.py.mako" in names
    assert "boundsweep/studies/robustness/published.json" in names


def test_the_optimizers_alone_pull_only_torch_and_the_rest_is_extras(
    wheel: zipfile.ZipFile,
) -> None:
    metadata_file = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    metadata = Parser().parsestr(wheel.read(metadata_file).decode())
    requires = metadata.get_all("Requires-Dist")
    base = [r for r in requires if "extra ==" not in r]
    assert [_name(r) for r in base] == ["torch"]
    behind = {_name(r) for r in requires if "extra ==" in r}
    assert set(HEAVY) <= behind
    assert {"service", "report", "worker", "studies", "all", "dev"} <= set(
        metadata.get_all("Provides-Extra")
    )
    assert metadata["License-Expression"] == "MIT"


def test_every_declared_dependency_is_used_by_the_code() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = {
        _name(r)
        for group in [project["dependencies"], *(v for k, v in extras.items() if k != "dev")]
        for r in group
        if _name(r) != "boundsweep"
    }
    assert declared == set(USED_AS), "declare what the code imports, and nothing else"
    code = "\n".join(
        path.read_text() for folder in FOLDERS for path in (ROOT / folder).rglob("*.py")
    )
    for distribution, usage in USED_AS.items():
        assert re.search(usage, code, re.MULTILINE), f"{distribution} is declared, never used"
