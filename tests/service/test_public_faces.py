"""The service uses the lower packages through their public faces only.

``studies``, ``workers`` and ``optimizers`` each keep their internals in private modules
(``_name``) behind a thin front (``boundsweep.studies.campaign``, ``boundsweep.studies.storage``,
``boundsweep.workers``, ...); a module of ``service/`` that imports a private one, at its top
or inside a function, fails here with the line that does.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOWER = ("studies", "workers", "optimizers")


def private_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of a private module of ``studies``/``workers``/
    ``optimizers`` in ``source``, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            lower = parts[:1] == ["boundsweep"] and parts[1:2] and parts[1] in LOWER
            if lower and any(part.startswith("_") for part in parts[2:]):
                found.append((node.lineno, module))
                break
    return found


def test_the_service_imports_no_private_module_of_the_lower_packages() -> None:
    sources = sorted((ROOT / "service").rglob("*.py"))
    assert ROOT / "service" / "api" / "models" / "_schedules.py" in sources
    found = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in sources
        for line, module in private_imports(path.read_text())
    ]
    assert not found, "service/ imports private modules:\n" + "\n".join(found)


def test_the_check_finds_what_it_is_for() -> None:
    # Each form of a private import is caught (so a blind check cannot pass), a public face
    # and the service's own private modules are not.
    caught = [
        "from boundsweep.studies._campaign._limits import check_text",
        "import boundsweep.studies._storage",
        "from boundsweep.studies.tasks import _registry",
        "from boundsweep.workers._worker import Worker",
        "def f():\n    from boundsweep.optimizers._adabound import AdaBound\n",
    ]
    for source in caught:
        assert private_imports(source), source
    for source in (
        "from boundsweep.studies.campaign import MAX_DESCRIPTION_CHARS, check_text",
        "from boundsweep.studies.storage import open_storage",
        "from boundsweep.service.api.models._common import Page",
        "from boundsweep.workers import run_worker",
    ):
        assert not private_imports(source), source
