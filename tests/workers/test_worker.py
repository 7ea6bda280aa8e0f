"""Workers against real databases: exact counts under races, crashes, SIGTERM and retries.

Worker processes are started as ``python -m workers`` (the ``boundsweep worker`` code) and
train real ``digits_mlp`` trials with small budgets.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
import torch
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.storage import (
    campaign_progress,
    cancel_campaign,
    create_campaign,
    open_storage,
)
from boundsweep.studies.tasks._mnist import MNIST_FILES
from boundsweep.workers import add_worker_arguments, run_worker, worker_main
from optuna.trial import TrialState

from benchmarks._worker_process import WorkerProcess
from tests.conftest import database_outage

ROOT = Path(__file__).resolve().parents[2]
FAST = {"heartbeat_interval": 1, "grace_period": 3, "poll_interval": 0.2}


def _spec(
    name: str,
    epochs: int,
    *,
    steps: int | None = None,
    grid: int = 3,
    seeds: int = 2,
    sampled: int = 4,
    sgdm: bool = True,
    fraction: float = 1.0,
) -> CampaignSpec:
    lrs = [0.01, 0.03, 0.1, 0.3, 1.0][:grid]
    arms: list[dict] = [
        {"optimizer": "adabound", "space": {"final_lr": {"grid": lrs}}},
    ]
    if sgdm:
        arms.append({"optimizer": "sgdm", "space": {"lr": {"grid": lrs}}})
    if sampled:
        arms.append(
            {
                "optimizer": "adam",
                "sampler": "random",
                "n_trials": sampled,
                "space": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}},
            }
        )
    return CampaignSpec.model_validate(
        {
            "name": name,
            "task": "digits_mlp",
            "seeds": list(range(seeds)),
            "budget": {"epochs": epochs, "max_steps": steps, "data_fraction": fraction},
            "arms": arms,
        }
    )


def _until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def _trials(storage: optuna.storages.RDBStorage, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def _running(storage: optuna.storages.RDBStorage, campaign: str) -> bool:
    return any(row.running for row in campaign_progress(storage, campaign))


def _assert_exact(storage: optuna.storages.RDBStorage, spec: CampaignSpec) -> None:
    """Every planned trial COMPLETE exactly once; nothing waiting, running, lost or doubled."""
    for arm in spec.arms:
        trials = _trials(storage, f"{spec.name}/{arm.name}")
        states = Counter(t.state for t in trials)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        assert states[TrialState.WAITING] == states[TrialState.RUNNING] == 0, states
        assert len(complete) == arm.planned_trials(spec.seeds), (arm.name, states)
        if arm.sampler == "grid":
            done = sorted(tuple(sorted(t.params.items())) for t in complete)
            planned = sorted(tuple(sorted(p.items())) for p in arm.queued_params(spec.seeds))
            assert done == planned  # the exact grid: no duplicate, nothing missing
        else:
            seeds = Counter(t.params["seed"] for t in complete)
            assert seeds == Counter(p["seed"] for p in arm.queued_params(spec.seeds))
    for row in campaign_progress(storage, spec.name):
        assert row.complete == row.total and row.fail == 0 and row.done


@pytest.mark.parametrize(
    ("backend", "n_workers"),
    [pytest.param("postgres", 4, marks=pytest.mark.postgres), ("sqlite", 2)],
)
def test_racing_worker_processes_run_the_exact_grid(
    backend: str, n_workers: int, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    storage = open_storage(url)
    # One by one: batched, these 16 trials are three claims, and a worker whose batch ends
    # before the others poll again may take all three (racing batch claims:
    # tests/workers/test_batch.py).
    workers = [WorkerProcess(url, "--batch-trials", "1") for _ in range(n_workers)]
    try:
        # All workers wait for work before there is any, so they race for the same queue.
        _until(lambda: all("worker on" in w.log for w in workers), 90, "workers to start")
        spec = _spec("race", epochs=1, steps=8)
        create_campaign(storage, spec)
        _until(lambda: all(r.done for r in campaign_progress(storage, "race")), 150, "the grid")
        for worker in workers:
            worker.process.send_signal(signal.SIGTERM)
        assert [w.wait(30) for w in workers] == [0] * n_workers, workers[0].log[-2000:]
    finally:
        for worker in workers:
            worker.kill()
    _assert_exact(storage, spec)
    # Who ran each completed trial (a trial failed as stale under load before its first
    # attrs were written has none).
    ran = Counter(
        t.user_attrs["worker"]
        for arm in spec.arms
        for t in _trials(storage, f"race/{arm.name}")
        if t.state == TrialState.COMPLETE
    )
    assert len(ran) >= 2, ran  # the work was really shared


@pytest.mark.postgres
def test_a_killed_worker_trial_is_failed_and_retried_by_another(postgres_url: str) -> None:
    storage = open_storage(postgres_url)
    spec = _spec("kill", epochs=100, fraction=0.3, grid=1, seeds=1, sampled=0, sgdm=False)
    create_campaign(storage, spec)
    victim = WorkerProcess(postgres_url, "--campaign", "kill")
    try:
        _until(lambda: _running(storage, "kill"), 90, "a trial mid-way")
        victim.process.kill()  # kill -9: no chance to clean up
        victim.wait(10)
        rescuer = WorkerProcess(postgres_url, "--until-idle")
        assert rescuer.wait(150) == 0, rescuer.log[-3000:]
    finally:
        victim.kill()
    assert "stale trial" in rescuer.log
    _assert_exact(storage, spec)
    trials = _trials(storage, "kill/adabound")
    (killed,) = [t for t in trials if t.state == TrialState.FAIL]
    (retry,) = [t for t in trials if t.system_attrs.get("retry_history")]
    assert retry.state == TrialState.COMPLETE
    # The kill may land between the claim and the params' write: the plan is in fixed_params.
    assert retry.params == killed.system_attrs["fixed_params"]
    assert killed.params in ({}, retry.params)
    assert retry.system_attrs["retry_history"] == [killed.number]
    row = campaign_progress(storage, "kill")[0]
    assert (row.complete, row.fail, row.retried) == (1, 0, 1)


@contextlib.contextmanager
def _worker_mid_trial(
    url: str, name: str
) -> Iterator[tuple[optuna.storages.RDBStorage, CampaignSpec, WorkerProcess]]:
    """A one-trial campaign of 200 epochs, and a worker process that has started training it
    (killed at the end of the block if still running)."""
    storage = open_storage(url)
    spec = _spec(name, epochs=200, fraction=0.3, grid=1, seeds=1, sampled=0, sgdm=False)
    create_campaign(storage, spec)
    worker = WorkerProcess(url, "--until-idle")
    try:
        _until(lambda: " epoch 1/200 " in worker.log, 90, "training to start")
        yield storage, spec, worker
    finally:
        worker.kill()


@pytest.mark.postgres
def test_a_result_waits_out_a_database_outage_instead_of_being_trained_again(
    postgres_url: str,
) -> None:
    with _worker_mid_trial(postgres_url, "outage") as (storage, spec, worker):
        with database_outage(postgres_url):
            _until(lambda: "recording the result again" in worker.log, 150, "the result to wait")
        assert worker.wait(120) == 0, worker.log[-3000:]
    assert "outage/adabound #0 complete" in worker.log, worker.log[-3000:]
    assert "Traceback" not in worker.log  # an outage is one line per failed beat
    _assert_exact(storage, spec)
    (trial,) = _trials(storage, "outage/adabound")  # no failed copy: trained once
    assert trial.state == TrialState.COMPLETE
    assert len(trial.intermediate_values) == 200  # the record came with the result


@pytest.mark.postgres
def test_sigterm_during_an_outage_exits_cleanly_and_the_trial_is_retried(
    postgres_url: str,
) -> None:
    with _worker_mid_trial(postgres_url, "term-outage") as (storage, spec, stopped):
        with database_outage(postgres_url):
            stopped.process.send_signal(signal.SIGTERM)
            # It cannot give the trial back, but it still stops as asked, without a traceback.
            assert stopped.wait(60) == 0, stopped.log[-3000:]
        rescuer = WorkerProcess(postgres_url, "--until-idle")
        assert rescuer.wait(150) == 0, rescuer.log[-3000:]
    assert "not given back, database unavailable" in stopped.log
    assert "Traceback" not in stopped.log
    assert "stale trial" in rescuer.log
    _assert_exact(storage, spec)
    states = Counter(t.state for t in _trials(storage, "term-outage/adabound"))
    assert states == {TrialState.FAIL: 1, TrialState.COMPLETE: 1}


def test_sigterm_gives_the_running_trial_back_and_exits_cleanly(sqlite_url: str) -> None:
    storage = open_storage(sqlite_url)
    spec = _spec("term", epochs=100, fraction=0.3, grid=1, seeds=1, sampled=0, sgdm=False)
    create_campaign(storage, spec)

    def terminate_mid_trial() -> None:  # what `kill PID` does to a worker, sent to ourselves
        _until(lambda: _running(storage, "term"), 90, "a trial mid-way")
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_mid_trial)
    killer.start()
    ran = run_worker(sqlite_url, until_idle=True, **FAST)  # returns instead of dying
    killer.join()
    assert ran == 1
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handler restored
    trials = _trials(storage, "term/adabound")
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[1].params == trials[0].params
    assert trials[1].system_attrs["retry_history"] == []  # a stop is not the trial's fault
    assert trials[1].system_attrs["boundsweep:interrupted"] == 1

    assert run_worker(sqlite_url, until_idle=True, **FAST) == 1
    assert [t.state for t in _trials(storage, "term/adabound")][-1] == TrialState.COMPLETE
    row = campaign_progress(storage, "term")[0]
    assert (row.complete, row.fail, row.retried) == (1, 0, 1)


def test_single_sqlite_worker_is_fair_across_arms_and_campaigns(sqlite_url: str) -> None:
    storage = open_storage(sqlite_url)
    first = _spec("one", epochs=1, steps=3, grid=1, sampled=2)
    second = _spec("two", epochs=1, steps=3, grid=1, sampled=0)
    create_campaign(storage, first)
    create_campaign(storage, second)
    # One by one (a batched worker takes an arm's queue at once: tests/workers/test_batch.py).
    assert run_worker(sqlite_url, max_trials=5, batch_trials=1, **FAST) == 5
    started = {(r.campaign, r.arm): r.complete for r in campaign_progress(storage, "one")}
    started |= {(r.campaign, r.arm): r.complete for r in campaign_progress(storage, "two")}
    # 2 + 2 + 2 planned in "one", 2 + 2 in "two": 5 trials spread one to each arm.
    assert started == dict.fromkeys(started, 1)
    assert run_worker(sqlite_url, until_idle=True, **FAST) == 5
    _assert_exact(storage, first)
    _assert_exact(storage, second)


def test_crashing_trials_are_retried_then_reported_failed(sqlite_url: str, tmp_path) -> None:
    storage = open_storage(sqlite_url)
    spec = _spec("crash", epochs=1, steps=2, grid=1, seeds=1, sampled=0)
    create_campaign(storage, spec.model_copy(update={"task": "mnist_mlp"}))
    # MNIST files that are there but not in the idx format make loading raise inside the
    # objective: a real crash. (A missing file or device is a setup error: test_setup_errors.)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        (raw / name).write_bytes(b"not an idx file")
    ran = run_worker(
        sqlite_url, until_idle=True, max_retries=1, data_dir=str(tmp_path), batch_trials=1, **FAST
    )
    assert ran == 4
    for row in campaign_progress(storage, "crash"):
        assert (row.complete, row.waiting, row.running, row.fail, row.retried) == (0, 0, 0, 1, 1)


def test_cancelled_campaigns_are_left_as_they_are(sqlite_url: str) -> None:
    storage = open_storage(sqlite_url)
    create_campaign(storage, _spec("off", epochs=1, grid=1, seeds=1, sampled=0))
    cancel_campaign(storage, "off")
    assert run_worker(sqlite_url, until_idle=True, **FAST) == 0
    assert all(r.waiting == r.total == 1 for r in campaign_progress(storage, "off"))


def test_cli_refuses_bad_options_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="boundsweep worker")
    parser.add_argument("--storage")
    add_worker_arguments(parser)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--device", "gpu0"])
    assert info.value.code == 2
    assert "invalid device 'gpu0'; valid: cpu, cuda, cuda:N" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--max-retries", "-1"])
    assert "--max-retries: expected a number >= 0, got -1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--heartbeat-interval", "0"])
    assert "--heartbeat-interval: expected a number >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--storage-patience", "-5"])
    assert "--storage-patience: expected a finite number >= 0, got -5" in capsys.readouterr().err
    # Its own trials would go stale between its beats: refused before anything is claimed.
    args = parser.parse_args(
        ["--storage", "sqlite://", "--heartbeat-interval", "5", "--grace-period", "5"]
    )
    assert worker_main(args) == 2
    assert "--grace-period 5 must be longer than --heartbeat-interval 5" in capsys.readouterr().err
    if torch.cuda.is_available():
        return
    args = parser.parse_args(["--storage", "sqlite://", "--gpus", "all"])
    assert worker_main(args) == 2
    assert "--gpus: no CUDA device is visible" in capsys.readouterr().err


def test_python_m_workers_says_in_one_line_what_is_wrong_with_the_storage(
    tmp_path: Path,
) -> None:
    # The message itself is `boundsweep`'s (tests/service/test_cli.py covers its cases); here
    # the worker's own entry point, which `--gpus` starts per GPU, uses it too.
    cases = [
        ([], {"BOUNDSWEEP_DATABASE_URL": "nope"}, 2, "BOUNDSWEEP_DATABASE_URL 'nope' is not a"),
        (
            ["--storage", "postgresql+psycopg://bs:hunter2@127.0.0.1:1/bs"],
            {},
            1,
            "cannot use the database postgresql+psycopg://bs:***@127.0.0.1:1/bs: ",
        ),
    ]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "boundsweep.workers", "--until-idle", *args],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, env, _, _ in cases
    ]
    for process, (_, _, status, message) in zip(processes, cases, strict=True):
        _, err = process.communicate(timeout=120)
        assert process.returncode == status, err
        assert err.startswith(f"python -m workers: error: {message}"), err
        assert len(err.strip().splitlines()) == 1 and "hunter2" not in err


def test_a_hopeless_trial_is_pruned_and_counts_as_finished(sqlite_url: str) -> None:
    storage = open_storage(sqlite_url)
    spec = CampaignSpec.model_validate(
        {
            "name": "prune",
            "task": "digits_mlp",
            "seeds": [0],
            "budget": {"epochs": 3, "data_fraction": 0.5},
            "pruner": "median",
            # The first learns (accuracy ~0.9 after an epoch), the second barely moves.
            "arms": [{"optimizer": "sgdm", "space": {"lr": {"grid": [0.3, 1e-4]}}}],
        }
    )
    create_campaign(storage, spec)
    assert run_worker(sqlite_url, until_idle=True, **FAST) == 2
    good, hopeless = _trials(storage, "prune/sgdm")
    assert good.state == TrialState.COMPLETE and len(good.intermediate_values) == 3
    assert hopeless.state == TrialState.PRUNED
    assert hopeless.user_attrs["status"] == "pruned" and len(hopeless.user_attrs["curve"]) == 1
    (row,) = campaign_progress(storage, "prune")
    assert (row.complete, row.pruned, row.fail, row.done) == (1, 1, 0, True)
