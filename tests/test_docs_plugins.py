"""docs/plugins.md runs as written: its ``# file:`` blocks are written, its other Python blocks
run in order, in one fresh interpreter (its registrations stay out of this process)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests._plugins import env

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def test_the_plugins_tutorial_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    script = []
    for block in blocks:
        first, _, rest = block.partition("\n")
        if first.startswith("# file: "):
            path = tmp_path / first.removeprefix("# file: ").strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rest)
        else:
            script.append(block)
    assert len(script) >= 3 and (tmp_path / "my_plugins" / "loop.py").exists()
    (tmp_path / "tutorial.py").write_text("\n".join(script))
    done = subprocess.run(
        [sys.executable, "tutorial.py"], cwd=tmp_path, env=env(PYTHONPATH=str(tmp_path)),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "module:my_plugins.local local" in done.stdout
    assert "mse minimize 0.01" in done.stdout
