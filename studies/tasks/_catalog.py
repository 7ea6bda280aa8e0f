"""How the CLI and the API list a task (torch-free)."""

from __future__ import annotations

from typing import Any

from boundsweep.studies.tasks._task import Task


def describe_task(task: Task) -> dict[str, Any]:
    """A task's metadata as ``boundsweep tasks`` and ``GET /api/v1/tasks`` list it."""
    return {
        "description": task.description,
        "shape": "own loop" if task.kind == "loop" else "data + model",
        "kind": task.kind,
        "metric": task.metric,
        "direction": task.direction,
        "default_epochs": task.default_epochs,
        "diverged_value": task.diverged_value,
        "margin": task.margin,
        "margin_relative": task.margin_relative,
        "batchable": task.batchable,
    }
