"""Scale benchmark: 100, 300 and 1,000 concurrent workers on one PostgreSQL behind PgBouncer.

Each simulated worker is what a worker process is to the database, without the training:
its own engine as the product opens it (``open_engine``: one connection, statements never
prepared), hence its own client connection to PgBouncer, and a loop of real claims
(``claim_waiting_trial``), one heartbeat (``beat``) and real finishes (``finish_trial``)
through the storage adapter, on a trivial objective, until the campaign's queue is empty.
On a small machine the workers are threads, spread over a few processes.

Checked, for every size (a failure exits non-zero):

- every queued trial is COMPLETE exactly once: no trial won by two claims, every finish
  accepted, no trial left WAITING, RUNNING or FAIL;
- PgBouncer never holds more server connections than its pool (``SHOW POOLS``), and
  PostgreSQL never shows more than that for the database (``pg_stat_activity``), both <= 100.

Printed as one table: claim and finish latency (p50, p99), trials per second.

A second table: one worker's claim + beat + finish per trial, on a direct connection with
psycopg's default ``prepare_threshold=5`` and with boundsweep's ``None`` (what never preparing
costs), and through PgBouncer (what the extra hop costs); interleaved rounds, medians, ratios
to the first.

Needs PgBouncer (``make pgbouncer``); creates and drops its own database on the tests'
PostgreSQL (``benchmarks/_postgres.py``). ``python benchmarks/bench_scale.py [--workers 100
300 1000] [--trials-per-worker 3] [--processes 4] [--pool 40]``. ``tests/benchmarks/
test_bench_scale.py`` runs a small version (20 workers).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boundsweep.studies.campaign import CampaignSpec  # noqa: E402
from boundsweep.studies.storage import (  # noqa: E402
    beat,
    campaign_progress,
    campaign_study_ids,
    claim_waiting_trial,
    create_campaign,
    engine_of,
    finish_trial,
    open_engine,
    open_storage,
)

from benchmarks._pgbouncer import PgBouncer, pgbouncer  # noqa: E402
from benchmarks._postgres import admin_url, postgres_database, postgres_server  # noqa: E402

ARMS = ("sgdm", "adam", "adamw", "adabound")
SEEDS = 10
SERVER_CONNECTION_LIMIT = 100
"""PostgreSQL's default ``max_connections``: what the pool must stay under."""


