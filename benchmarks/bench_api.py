"""Load benchmark of `GET /api/v1/campaigns/{name}` with 5,000 trials stored.

For SQLite and PostgreSQL (the tests' server, or one of its own): stores one campaign of 5 arms
and 5,000 trials (mostly finished, some waiting and running) through Optuna's own storage API,
serves the real app with uvicorn in a separate process, and fires requests from several client
threads. Prints p50/p95/p99 of the status endpoint next to `/healthz` measured in the same run
(the ratio is what our SQL costs over an empty request), and what Optuna's own path
(`get_n_trials`, `get_all_study_summaries`) would cost for the same numbers.

    .venv/bin/python benchmarks/bench_api.py [--requests 800] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import optuna
import sqlalchemy as sa
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
)
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from boundsweep.service.db import make_engine, migrate  # noqa: E402
from boundsweep.studies.campaign import CampaignSpec  # noqa: E402
from boundsweep.studies.storage import (  # noqa: E402
    add_finished_trials,
    arm_progress,
    arm_study_name,
    create_campaign,
    open_storage,
    study_id_of,
)

from benchmarks._postgres import postgres_database, postgres_server  # noqa: E402

TOTAL_TRIALS = 5_000
ARMS = ("adabound", "amsbound", "adam", "amsgrad", "sgdm")
QUEUED_PER_ARM = 40  # WAITING slots create_campaign enqueues
RUNNING_PER_ARM = 2
CAMPAIGN = "bench-5k"


def _spec() -> CampaignSpec:
    return CampaignSpec.model_validate(
        {
            "name": CAMPAIGN,
            "task": "digits_mlp",
            "seeds": [0, 1, 2],
            "arms": [
                {
                    "optimizer": arm,
                    "space": {"lr": {"low": 1e-4, "high": 1e-1, "log": True}},
                    "sampler": "random",
                    "n_trials": QUEUED_PER_ARM,
                }
                for arm in ARMS
            ],
        }
    )


def _finished_trials(count: int) -> list[optuna.trial.FrozenTrial]:
    """`count` finished trials (one in ten pruned) as a worker leaves them."""
    start = datetime(2026, 1, 1)  # Optuna stores naive UTC
    lr = FloatDistribution(1e-4, 1e-1, log=True)
    seed = CategoricalDistribution([0, 1, 2])  # as the objective suggests it (index = seed)
    trials = []
    for i in range(count):
        value = 0.5 + (i % 97) / 200
        complete = bool(i % 10)
        trials.append(
            optuna.trial.create_trial(
                state=TrialState.COMPLETE if complete else TrialState.PRUNED,
                value=value if complete else None,
                params={"lr": 10 ** (-4 + 3 * (i % 50) / 50), "seed": i % 3},
                distributions={"lr": lr, "seed": seed},
                user_attrs={
                    "seed": i % 3,
                    "status": "completed",
                    "val_metric": value,
                    "wall_time": 20.0,
                },
                intermediate_values={step: value - 0.1 / step for step in (1, 2)},
            )
        )
        trials[-1].datetime_start = start
        trials[-1].datetime_complete = start + timedelta(seconds=20 + i % 7)
    return trials


def store_campaign(url: str) -> float:
    """Create the campaign and fill it to 5,000 trials; returns the seconds it took."""
    began = time.perf_counter()
    migrate(url)
    storage = open_storage(url)
    create_campaign(storage, _spec())
    per_arm = TOTAL_TRIALS // len(ARMS) - QUEUED_PER_ARM - RUNNING_PER_ARM
    engine = make_engine(url)
    for arm in ARMS:
        study_id = storage.get_study_id_from_name(arm_study_name(CAMPAIGN, arm))
        for _ in range(RUNNING_PER_ARM):
            storage.create_new_trial(study_id)
        # Study.add_trials would take minutes for 5,000 on a busy PostgreSQL.
        add_finished_trials(storage, study_id, _finished_trials(per_arm))
    with engine.connect() as connection:
        stored = connection.scalar(sa.text("SELECT count(*) FROM trials"))
    engine.dispose()
    assert stored == TOTAL_TRIALS, stored
    return time.perf_counter() - began


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(url: str, port: int, cache_seconds: float) -> subprocess.Popen:
    code = (
        "import uvicorn; from boundsweep.service.app import create_app; from boundsweep.service.settings import Settings;"
        f"uvicorn.run(create_app(Settings(database_url={url!r}, dashboard=False,"
        f" status_cache_seconds={cache_seconds})),"
        f" host='127.0.0.1', port={port}, log_level='warning')"
    )
    server = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parent.parent)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not start within 120 s")


def _load(base: str, path: str, requests: int, concurrency: int) -> list[float]:
    """Latencies (ms) of `requests` GETs of `path` from `concurrency` client threads."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = requests // concurrency

    def client() -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            http.get(path).raise_for_status()  # warm the connection
            mine = []
            for _ in range(per_thread):
                t0 = time.perf_counter()
                http.get(path).raise_for_status()
                mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def _percentiles(latencies: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return q[49], q[94], q[98]


def _median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _naive_vs_sql(url: str) -> None:
    storage = open_storage(url)
    names = [arm_study_name(CAMPAIGN, arm) for arm in ARMS]
    studies = [optuna.load_study(study_name=n, storage=storage) for n in names]

    def optuna_counts() -> None:
        for study in studies:
            for state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING):
                storage.get_n_trials(study_id_of(study), state=(state,))

    def optuna_summaries() -> None:
        optuna.get_all_study_summaries(storage)

    engine = make_engine(url)

    def ours() -> None:
        arm_progress(engine, CAMPAIGN)

    sql = _median_seconds(ours, 20)
    counts = _median_seconds(optuna_counts, 3)
    summaries = _median_seconds(optuna_summaries, 3)
    print(f"  in-process, {TOTAL_TRIALS} trials, median:")
    print(f"    read model arm_progress             {sql * 1000:9.1f} ms   (baseline)")
    print(
        f"    optuna get_n_trials x3 states x5 arms {counts * 1000:9.1f} ms   ({counts / sql:6.1f}x)"
    )
    print(
        f"    optuna get_all_study_summaries        {summaries * 1000:9.1f} ms   ({summaries / sql:6.1f}x)"
    )
    engine.dispose()


