"""``boundsweep demo``: the whole service on one SQLite file, from submission to report.

It runs what a deployment runs, as separate processes talking through the database and HTTP:
the API (with the dashboard mounted), the nightly scheduler and two workers. The campaign goes
in through ``POST /api/v1/campaigns`` like any client's, progress comes from
``GET /api/v1/campaigns/{name}``, and the report from ``.../report``. Everything is started
in its own session and stopped by the demo, also on Ctrl-C; each process logs to
``<out_dir>/logs/``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from boundsweep.service.db import migrate
from boundsweep.studies.robustness import summary_lines
from boundsweep.studies.storage import open_storage

__all__ = ["DEMO_CAMPAIGN", "DemoFailed", "database_url", "demo_request", "run_demo"]

DEMO_CAMPAIGN = "demo-paper-robustness"
DEMO_TASK = "mnist1d_mlp"
# The paper-robustness preset at width 3: AdaBound and AMSBound over a 3x3 final_lr x gamma
# grid, Adam, AMSGrad and SGD-momentum over 3 learning rates; 27 configurations. Three seeds
# each (the report's uncertainty comes from seeds) at 20 epochs is 81 trials, which two workers
# finish in about two and a half minutes on two cores (measured: docs/operations.md).
DEMO_GRID_WIDTH = 3
DEMO_SEEDS = 3
DEMO_EPOCHS = 20

_POLL_SECONDS = 2.0
# Not on a terminal (a log, CI): the summary line every 10 s, the per-arm lines every 30 s.
_LINE_SECONDS = 10.0
_BLOCK_SECONDS = 30.0


class DemoFailed(RuntimeError):
    """A demo process died or the API answered an error; the message says which and why."""


def demo_request(epochs: int = DEMO_EPOCHS, seeds: int = DEMO_SEEDS) -> dict[str, Any]:
    """The body the demo POSTs to ``/api/v1/campaigns``."""
    return {
        "preset": "paper-robustness",
        "name": DEMO_CAMPAIGN,
        "overrides": {
            "task": DEMO_TASK,
            "grid_width": DEMO_GRID_WIDTH,
            "seeds": list(range(seeds)),
            "budget": {"epochs": epochs},
        },
    }


@dataclass
class _Api:
    """A tiny JSON client for the demo's own API (stdlib only, no retries hidden inside)."""

    base: str
    token: str

    def call(
        self, method: str, path: str, body: dict | None = None, timeout: float = 60.0
    ) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def json(self, method: str, path: str, body: dict | None = None, expect: int = 200) -> Any:
        status, payload = self.call(method, path, body)
        if status != expect:
            raise DemoFailed(f"{method} {path} answered {status}: {payload.decode()[:500]}")
        return json.loads(payload)