def scale_spec(name: str, trials: int) -> CampaignSpec:
    """A campaign of at least ``trials`` queued trials over four grid arms."""
    per_arm = -(-trials // len(ARMS))
    grid = [round(1e-4 * (i + 1), 6) for i in range(-(-per_arm // SEEDS))]
    return CampaignSpec.model_validate(
        {
            "name": name,
            "task": "digits_mlp",
            "seeds": list(range(SEEDS)),
            "budget": {"epochs": 1},
            "arms": [{"optimizer": arm, "space": {"lr": {"grid": grid}}} for arm in ARMS],
        }
    )


@dataclass
class WorkerLog:
    """What the simulated workers of one process did."""

    claimed: list[int] = field(default_factory=list)
    finished: int = 0
    rejected: int = 0
    claim_ms: list[float] = field(default_factory=list)
    finish_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _simulated_worker(
    url: str, study_ids: list[int], start: threading.Event, log: WorkerLog
) -> None:
    engine = open_engine(url)  # the product's engine: one connection, nothing prepared
    rng = random.Random()
    try:
        with engine.connect() as conn:  # connected (and PgBouncer's client) before the start
            conn.execute(sa.text("SELECT 1"))
        start.wait()
        arms = list(study_ids)
        while arms:
            study_id = rng.choice(arms)
            began = time.perf_counter()
            trial_id = claim_waiting_trial(engine, study_id)
            claimed = time.perf_counter()
            if trial_id is None:
                arms.remove(study_id)
                continue
            log.claim_ms.append((claimed - began) * 1000)
            log.claimed.append(trial_id)
            beat(engine, [trial_id])
            value = rng.random()  # the trivial objective
            began = time.perf_counter()
            won = finish_trial(engine, trial_id, value)
            log.finish_ms.append((time.perf_counter() - began) * 1000)
            if won:
                log.finished += 1
            else:
                log.rejected += 1
    except Exception as exc:  # reported and counted as a failure of the run
        log.errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()


def _process(url: str, study_ids: list[int], workers: int, ready, go, results) -> None:  # noqa: ANN001
    """One process: ``workers`` threads, each a simulated worker with its own connection."""
    start = threading.Event()
    logs = [WorkerLog() for _ in range(workers)]
    threads = [
        threading.Thread(target=_simulated_worker, args=(url, study_ids, start, log))
        for log in logs
    ]
    for thread in threads:
        thread.start()
    ready.release()
    go.wait()
    start.set()
    for thread in threads:
        thread.join()
    merged = WorkerLog()
    for log in logs:
        merged.claimed += log.claimed
        merged.finished += log.finished
        merged.rejected += log.rejected
        merged.claim_ms += log.claim_ms
        merged.finish_ms += log.finish_ms
        merged.errors += log.errors
    results.put(merged)


@dataclass
class ScaleResult:
    workers: int
    trials: int
    seconds: float
    claim_ms: list[float]
    finish_ms: list[float]
    max_server_connections: int
    max_backends: int
    max_clients: int
    problems: list[str]

    @property
    def trials_per_second(self) -> float:
        return self.trials / self.seconds


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def run_scale(
    server_url: str,
    bouncer: PgBouncer,
    workers: int,
    trials_per_worker: int = 3,
    processes: int = 4,
) -> ScaleResult:
    """``workers`` simulated workers over ``processes`` processes through ``bouncer``, on a
    fresh campaign of ``workers * trials_per_worker`` trials in the database ``server_url``."""
    name = f"scale-{workers}"
    storage = open_storage(server_url)
    spec = scale_spec(name, workers * trials_per_worker)
    create_campaign(storage, spec)
    study_ids = list(campaign_study_ids(storage, name).values())
    total = sum(row.total for row in campaign_progress(storage, name))
    database = sa.make_url(server_url).database
    pooled = bouncer.url(server_url)
    engine_of(storage).dispose()  # only the workers' connections while they run

    context = multiprocessing.get_context("fork")
    ready, go, results = context.Semaphore(0), context.Event(), context.Queue()
    sizes = [workers // processes + (i < workers % processes) for i in range(processes)]
    children = [
        context.Process(target=_process, args=(pooled, study_ids, n, ready, go, results))
        for n in sizes
        if n
    ]
    for child in children:
        child.start()
    for _ in children:
        ready.acquire()

    peaks = {"server": 0, "backends": 0, "clients": 0}
    stop = threading.Event()
    admin = sa.create_engine(admin_url(), poolclass=sa.NullPool)

    def watch() -> None:
        backends = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db")
        with admin.connect() as conn:
            while not stop.is_set():
                pools = [p for p in bouncer.show("POOLS") if p["database"] == database]
                server = sum(
                    p["sv_active"] + p["sv_idle"] + p["sv_used"] + p["sv_tested"] + p["sv_login"]
                    for p in pools
                )
                clients = sum(p["cl_active"] + p["cl_waiting"] for p in pools)
                count = conn.execute(backends, {"db": database}).scalar_one()
                conn.rollback()
                peaks["server"] = max(peaks["server"], server)
                peaks["clients"] = max(peaks["clients"], clients)
                peaks["backends"] = max(peaks["backends"], count)
                stop.wait(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    began = time.perf_counter()
    go.set()
    logs = [results.get() for _ in children]
    seconds = time.perf_counter() - began
    for child in children:
        child.join()
    stop.set()
    watcher.join()
    admin.dispose()

    claimed = [trial_id for log in logs for trial_id in log.claimed]
    problems = [error for log in logs for error in log.errors][:5]
    if len(claimed) != len(set(claimed)):
        problems.append(f"{len(claimed) - len(set(claimed))} trial(s) claimed twice")
    finished = sum(log.finished for log in logs)
    if finished != total or len(set(claimed)) != total:
        problems.append(f"{finished} finished, {len(set(claimed))} claimed, {total} queued")
    if any(log.rejected for log in logs):
        problems.append(f"{sum(log.rejected for log in logs)} finish(es) rejected")
    for row in campaign_progress(storage, name):
        if (row.complete, row.waiting, row.running, row.fail) != (row.total, 0, 0, 0):
            problems.append(f"arm {row.arm}: {row}")
    bound = min(bouncer.pool_size, SERVER_CONNECTION_LIMIT)
    if peaks["server"] > bound or peaks["backends"] > bound:
        problems.append(
            f"{peaks['server']} server connections (PgBouncer), {peaks['backends']} backends "
            f"(PostgreSQL): more than {bound}"
        )
    if not peaks["clients"]:
        problems.append("PgBouncer never saw a client: the workers did not go through it")
    return ScaleResult(
        workers=workers,
        trials=total,
        seconds=seconds,
        claim_ms=[ms for log in logs for ms in log.claim_ms],
        finish_ms=[ms for log in logs for ms in log.finish_ms],
        max_server_connections=peaks["server"],
        max_backends=peaks["backends"],
        max_clients=peaks["clients"],
        problems=problems,
    )


def single_worker_cost(
    server_url: str, bouncer: PgBouncer, trials: int = 100, rounds: int = 6
) -> dict[str, float]:
    """Per-trial milliseconds of one worker's claim + beat + finish, medians of ``rounds``
    interleaved rounds of ``trials`` trials each: on a direct connection with psycopg's
    default ``prepare_threshold=5`` and with boundsweep's ``None``, and through PgBouncer."""
    storage = open_storage(server_url)
    create_campaign(storage, scale_spec("single", trials * rounds * 3))
    study_ids = list(campaign_study_ids(storage, "single").values())
    engine_of(storage).dispose()
    ways = {
        "direct, prepared after 5 runs": (server_url, 5),
        "direct, never prepared": (server_url, None),
        "through PgBouncer, never prepared": (bouncer.url(server_url), None),
    }
    times: dict[str, list[float]] = {way: [] for way in ways}
    for round_ in range(rounds):
        order = list(ways) if round_ % 2 else list(reversed(ways))
        for way in order:
            url, threshold = ways[way]
            engine = sa.create_engine(
                url,
                pool_size=1,
                max_overflow=0,
                pool_pre_ping=True,
                connect_args={"prepare_threshold": threshold, "application_name": "bench"},
            )
            began = time.perf_counter()
            for i in range(trials):
                trial_id = claim_waiting_trial(engine, study_ids[i % len(study_ids)])
                assert trial_id is not None
                beat(engine, [trial_id])
                finish_trial(engine, trial_id, 0.5)
            times[way].append((time.perf_counter() - began) / trials * 1000)
            engine.dispose()
    return {way: statistics.median(values) for way, values in times.items()}


def _raise_open_files() -> None:
    """One file per client connection (a thread each): the soft limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--trials-per-worker", type=int, default=3)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--pool", type=int, default=40, help="PgBouncer's server connections")
    parser.add_argument("--no-single", action="store_true", help="skip the one-worker table")
    args = parser.parse_args()
    _raise_open_files()
    failed = False
    rows = []
    with (
        postgres_server(),
        pgbouncer(
            admin_url(), pool_size=args.pool, max_client_conn=max(args.workers) + 100
        ) as bouncer,
    ):
        for workers in args.workers:
            with postgres_database(prefix="bs_scale") as url:
                result = run_scale(url, bouncer, workers, args.trials_per_worker, args.processes)
            rows.append(result)
            for problem in result.problems:
                print(f"FAIL ({workers} workers): {problem}", file=sys.stderr)
                failed = True
        print(
            f"\n{len(rows) and rows[0].trials // rows[0].workers} trials per worker, "
            f"{args.processes} processes, PgBouncer transaction mode, pool {args.pool}\n"
        )
        print(
            f"{'workers':>8} {'trials':>7} {'exactly once':>12} {'server conns':>12} "
            f"{'backends':>8} {'clients':>8} {'claim p50':>10} {'claim p99':>10} "
            f"{'finish p50':>10} {'finish p99':>10} {'trials/s':>9}"
        )
        for r in rows:
            print(
                f"{r.workers:>8} {r.trials:>7} {'yes' if not r.problems else 'NO':>12} "
                f"{r.max_server_connections:>12} {r.max_backends:>8} {r.max_clients:>8} "
                f"{_percentile(r.claim_ms, 50):>8.1f}ms {_percentile(r.claim_ms, 99):>8.1f}ms "
                f"{_percentile(r.finish_ms, 50):>8.1f}ms {_percentile(r.finish_ms, 99):>8.1f}ms "
                f"{r.trials_per_second:>9.0f}"
            )
        if not args.no_single:
            with postgres_database(prefix="bs_scale") as url:
                costs = single_worker_cost(url, bouncer)
            base = costs["direct, prepared after 5 runs"]
            print("\none worker, claim + beat + finish per trial:")
            for way, ms in costs.items():
                print(f"  {way:<36} {ms:6.2f} ms  ratio {ms / base:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
