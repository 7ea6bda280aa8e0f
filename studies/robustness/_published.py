"""Published figures to set a campaign's results beside (see published.json for the source)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

_PATH = Path(__file__).with_name("published.json")


@cache
def _published() -> dict:
    return json.loads(_PATH.read_text())


def published_runs(task: str | None) -> list[dict]:
    """The authors' released runs on ``task`` (empty for tasks they did not publish)."""
    return [
        {k: v for k, v in run.items() if k != "test_accuracy"}
        for run in _published()["runs"]
        if run["task"] == task
    ]


def published_source() -> str:
    return _published()["source"]


def context_notes() -> list[str]:
    """Independent re-runs of the paper's experiments, as one line each."""
    return list(_published()["context"])
