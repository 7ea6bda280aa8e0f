"""A worker process (``python -m boundsweep.workers``) whose log a thread collects: the kill
tests and the kill-storm benchmark start, stop and kill real workers through it."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class WorkerProcess:
    """``python -m boundsweep.workers --storage URL`` with a 1 s heartbeat and a 3 s grace.

    Args:
        url: The storage.
        args: More worker options.
        poll_interval: Seconds between looks for work.
    """

    def __init__(self, url: str, *args: str, poll_interval: float = 0.3) -> None:
        command = [sys.executable, "-m", "boundsweep.workers", "--storage", url]
        command += ["--heartbeat-interval", "1", "--grace-period", "3"]
        command += ["--poll-interval", str(poll_interval), *args]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        """SIGKILL (if still running), then wait for it and for the rest of its log."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(timeout=5)
