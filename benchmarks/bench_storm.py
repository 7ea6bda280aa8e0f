"""A kill storm on batched workers: every trial COMPLETE exactly once, no FAIL without its copy.

Real worker processes (``python -m boundsweep.workers --batch-trials K``) run a ``digits_mlp``
grid campaign on PostgreSQL while the storm, round after round, picks a worker that holds a
RUNNING trial (it is the trial's recorded claimer) and either sends it ``kill -9`` at once, or
SIGTERM followed by SIGKILL after a random 0.05-0.4 s (the give-back may or may not have
happened by then), and starts a fresh worker in its place. Then a last worker runs what is left (stale trials included) to the end.

Checked at the end: every planned configuration is COMPLETE exactly once, nothing is WAITING
or RUNNING, and every FAIL has its WAITING copy (some later attempt names it as its
``boundsweep:previous``): a SIGKILL between a FAIL and its copy would leave one without.

    .venv/bin/python benchmarks/bench_storm.py [--workers 4] [--rounds 40] [--grid 6]

The suite runs a small storm (``tests/workers/test_storm.py``).
"""

from __future__ import annotations

import argparse
import random
import signal
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from boundsweep.studies.campaign import CampaignSpec  # noqa: E402
from boundsweep.studies.storage import (  # noqa: E402
    CLAIMER_ATTR,
    campaign_progress,
    create_campaign,
    open_storage,
)
from optuna.trial import TrialState  # noqa: E402

from benchmarks._postgres import postgres_database, postgres_server  # noqa: E402
from benchmarks._worker_process import WorkerProcess  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PREVIOUS = "boundsweep:previous"
HOST = socket.gethostname()


def spec(name: str, grid: int, seeds: int, epochs: int) -> CampaignSpec:
    """Two grid arms of ``grid`` values x ``seeds`` seeds on ``digits_mlp``."""
    lrs = [round(0.01 * 1.7**i, 6) for i in range(grid)]
    return CampaignSpec.model_validate(
        {
            "name": name,
            "task": "digits_mlp",
            "seeds": list(range(seeds)),
            "budget": {"epochs": epochs, "data_fraction": 0.3},
            "arms": [
                {"optimizer": "adabound", "space": {"final_lr": {"grid": lrs}}},
                {"optimizer": "sgdm", "space": {"lr": {"grid": lrs}}},
            ],
        }
    )


@dataclass
class StormResult:
    """What the storm did and what it left."""

    trials: int
    """Planned trials."""
    kills: int
    """Plain ``kill -9``s."""
    terms: int
    """SIGTERMs each followed by a SIGKILL 0.05-0.4 s later."""
    hits: int
    """Rounds whose victim, once dead, had left a trial RUNNING or given one back as FAIL."""
    complete_once: bool
    """Every planned configuration COMPLETE exactly once, nothing WAITING or RUNNING."""
    fails: int
    """FAIL attempts (killed or given back)."""
    fails_without_copy: int
    """FAIL attempts that no later attempt names as its previous one (must be 0)."""
    seconds: float


