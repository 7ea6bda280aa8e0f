"""The ``boundsweep`` entry point: the CLI, or one line naming the extra a command lacks.

``pip install boundsweep`` is the optimizers alone; the command's parts come with extras
(``pyproject.toml``). This module imports nothing but the standard library until it runs the
CLI, so on an install without the extra a command needs, it says which one in one line and
exits 2 instead of a traceback. ``COMMAND_EXTRAS`` is the one place that says which command
needs which extra.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["COMMAND_EXTRAS", "MODULE_EXTRAS", "main", "missing_extra"]

COMMAND_EXTRAS: dict[str | None, str] = {
    None: "service",  # no command named (--version and --help import nothing of an extra)
    "serve": "service",
    "dashboard": "service",
    "scheduler": "service",
    "demo": "service",
    "submit": "service",
    "status": "service",
    "requeue": "service",
    "report": "service",
    "worker": "service",
    "tasks": "service",
    "optimizers": "service",
}
"""The extra each ``boundsweep`` command needs. The command is the ``[service]`` extra
(it includes ``[worker]`` and ``[report]``); a machine that only trains runs
``python -m boundsweep.workers``, which needs only ``[worker]``."""

MODULE_EXTRAS: dict[str, str] = {
    "torchvision": "studies",
    "numpy": "studies",
    "sklearn": "studies",
    "mnist1d": "studies",
    "optuna": "studies",
    "sqlalchemy": "studies",
    "pydantic": "studies",
    "yaml": "studies",
    "psycopg": "worker",
    "matplotlib": "report",
    "fastapi": "service",
    "fastapi_offline": "service",
    "uvicorn": "service",
    "alembic": "service",
    "a2wsgi": "service",
    "optuna_dashboard": "service",
    "pydantic_settings": "service",
    "croniter": "service",
}
"""Each module an extra installs (by its import name) and the extra that brings it."""

_HINTS = {"worker": " (or `python -m boundsweep.workers`, which needs only the [worker] extra)"}


def _command(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (its first word not an option), ``None`` if none is."""
    word = next((word for word in argv if not word.startswith("-")), None)
    return word if word in COMMAND_EXTRAS else None


def missing_extra(argv: Sequence[str], exc: ImportError) -> str | None:
    """The line to print for ``exc`` raised by the command in ``argv``; ``None`` when it is
    not a module of an extra (a bug of ours, which must show its traceback)."""
    module = (exc.name or "").split(".")[0]
    if module not in MODULE_EXTRAS:
        return None
    command = _command(argv)
    extra = COMMAND_EXTRAS[command]
    name = "boundsweep" if command is None else f"boundsweep {command}"
    return (
        f"{name} needs the [{extra}] extra (module {module!r} is not installed): "
        f"pip install 'boundsweep[{extra}]'{_HINTS.get(command or '', '')}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``boundsweep``; exit status 2 with one line when a needed extra is missing."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        from boundsweep.service.cli import main as run  # needs the extras, checked here

        return run(argv)
    except ImportError as exc:
        line = missing_extra(argv, exc)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