def _measure(url: str, cache_seconds: float, requests: int, concurrency: int) -> None:
    port = _free_port()
    server = _serve(url, port, cache_seconds)
    try:
        base = f"http://127.0.0.1:{port}"
        health = _load(base, "/healthz", requests, concurrency)
        status = _load(base, f"/api/v1/campaigns/{CAMPAIGN}", requests, concurrency)
        body = httpx.get(f"{base}/api/v1/campaigns/{CAMPAIGN}").json()
        assert body["total"] == TOTAL_TRIALS, body["total"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    h50, h95, h99 = _percentiles(health)
    s50, s95, s99 = _percentiles(status)
    cache = f"status cache {cache_seconds:g} s" if cache_seconds else "no status cache"
    print(f"  HTTP, {len(status)} requests, {concurrency} concurrent clients, {cache}:")
    print(
        f"    GET /healthz                    p50 {h50:6.1f}  p95 {h95:6.1f}  p99 {h99:6.1f} ms (baseline)"
    )
    print(
        f"    GET /api/v1/campaigns/{CAMPAIGN}  p50 {s50:6.1f}  p95 {s95:6.1f}  p99 {s99:6.1f} ms"
    )
    print(
        f"    ratio to /healthz               p50 {s50 / h50:6.2f}x p95 {s95 / h95:6.2f}x p99 {s99 / h99:6.2f}x"
    )
    print(f"    goal p99 < 100 ms: {'met' if s99 < 100 else 'NOT met'}")


def bench(label: str, url: str, requests: int, concurrency: int) -> None:
    print(f"== {label}")
    print(f"  stored {TOTAL_TRIALS} trials in {store_campaign(url):.1f} s")
    _measure(url, 0.0, requests // 4, 1)  # one client: the query's own latency, no queueing
    _measure(url, 0.0, requests, concurrency)  # every request runs the queries
    _measure(url, 1.0, requests, concurrency)  # the service default
    _naive_vs_sql(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        bench("SQLite", f"sqlite:///{tmp}/bench.db", args.requests, args.concurrency)
    with postgres_server() as server, postgres_database() as url:
        print(server.describe())
        bench("PostgreSQL", url, args.requests, args.concurrency)


if __name__ == "__main__":
    main()
