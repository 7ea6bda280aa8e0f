"""A plugin that exists only where ``BOUNDSWEEP_PLUGINS`` names it (the tests write it into a
folder on ``PYTHONPATH``): the submitting process has it, a plain worker or API does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MODULE = "bs_only_here"
TASK = "only_here"

SOURCE = f'''
from boundsweep.studies.tasks import TASKS, Task

TASKS.register(Task(
    name={TASK!r}, description="counts to its budget", kind="loop", metric="score",
    direction="maximize", default_epochs=2, diverged_value=0.0, margin=1.0,
    code="{MODULE}:run",
))


def run(ctx):
    for epoch in range(1, ctx.epochs + 1):
        ctx.report(epoch, float(epoch + ctx.seed))
    return float(ctx.epochs + ctx.seed)
'''


def write_plugin(folder: Path) -> Path:
    """The plugin module in ``folder``; returns the folder (for ``PYTHONPATH``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MODULE}.py").write_text(SOURCE)
    return folder


def env(plugin_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """A clean environment for a ``boundsweep`` subprocess; with the plugin when given."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("BOUNDSWEEP_")}
    out.update(OMP_NUM_THREADS="1", BOUNDSWEEP_DOWNLOAD="0", **extra)
    if plugin_dir is not None:
        out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_dir), out.get("PYTHONPATH")]))
        out["BOUNDSWEEP_PLUGINS"] = MODULE
    return out


def boundsweep(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``boundsweep ARGS`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "boundsweep.service.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def submit(url: str, spec: dict, folder: Path, env: dict[str, str]) -> None:
    """Submit ``spec`` with ``boundsweep submit`` (a file in ``folder``)."""
    path = folder / f"{spec['name']}.json"
    path.write_text(json.dumps(spec))
    done = boundsweep("submit", str(path), "--storage", url, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