def storm(
    url: str,
    *,
    workers: int = 2,
    rounds: int = 6,
    grid: int = 4,
    seeds: int = 2,
    epochs: int = 40,
    batch: int = 4,
    seed: int = 0,
    timeout: float = 240.0,
) -> StormResult:
    """Run the storm (see the module's doc) on the empty PostgreSQL database at ``url``."""
    rng = random.Random(seed)
    began = time.monotonic()
    storage = open_storage(url)
    campaign = spec("storm", grid, seeds, epochs)
    create_campaign(storage, campaign)
    # Retries never run out: a storm kills far more attempts than a real fault would.
    args = ("--campaign", "storm", "--batch-trials", str(batch), "--max-retries", "1000")
    alive = [WorkerProcess(url, *args, poll_interval=0.2) for _ in range(workers)]
    kills = terms = hits = 0
    try:
        for _ in range(rounds):
            time.sleep(rng.uniform(0.0, 0.3))
            deadline = time.monotonic() + timeout / 2
            victim = None
            while victim is None:
                if not any(r.waiting or r.running for r in campaign_progress(storage, "storm")):
                    break  # the campaign ran out before the storm did
                holders = _holders(storage, campaign)
                holding = [w for w in alive if f"{HOST}:{w.process.pid}" in holders]
                if holding:
                    victim = rng.choice(holding)
                elif time.monotonic() > deadline:
                    raise AssertionError("no worker held a running trial")
                else:
                    time.sleep(0.02)
            if victim is None:
                break
            if rng.random() < 0.5:
                victim.process.send_signal(signal.SIGTERM)
                time.sleep(rng.uniform(0.05, 0.4))
                terms += 1
            else:
                kills += 1
            victim.kill()
            # What the dead worker left RUNNING (its heartbeat gone) or gave back as FAIL:
            # a round that left neither hit a worker between its batches.
            hits += any(
                t.user_attrs.get(CLAIMER_ATTR) == f"{HOST}:{victim.process.pid}"
                for t in _trials(storage, campaign, TrialState.RUNNING, TrialState.FAIL)
            )
            alive.remove(victim)
            alive.append(WorkerProcess(url, *args, poll_interval=0.2))
        for w in alive:  # the survivors finish what they hold, then leave
            w.process.send_signal(signal.SIGTERM)
        for w in alive:
            w.process.wait(timeout=60)
        last = WorkerProcess(url, "--until-idle", *args, poll_interval=0.2)
        code = last.process.wait(timeout=timeout)
        last.kill()
        if code != 0:
            raise AssertionError(f"the last worker exited {code}: {last.log[-3000:]}")
    finally:
        for w in alive:
            w.kill()
    result = _check(storage, campaign, kills, terms, hits, time.monotonic() - began)
    storage.engine.dispose()
    return result


def _trials(
    storage: optuna.storages.RDBStorage, campaign: CampaignSpec, *states: TrialState
) -> list[optuna.trial.FrozenTrial]:
    return [
        trial
        for arm in campaign.arms
        for trial in optuna.load_study(
            study_name=f"{campaign.name}/{arm.name}", storage=storage
        ).get_trials(deepcopy=False, states=states)
    ]


def _holders(storage: optuna.storages.RDBStorage, campaign: CampaignSpec) -> set[str]:
    """The claimers (``host:pid``) of the campaign's RUNNING trials."""
    return {
        t.user_attrs.get(CLAIMER_ATTR, "") for t in _trials(storage, campaign, TrialState.RUNNING)
    }


def _check(
    storage: optuna.storages.RDBStorage,
    campaign: CampaignSpec,
    kills: int,
    terms: int,
    hits: int,
    seconds: float,
) -> StormResult:
    once = True
    fails = orphans = 0
    for arm in campaign.arms:
        trials = optuna.load_study(
            study_name=f"{campaign.name}/{arm.name}", storage=storage
        ).get_trials()
        states = Counter(t.state for t in trials)
        complete = sorted(
            tuple(sorted(t.params.items())) for t in trials if t.state == TrialState.COMPLETE
        )
        planned = sorted(tuple(sorted(p.items())) for p in arm.queued_params(campaign.seeds))
        once &= complete == planned and not states[TrialState.WAITING]
        once &= not states[TrialState.RUNNING]
        named = {t.system_attrs.get(PREVIOUS) for t in trials}
        failed = [t for t in trials if t.state == TrialState.FAIL]
        fails += len(failed)
        orphans += sum(t.number not in named for t in failed)
    total = sum(arm.planned_trials(campaign.seeds) for arm in campaign.arms)
    return StormResult(total, kills, terms, hits, once, fails, orphans, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--grid", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with postgres_server(), postgres_database() as url:
        result = storm(
            url, workers=args.workers, rounds=args.rounds, grid=args.grid, seeds=args.seeds,
            epochs=args.epochs, batch=args.batch, seed=args.seed, timeout=1800,
        )  # fmt: skip
    print(
        f"trials {result.trials}, kill -9 {result.kills}, SIGTERM+SIGKILL {result.terms}, "
        f"rounds that hit a running trial {result.hits}, FAIL attempts {result.fails}, FAIL without a copy {result.fails_without_copy}, "
        f"every trial COMPLETE exactly once: {result.complete_once} ({result.seconds:.0f} s)"
    )
    if not result.complete_once or result.fails_without_copy:
        sys.exit(1)


if __name__ == "__main__":
    main()
