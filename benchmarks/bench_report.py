"""Time the robustness report at 81 and 1,000 trials: in process, on the command line, over HTTP.

Two synthetic paper-robustness campaigns in fresh SQLite files, with 20-epoch curves:

* 81 trials, the demo's shape (``boundsweep demo``): AdaBound and AMSBound over 3 final_lr x
  3 gamma, Adam, AMSGrad and SGD-momentum over 3 learning rates, 3 seeds;
* 1,000 trials: 5 final_lr x 7 gamma for the bounded arms, 10 learning rates for the
  baselines, 10 seeds.

For each, three measurements, each beside a baseline taken in the same process at the same
moment (the machine is shared, so absolute times move with its load; the ratios move less):

1. in process: ``analyze_campaign`` and ``render_html`` against Optuna's own read of the same
   trials (``get_trials`` of every arm study), the least any report must do;
2. the command (fresh processes): ``boundsweep report`` (text) and ``--html``, wall time and
   peak memory, against a process that only imports the command (``boundsweep.service.cli``):
   what every command pays before it does anything. The issue's goal for the demo's
   campaign: 1.5 s and 300 MB at low load;
3. the API (``boundsweep serve`` in its own process): the first report (computed), a second
   (from the cache), 8 concurrent HTML reports of a new campaign state, and the server's
   memory, against ``GET /campaigns/{name}`` (status) in the same run.

    python benchmarks/bench_report.py [--sizes 81,1000] [STORAGE_URL CAMPAIGN]

With a storage URL and a campaign name it also times that (real, finished) campaign.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
from boundsweep.studies.robustness import analyze_campaign, render_html  # noqa: E402
from boundsweep.studies.robustness._synthetic import build_synthetic_campaign  # noqa: E402
from boundsweep.studies.storage import arm_studies, open_storage  # noqa: E402

REPEATS = 3
SCRIPT = Path(sys.executable).parent / "boundsweep"
SHAPES = {
    81: {
        "final_lr_grid": [0.03, 0.1, 0.3],
        "gamma_grid": [3e-4, 1e-3, 3e-3],
        "lr_grid": [3e-4, 1e-3, 3e-3],
        "seeds": [0, 1, 2],
    },
    1000: {
        "final_lr_grid": [1e-3, 1e-2, 1e-1, 1.0, 10.0],
        "gamma_grid": [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
        "lr_grid": [1e-6, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 1.0],
        "seeds": list(range(10)),
    },
}


def _median_seconds(action, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_process(url: str, campaign: str) -> None:
    storage = open_storage(url)
    names = [arm.study_name for arm in arm_studies(storage, campaign)]

    def read_trials() -> None:
        for name in names:
            optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)

    report = analyze_campaign(url, campaign)  # warm: imports, the first connection
    render_html(report)
    base = _median_seconds(read_trials)
    analyze = _median_seconds(lambda: analyze_campaign(url, campaign))
    render = _median_seconds(lambda: render_html(report))
    page = render_html(report)
    print(f"  in process   get_trials (baseline) {base * 1000:7.0f} ms")
    print(f"               analyze_campaign      {analyze * 1000:7.0f} ms  {analyze / base:5.2f}x")
    print(
        f"               render_html           {render * 1000:7.0f} ms  {render / base:5.2f}x"
        f"  ({len(page) / 1024:.0f} KiB, {page.count('<svg ')} figures)"
    )


TIME = Path("/usr/bin/time")


def _child(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one fresh process running ``argv``.

    The peak comes from GNU time, which starts the process from its own small one: a process
    started straight from this one inherits, in its rusage, this process's peak (Linux keeps
    the larger ``maxrss`` across ``exec`` of a forked child).
    """
    wrapped = [str(TIME), "-f", "%e %M", *argv] if TIME.exists() else argv
    done = subprocess.run(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 0, (argv, done.stderr)
    if not TIME.exists():
        return float("nan"), float("nan")
    wall, peak_kb = done.stderr.strip().splitlines()[-1].split()
    return float(wall), int(peak_kb) / 1024


def command_line(url: str, campaign: str, folder: Path) -> None:
    runs = {
        "imports (baseline)": [sys.executable, "-c", "import boundsweep.service.cli"],
        "report (text)": [str(SCRIPT), "report", campaign, "--storage", url],
        "report --html": [
            str(SCRIPT), "report", campaign, "--storage", url, "--html", str(folder / "r.html"),
        ],
    }  # fmt: skip
    results: dict[str, list[tuple[float, float]]] = {label: [] for label in runs}
    for _ in range(REPEATS):  # interleaved, so a change of load touches every command alike
        for label, argv in runs.items():
            results[label].append(_child(argv))
    base = statistics.median(wall for wall, _ in results["imports (baseline)"])
    for label, measured in results.items():
        wall = statistics.median(w for w, _ in measured)
        peak = max(m for _, m in measured)
        print(
            f"  command      {label:22s}{wall:7.2f} s   {wall / base:5.2f}x   peak {peak:5.0f} MB"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fetch(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as answer:
        answer.read()
    return time.perf_counter() - start


def _memory_mb(pid: int, field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def over_http(url: str, campaign: str, grow: Callable[[], None]) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNDSWEEP_")}
    server = subprocess.Popen(
        [str(SCRIPT), "serve", "--storage", url, "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1/campaigns/{campaign}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _fetch(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        status = statistics.median(_fetch(base) for _ in range(5))
        before = _memory_mb(server.pid, "VmRSS")
        first = _fetch(f"{base}/report?format=html")
        cached = statistics.median(_fetch(f"{base}/report?format=html") for _ in range(5))
        grow()  # one more finished trial: a new state, so the next report is computed again
        walls: list[float] = []
        threads = [
            threading.Thread(target=lambda: walls.append(_fetch(f"{base}/report?format=html")))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        peak, after = _memory_mb(server.pid, "VmHWM"), _memory_mb(server.pid, "VmRSS")
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(f"  API          status (baseline)     {status * 1000:7.0f} ms")
    print(f"               report html, first    {first * 1000:7.0f} ms  {first / status:7.1f}x")
    print(f"               report html, cached   {cached * 1000:7.0f} ms  {cached / status:7.1f}x")
    print(
        f"               8 at once, new state  {statistics.median(walls) * 1000:7.0f} ms median,"
        f" {max(walls) * 1000:.0f} ms slowest"
    )
    print(
        f"               server memory         {before:5.0f} MB before, {after:5.0f} MB after,"
        f" {peak:5.0f} MB peak"
    )


def _grower(url: str, campaign: str) -> Callable[[], None]:
    """Adds one finished trial to the campaign's sgdm arm each call (a worker finishing)."""

    def grow() -> None:
        study = optuna.load_study(study_name=f"{campaign}/sgdm", storage=url)
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))[0]
        study.add_trial(
            optuna.trial.create_trial(
                params=done.params,
                distributions=done.distributions,
                value=done.value,
                user_attrs=done.user_attrs,
            )
        )

    return grow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="81,1000", help="synthetic campaign sizes (81, 1000)")
    parser.add_argument("given", nargs="*", help="STORAGE_URL CAMPAIGN of a real campaign")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        for size in (int(s) for s in args.sizes.split(",")):
            url = f"sqlite:///{folder}/bench-{size}.db"
            name = f"paper-robustness-{size}"
            made = build_synthetic_campaign(
                url, name, final_lr_matters=False, epochs=20, **SHAPES[size]
            )
            assert made == size, made
            print(f"== {size} trials (synthetic, SQLite)")
            in_process(url, name)
            command_line(url, name, Path(folder))
            over_http(url, name, _grower(url, name))
        if len(args.given) == 2:
            url, name = args.given
            print(f"== {name} ({url})")
            in_process(url, name)
            command_line(url, name, Path(folder))
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
