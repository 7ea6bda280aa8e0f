"""Only the adapter (``studies/_storage/_optuna/``) may know how Optuna stores a study.

A grep over every source module: Optuna's table names, its ``_rdb`` models, the private
attributes ``_backend``, ``_study_id``, ``_trial_id``, ``Study._storage`` and
``Study._thread_local``, the system attr
keys Optuna reads (``fixed_params``, ``failed_trial``, ``retry_history``), private Optuna
modules and a ``get_trial`` override are named there and nowhere else, so an Optuna upgrade
is checked in one place (and by ``tests/studies/test_optuna_contract.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("optimizers", "studies", "workers", "service", "benchmarks")
ADAPTER = ROOT / "studies" / "_storage" / "_optuna"

INTERNALS = {
    "an Optuna table": re.compile(
        r"\b(trial_values|trial_params|trial_heartbeats|trial_system_attributes"
        r"|trial_user_attributes|trial_intermediate_values|study_user_attributes"
        r"|study_system_attributes|study_directions|version_info)\b"
    ),
    "Optuna's RDB models": re.compile(r"\b_rdb\b|\bmodels\.\w+Model\b"),
    "a private Optuna module": re.compile(r"\boptuna(?:_dashboard)?(?:\.\w+)*\._\w+"),
    "Optuna's cache wrapper": re.compile(r"\b_backend\b"),
    "a private id": re.compile(r"(?<!self)\._(?:study_id|trial_id)\b"),
    "a study's storage": re.compile(r"(?<!studies)(?<!self)\._storage\b"),
    "a study's per-thread trials": re.compile(r"\._thread_local\b"),
    "an Optuna system attr key": re.compile(r"\b(fixed_params|failed_trial|retry_history)\b"),
    "a get_trial override": re.compile(r"def get_trial\("),
}


def _sources() -> list[Path]:
    files = [p for folder in SOURCES for p in sorted((ROOT / folder).rglob("*.py"))]
    return [p for p in files if ADAPTER not in p.parents]


def test_the_source_tree_is_there() -> None:
    # The grep below must look at the real modules, not at an empty or moved tree.
    names = {p.relative_to(ROOT).as_posix() for p in _sources()}
    assert {
        "workers/_worker.py",
        "studies/objective.py",
        "service/api/routes/campaigns.py",
    } <= names
    assert (ADAPTER / "__init__.py").is_file()


@pytest.mark.parametrize("what", sorted(INTERNALS))
def test_only_the_adapter_names_optuna_internals(what: str) -> None:
    pattern = INTERNALS[what]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _sources()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, f"{what} named outside studies/_storage/_optuna:\n" + "\n".join(found)


def test_each_pattern_finds_what_it_is_for() -> None:
    # Each pattern matches the adapter's own uses (so a typo cannot make the grep pass).
    adapter = "\n".join(p.read_text() for p in sorted(ADAPTER.glob("*.py")))
    for what, pattern in INTERNALS.items():
        if what == "a private Optuna module":
            assert pattern.search("from optuna.storages._rdb import models")
            continue
        assert pattern.search(adapter), what
    assert not INTERNALS["a study's storage"].search("from boundsweep.studies._storage import x")
    assert not INTERNALS["a private id"].search("self._trial_id = trial_id")
