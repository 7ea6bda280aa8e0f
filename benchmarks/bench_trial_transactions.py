"""What a trial's lifecycle costs the database: transactions and statements per worker run.

Runs the real worker in this process (so a SQLAlchemy event listener on every engine sees each
transaction it begins and each statement it sends) on a fresh campaign of 14 ``digits_mlp``
trials (one grid arm, a tiny budget), twice per database:

- batched: one worker claims the 14 trials as one batch, trains them together, finishes them;
- one by one: one worker runs the same 14 trials one at a time (``--batch-trials 1``); the
  figure per single trial is the run's total over 14.

Each count is the whole ``Worker.run()``: start-up reads (the open arms, the spec, the study),
the stale sweep, the claims, the records and the finishes; "from claim" counts from the first
claim on (the trials' own lifecycle), and the per-trial figures are those over 14. The
heartbeat interval is longer than the run, so no heartbeat is counted (a batch beats in one
statement per interval).

    .venv/bin/python benchmarks/bench_trial_transactions.py [--statements]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from boundsweep.studies.campaign import CampaignSpec  # noqa: E402
from boundsweep.studies.storage import create_campaign, open_storage  # noqa: E402
from boundsweep.workers import Worker, WorkerConfig  # noqa: E402

from benchmarks._db_calls import DatabaseCalls, counting  # noqa: E402
from benchmarks._postgres import postgres_database, postgres_server  # noqa: E402

TRIALS = 14


def spec(name: str, trials: int = TRIALS) -> CampaignSpec:
    """One grid arm of ``trials`` learning rates on ``digits_mlp``, one short epoch each."""
    return CampaignSpec.model_validate(
        {
            "name": name,
            "task": "digits_mlp",
            "seeds": [0],
            "budget": {"epochs": 1, "data_fraction": 0.2},
            "arms": [
                {
                    "optimizer": "adam",
                    "space": {"lr": {"grid": [round(1e-3 * (i + 1), 6) for i in range(trials)]}},
                }
            ],
        }
    )


def measure(url: str, name: str, batch_trials: int, trials: int = TRIALS) -> DatabaseCalls:
    """Counts of one worker that runs a fresh ``trials``-trial campaign to the end."""
    storage = open_storage(url)
    create_campaign(storage, spec(name, trials))
    config = WorkerConfig(
        storage_url=url,
        until_idle=True,
        heartbeat_interval=60,
        poll_interval=0.05,
        campaigns=[name],
        batch_trials=batch_trials,
        max_trials=trials,
    )
    worker = Worker(config)
    with counting() as calls:
        ran = worker.run()
    assert ran == trials and worker.stats.complete == trials, worker.stats
    storage.engine.dispose()
    worker.storage.engine.dispose()
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", action="store_true", help="list the counted statements")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        rows.append(("SQLite", "batch of 14", measure(url, "batched", TRIALS)))
        rows.append(("SQLite", "14 one by one", measure(url, "single", 1)))
    with postgres_server(), postgres_database() as url:
        rows.append(("PostgreSQL", "batch of 14", measure(url, "batched", TRIALS)))
        rows.append(("PostgreSQL", "14 one by one", measure(url, "single", 1)))
    print(
        f"{'database':<12}{'run':<16}{'transactions':>14}{'statements':>12}"
        f"{'from claim: tx':>16}{'stmt':>6}{'tx/trial':>10}{'stmt/trial':>12}"
    )
    for db, run, calls in rows:
        tx, stmt = calls.from_first_claim()
        print(
            f"{db:<12}{run:<16}{calls.transactions:>14}{calls.statements:>12}"
            f"{tx:>16}{stmt:>6}{tx / TRIALS:>10.1f}{stmt / TRIALS:>12.1f}"
        )
    if args.statements:
        for db, run, calls in rows:
            print(f"\n{db}, {run}:")
            for text in calls.texts:
                print("  ", text)


if __name__ == "__main__":
    main()