def _set_parent_death_signal() -> None:
    # Linux: if the demo itself is killed (SIGKILL, closed terminal), its children get SIGTERM
    # instead of living on as orphans holding the port and the database.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class _Processes:
    """The demo's child processes, started in their own sessions so Ctrl-C reaches only us."""

    log_dir: Path
    env: dict[str, str]
    running: dict[str, subprocess.Popen] = field(default_factory=dict)
    _logs: list[TextIO] = field(default_factory=list)

    def start(self, name: str, *command: str) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed in stop_all
        self._logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "boundsweep.service.cli", *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
            preexec_fn=_set_parent_death_signal if sys.platform == "linux" else None,
        )
        self.running[name] = process
        return process

    def check_alive(self, *names: str) -> None:
        for name in names:
            code = self.running[name].poll()
            if code is not None:
                raise DemoFailed(f"the {name} process exited with status {code}\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 25) -> str:
        text = (self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()
        shown = "\n".join(f"  | {line}" for line in text[-lines:])
        return f"last lines of {self.log_dir / name}.log:\n{shown}"

    def stop(self, name: str, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit status."""
        process = self.running.get(name)
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def stop_all(self) -> None:
        # Workers first (they give their running trial back), then the scheduler, then the API.
        for name in sorted(self.running, key=lambda n: (not n.startswith("worker"), n == "api")):
            self.stop(name)
        for log in self._logs:
            log.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _fresh_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` and remove what an earlier demo left there (only the demo's files)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("boundsweep.db", "boundsweep.db-journal", "boundsweep.db-wal", "report.html"):
        (out_dir / name).unlink(missing_ok=True)
    (out_dir / "logs").mkdir(exist_ok=True)
    return out_dir


def _wait_until_up(api: _Api, processes: _Processes, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        processes.check_alive("api")
        with contextlib.suppress(OSError):
            # A short timeout: something else listening on the port must not stall the demo.
            status, _ = api.call("GET", "/readyz", timeout=2.0)
            if status == 200:
                return
        if time.monotonic() > deadline:
            raise DemoFailed(
                f"the API did not become ready in {timeout:.0f} s\n{processes.tail('api')}"
            )
        time.sleep(0.3)


def _arm_line(arm: dict[str, Any]) -> str:
    finished = arm["complete"] + arm["pruned"] + arm["failed"]
    width = 20
    filled = round(width * finished / arm["total"]) if arm["total"] else width
    best = "-" if arm["best_value"] is None else f"{arm['best_value']:.3f}"
    return (
        f"  {arm['name']:<9} [{'#' * filled}{'.' * (width - filled)}] {finished:>3}/{arm['total']:<3}"
        f" running {arm['running']}  failed {arm['failed']}  best {best}"
    )


def _progress_block(detail: dict[str, Any], elapsed: float) -> list[str]:
    eta = detail.get("eta_seconds")
    eta_text = f", about {eta:.0f} s left" if eta else ""
    epochs = detail.get("running_epochs")
    live = f", {epochs} epochs done in running trials" if epochs else ""
    header = (
        f"[{elapsed:5.0f} s] {detail['finished']}/{detail['total']} trials finished{live}{eta_text}"
    )
    return [header, *(_arm_line(arm) for arm in detail["arm_status"])]


@dataclass
class _ProgressPrinter:
    """Live progress: redrawn in place on a terminal; in a log, printed now and then."""

    out: TextIO
    drawn: int = 0
    last_line: float = -1e9
    last_block: float = -1e9

    def show(self, lines: list[str], final: bool = False) -> None:
        now = time.monotonic()
        if self.out.isatty():
            if self.drawn:
                self.out.write(f"\x1b[{self.drawn}F")
            self.out.write("".join(f"\x1b[2K{line}\n" for line in lines))
            self.drawn = len(lines)
        elif final or now - self.last_block >= _BLOCK_SECONDS:
            self.out.write("\n".join(lines) + "\n")
            self.last_line = self.last_block = now
        elif now - self.last_line >= _LINE_SECONDS:
            self.out.write(lines[0] + "\n")
            self.last_line = now
        self.out.flush()


def _watch(
    api: _Api, processes: _Processes, workers: list[str], started: float, out: TextIO
) -> dict[str, Any]:
    """Poll the campaign until every trial is finished; returns the last detail."""
    printer = _ProgressPrinter(out)
    while True:
        processes.check_alive("api", "scheduler")
        detail = api.json("GET", f"/api/v1/campaigns/{DEMO_CAMPAIGN}")
        done = detail["finished"] >= detail["total"]
        printer.show(_progress_block(detail, time.monotonic() - started), final=done)
        if done:
            return detail
        # Workers run until the demo stops them; one that exits early has failed.
        processes.check_alive(*workers)
        time.sleep(_POLL_SECONDS)


def _child_environment(url: str, token: str) -> dict[str, str]:
    """The processes' environment: this one's, with the demo's own BOUNDSWEEP_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNDSWEEP_")}
    env.update(
        BOUNDSWEEP_DATABASE_URL=url,
        BOUNDSWEEP_API_TOKEN=token,
        BOUNDSWEEP_DEMO="true",
        BOUNDSWEEP_DASHBOARD="true",
        # Let the scheduler notice schedules someone adds during the demo without waiting long.
        BOUNDSWEEP_SCHEDULER_POLL_SECONDS="5",
        PYTHONUNBUFFERED="1",
        # Two workers on two cores: one thread each trains faster than two fighting threads.
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    if os.environ.get("BOUNDSWEEP_DATA_DIR"):
        env["BOUNDSWEEP_DATA_DIR"] = os.environ["BOUNDSWEEP_DATA_DIR"]
    return env


def database_url(out_dir: Path) -> str:
    """The demo's own SQLite file in ``out_dir`` (it never uses ``--storage``)."""
    return f"sqlite:///{Path(out_dir).resolve() / 'boundsweep.db'}"


def run_demo(
    out_dir: Path = Path("demo-output"),
    workers: int = 2,
    epochs: int | None = None,
    seeds: int | None = None,
    port: int = 0,
    out: TextIO | None = None,
) -> int:
    """Run the demo end to end; returns the exit status (0 when the report was written).

    Args:
        out_dir: Folder for the SQLite file, ``report.html`` and ``logs/``; the demo's files
            from an earlier run there are replaced.
        workers: Worker processes to start.
        epochs: Epochs per trial (default `DEMO_EPOCHS`).
        seeds: Seeds per configuration (default `DEMO_SEEDS`).
        port: API port; 0 picks a free one.
        out: Where to print (default: stdout).
    """
    out = out or sys.stdout
    started = time.monotonic()
    out_dir = _fresh_dir(Path(out_dir)).resolve()
    url = database_url(out_dir)
    token = secrets.token_urlsafe(18)
    port = port or _free_port()
    api = _Api(f"http://127.0.0.1:{port}", token)
    say = _Say(out)

    # Migrate and create Optuna's tables once, here, so the processes never race to do it.
    migrate(url)
    open_storage(url)
    body = demo_request(epochs or DEMO_EPOCHS, seeds or DEMO_SEEDS)

    processes = _Processes(out_dir / "logs", _child_environment(url, token))
    try:
        report = _run(api, processes, url, workers, body, started, say, out)
    except KeyboardInterrupt:
        say("\ninterrupted: stopping the workers, the scheduler and the API ...")
        return 130
    except DemoFailed as exc:
        say(f"\ndemo failed: {exc}")
        return 1
    finally:
        processes.stop_all()

    say("")
    say("\n".join(summary_lines(report)))
    say("")
    say(f"report     {out_dir / 'report.html'}")
    say(f"dashboard  boundsweep dashboard --storage {url}")
    say("           then open http://127.0.0.1:8080/dashboard (read-only; --allow-writes")
    say("           makes a token for writes)")
    say(f"done in {time.monotonic() - started:.0f} s")
    return 0


def _run(
    api: _Api,
    processes: _Processes,
    url: str,
    workers: int,
    body: dict[str, Any],
    started: float,
    say: _Say,
    out: TextIO,
) -> dict[str, Any]:
    """Start the processes, submit, watch, fetch the report; returns the report's JSON."""
    say(f"storage    {url}")
    processes.start("api", "serve", "--host", "127.0.0.1", "--port", api.base.rsplit(":", 1)[1])
    processes.start("scheduler", "scheduler")
    # The workers start with the API, not after the submission, so their start-up (torch,
    # the dataset) overlaps the API's; they wait for work, and the demo stops them when done.
    names = [f"worker-{i + 1}" for i in range(workers)]
    for name in names:
        processes.start(name, "worker")
    _wait_until_up(api, processes)
    say(f"api        {api.base}/docs")
    say(f"dashboard  {api.base}/dashboard   (live while the demo runs)")
    say(
        f"token      {api.token}   (writes: 'Authorization: Bearer <token>', or the password "
        "of the dashboard's login prompt)"
    )
    say(f"workers    {workers}, logs in {processes.log_dir}")

    created = api.json("POST", "/api/v1/campaigns", body, expect=201)
    detail = api.json("GET", f"/api/v1/campaigns/{created['name']}")
    overrides = body["overrides"]
    say(
        f"submitted  {created['name']}: paper-robustness on {overrides['task']}, "
        f"{detail['total']} trials in {len(created['arms'])} arms "
        f"({_count(len(overrides['seeds']), 'seed')}, "
        f"{_count(overrides['budget']['epochs'], 'epoch')} each)\n"
    )
    _watch(api, processes, names, started, out)
    for name in names:
        code = processes.stop(name, timeout=60)
        if code not in (0, -signal.SIGTERM):
            raise DemoFailed(f"{name} exited with status {code}\n{processes.tail(name)}")

    report = api.json("GET", f"/api/v1/campaigns/{DEMO_CAMPAIGN}/report")
    status, html = api.call("GET", f"/api/v1/campaigns/{DEMO_CAMPAIGN}/report?format=html")
    if status != 200:
        raise DemoFailed(f"the HTML report answered {status}: {html[:300]!r}")
    (processes.log_dir.parent / "report.html").write_bytes(html)
    return report


@dataclass
class _Say:
    out: TextIO

    def __call__(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
