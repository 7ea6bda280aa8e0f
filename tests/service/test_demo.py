"""``boundsweep demo`` end to end: real API, scheduler and worker processes on SQLite.

Run at the smallest budget (one seed, one epoch: 27 trials) so the suite stays fast; the full
demo's timing is measured by running it (docs/operations.md), not asserted here.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from boundsweep.service.demo import DEMO_CAMPAIGN, demo_request, run_demo


def _processes_using(marker: str) -> list[int]:
    """Our processes whose environment mentions `marker` (the demo's database path)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_demo_runs_the_campaign_through_the_service_and_writes_the_report(tmp_path: Path) -> None:
    out = io.StringIO()
    code = run_demo(out_dir=tmp_path / "demo", epochs=1, seeds=1, out=out)
    text = out.getvalue()
    assert code == 0, text

    lines = text.splitlines()
    assert lines[0] == f"storage    sqlite:///{tmp_path / 'demo' / 'boundsweep.db'}"
    assert any(line.startswith("dashboard  http://127.0.0.1:") for line in lines)
    assert (
        f"submitted  {DEMO_CAMPAIGN}: paper-robustness on mnist1d_mlp, 27 trials in 5 arms" in text
    )
    # Live progress: a header and one line per arm, ending with everything finished.
    assert "27/27 trials finished" in text
    final = lines[lines.index(next(x for x in lines if "27/27 trials finished" in x)) :][1:6]
    assert [line.split()[0] for line in final] == [
        "adabound",
        "amsbound",
        "adam",
        "amsgrad",
        "sgdm",
    ]
    assert all("failed 0" in line for line in final)
    # The report's summary, its path, and how to open the dashboard afterwards.
    assert f"{DEMO_CAMPAIGN} (mnist1d_mlp, val accuracy, 27 completed trials in 5 arms)" in text
    assert "adabound is robust to final_lr" in text
    report = tmp_path / "demo" / "report.html"
    assert f"report     {report}" in text
    assert report.read_text().lstrip().lower().startswith("<!doctype html")
    assert "boundsweep dashboard --storage sqlite:///" in text
    # Every process logged to its own file and none is left running.
    logs = sorted(p.name for p in (tmp_path / "demo" / "logs").iterdir())
    assert logs == ["api.log", "scheduler.log", "worker-1.log", "worker-2.log"]
    assert _processes_using(str(tmp_path / "demo")) == []


def test_demo_request_is_the_preset_at_a_small_budget() -> None:
    body = demo_request(epochs=20, seeds=3)
    assert body["preset"] == "paper-robustness"
    assert body["overrides"] == {
        "task": "mnist1d_mlp",
        "grid_width": 3,
        "seeds": [0, 1, 2],
        "budget": {"epochs": 20},
    }


def test_a_process_that_dies_fails_the_demo_clearly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        out = io.StringIO()
        code = run_demo(out_dir=tmp_path / "demo", port=taken.getsockname()[1], out=out)
    assert code == 1
    assert "demo failed: the api process exited with status" in out.getvalue()
    assert "last lines of" in out.getvalue()
    assert _processes_using(str(tmp_path / "demo")) == []


@pytest.mark.timeout(300)
def test_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "boundsweep.service.cli",
            "demo",
            "--dir",
            str(demo_dir),
            "--epochs",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C at a terminal: SIGINT at its default, even where this suite was started in
        # the background (a shell's `(cmd &)` ignores SIGINT, and Python keeps it ignored).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    output = []
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if line.startswith("submitted"):
            break
    assert len(_processes_using(str(demo_dir))) >= 4, "".join(output)
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=120)
    text = "".join(output) + rest
    assert process.returncode == 130, text
    assert "interrupted: stopping the workers, the scheduler and the API" in text
    assert "Traceback" not in text
    deadline = time.monotonic() + 10
    while _processes_using(str(demo_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_using(str(demo_dir)) == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_redrawn_in_place_on_a_terminal() -> None:
    from boundsweep.service.demo import _ProgressPrinter

    terminal = _Terminal()
    printer = _ProgressPrinter(terminal)
    printer.show(["header 1", "  arm a", "  arm b"])
    printer.show(["header 2", "  arm a", "  arm b"])
    first, second = terminal.getvalue().split("\x1b[3F")
    assert first == "\x1b[2Kheader 1\n\x1b[2K  arm a\n\x1b[2K  arm b\n"
    assert second.startswith("\x1b[2Kheader 2\n")

    log = io.StringIO()
    printer = _ProgressPrinter(log)
    for n in range(3):
        printer.show([f"header {n}", "  arm a"])
    printer.show(["header final", "  arm a"], final=True)
    # In a log: the first block, nothing more within 10 s, then the final block.
    assert log.getvalue() == "header 0\n  arm a\nheader final\n  arm a\n"


def test_the_header_shows_epochs_of_running_trials_while_none_has_finished() -> None:
    """Batched workers finish a whole batch at once: until then the epochs the running
    trials have written are what moves (issue 21)."""
    from boundsweep.service.demo import _progress_block

    arm = {"name": "adam", "complete": 0, "pruned": 0, "failed": 0, "total": 9}
    detail = {"finished": 0, "total": 9, "arm_status": [arm | {"running": 9, "best_value": None}]}
    assert _progress_block(detail, 3.0)[0] == "[    3 s] 0/9 trials finished"
    moving = _progress_block(detail | {"running_epochs": 931, "eta_seconds": 12.0}, 13.0)
    assert (
        moving[0]
        == "[   13 s] 0/9 trials finished, 931 epochs done in running trials, about 12 s left"
    )
