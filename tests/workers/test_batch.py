"""Batched trials through the real worker and storage: claims, records, kill -9, SIGTERM."""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
from collections import Counter

import optuna
import pytest
import sqlalchemy as sa
import torch
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.storage import (
    arm_progress,
    campaign_progress,
    cancel_campaign,
    claim_trials,
    create_campaign,
    engine_of,
    open_storage,
)
from boundsweep.studies.tasks._mnist import MNIST_FILES
from boundsweep.workers import run_worker
from boundsweep.workers._run import batch_limit, fair_share, machine_workers
from optuna.trial import TrialState

from benchmarks._worker_process import WorkerProcess
from tests.workers.test_worker import FAST, _assert_exact, _trials, _until


def _spec(name: str, *, epochs: int = 2, fraction: float = 0.5, seeds: int = 3) -> CampaignSpec:
    return CampaignSpec.model_validate(
        {
            "name": name,
            "task": "digits_mlp",
            "seeds": list(range(seeds)),
            "budget": {"epochs": epochs, "data_fraction": fraction},
            "arms": [
                {"optimizer": "adabound", "space": {"final_lr": {"grid": [0.01, 0.1, 1.0]}}},
                {
                    "optimizer": "adam",
                    "sampler": "random",
                    "n_trials": 4,
                    "space": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}},
                },
                {
                    "optimizer": "sgdm",
                    "sampler": "tpe",
                    "n_trials": 3,
                    "space": {"lr": {"low": 1e-3, "high": 0.3, "log": True}},
                },
            ],
        }
    )


def _adabound_spec(name: str, final_lrs: list[float], epochs: int) -> CampaignSpec:
    """One AdaBound grid arm over ``final_lrs``, 2 seeds, long enough to be caught mid-batch."""
    return CampaignSpec.model_validate(
        {
            "name": name,
            "task": "digits_mlp",
            "seeds": [0, 1],
            "budget": {"epochs": epochs, "data_fraction": 0.3},
            "arms": [{"optimizer": "adabound", "space": {"final_lr": {"grid": final_lrs}}}],
        }
    )


def _running_count(storage, campaign: str) -> int:
    return sum(row.running for row in campaign_progress(storage, campaign))


def test_claim_trials_takes_up_to_k_in_number_order_with_their_heartbeats(
    storage_url: str,
) -> None:
    storage = open_storage(storage_url)
    spec = _spec("claim")
    create_campaign(storage, spec)
    study_id = storage.get_study_id_from_name("claim/adabound")
    first = claim_trials(storage, study_id, 4)
    second = claim_trials(storage, study_id, 4)
    third = claim_trials(storage, study_id, 4)
    assert [t.number for t in first] == [0, 1, 2, 3]
    assert [t.number for t in second] == [4, 5, 6, 7]
    assert [t.number for t in third] == [8]
    assert claim_trials(storage, study_id, 4) == []
    claimed = first + second + third
    assert all(t.state == TrialState.RUNNING for t in claimed)
    # Each comes with its queued params, as storage.get_trial reads it.
    for t in claimed:
        assert (
            t.system_attrs["fixed_params"]
            == storage.get_trial(t._trial_id).system_attrs["fixed_params"]
        )
    with engine_of(storage).connect() as conn:
        rows = conn.execute(sa.text("SELECT trial_id FROM trial_heartbeats")).scalars().all()
    assert sorted(rows) == sorted(t._trial_id for t in claimed)  # one heartbeat each
    with pytest.raises(ValueError, match="limit: expected a number >= 1, got 0"):
        claim_trials(storage, study_id, 0)
    cancel_campaign(storage, "claim")
    adam = storage.get_study_id_from_name("claim/adam")
    assert claim_trials(storage, adam, 4) == []


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_racing_batch_claims_split_the_queue(backend: str, request: pytest.FixtureRequest) -> None:
    # Four connections, one per claimer: a real race (a storage holds one by default).
    storage = open_storage(request.getfixturevalue(f"{backend}_url"), pool_size=4)
    spec = CampaignSpec.model_validate(
        {
            "name": "split",
            "task": "digits_mlp",
            "seeds": list(range(10)),
            "arms": [{"optimizer": "adabound", "space": {"final_lr": {"grid": [0.01, 0.1]}}}],
        }
    )
    create_campaign(storage, spec)
    study_id = storage.get_study_id_from_name("split/adabound")
    won: list[list[int]] = []
    barrier = threading.Barrier(4)

    def claimer() -> None:
        barrier.wait()
        mine = []
        while batch := claim_trials(storage, study_id, 3):
            mine += [t._trial_id for t in batch]
        won.append(mine)

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [trial_id for mine in won for trial_id in mine]
    assert len(every) == len(set(every)) == 20  # each of the 20 won exactly once


def test_batch_limit_batches_only_where_the_task_and_sampler_allow() -> None:
    spec = _spec("limits")
    assert batch_limit(None, "cpu", spec, "adabound") == 81
    assert batch_limit(None, "cuda:0", spec, "adam") == 81
    assert batch_limit(5, "cpu", spec, "adam") == 5
    assert batch_limit(1, "cpu", spec, "adabound") == 1  # turned off
    assert batch_limit(None, "cpu", spec, "sgdm") == 1  # tpe learns from each result
    pruned = spec.model_copy(update={"pruner": "median"})
    assert batch_limit(None, "cpu", pruned, "adabound") == 1
    lstm = spec.model_copy(update={"task": "ptb_lstm1"})
    assert batch_limit(None, "cpu", lstm, "adabound") == 1


@pytest.fixture
def torch_threads():
    """Set torch's thread count for a test (a CPU worker takes the machine's share of workers
    from it), restored after."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_fair_share_is_the_open_trials_over_the_machines_workers(tmp_path, torch_threads) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'share.db'}")
    create_campaign(storage, _spec("share"))  # 9 + 4 + 3 trials
    create_campaign(storage, _spec("other", seeds=1))  # not counted for "share"
    rows = arm_progress(storage)
    cores = len(os.sched_getaffinity(0))
    torch_threads(cores)  # one worker using every core: it may take everything open
    assert machine_workers("cpu") == 1
    assert fair_share(rows, "share", "cpu") == 16
    torch_threads(1)  # one-thread workers: one per core
    assert machine_workers("cpu") == cores
    assert fair_share(rows, "share", "cpu") == math.ceil(16 / cores)
    assert machine_workers("cuda:0") == 1  # one worker per GPU
    # Running trials (anyone's) count as open: a worker that comes second takes as much.
    claim_trials(storage, rows[0].study_id, 5)
    torch_threads(cores)
    assert fair_share(arm_progress(storage), "share", "cpu") == 16


def test_a_batched_worker_records_what_a_one_by_one_worker_records(tmp_path, torch_threads) -> None:
    spec = _spec("same")
    stored = {}
    torch.set_num_threads(len(os.sched_getaffinity(0)))  # torch's default: every core
    for mode, batch_trials in (("batched", None), ("alone", 1)):
        url = f"sqlite:///{tmp_path / mode}.db"
        storage = open_storage(url)
        create_campaign(storage, spec)
        assert run_worker(url, until_idle=True, batch_trials=batch_trials, **FAST) == 16
        _assert_exact(storage, spec)
        stored[mode] = {arm.name: _trials(storage, f"same/{arm.name}") for arm in spec.arms}
    # The grid arm: the same trials, each with the same record, values and curve.
    batched, alone = (
        {(t.params["seed"], t.params["final_lr"]): t for t in stored[mode]["adabound"]}
        for mode in ("batched", "alone")
    )
    assert batched.keys() == alone.keys()
    for key, b in batched.items():
        a = alone[key]
        # The grid arm's 9 and the random arm's 4 trials were claimed and trained as one.
        assert b.user_attrs["batch_trials"] == 13 and "batch_trials" not in a.user_attrs
        assert set(b.user_attrs) - {"batch_trials", "batch_wall_time"} == set(a.user_attrs)
        # Each trial's own wall time: its share of the batch's, not the whole batch's.
        assert b.user_attrs["wall_time"] == pytest.approx(b.user_attrs["batch_wall_time"] / 13)
        for attr in ("hparams", "seed", "status", "steps", "device", "arithmetic"):
            assert b.user_attrs[attr] == a.user_attrs[attr], attr
        assert b.user_attrs["arithmetic"] == f"cpu {torch.backends.cpu.get_cpu_capability()}"
        # With the worker's default threads (every core here), bit for bit: a trial of a
        # batchable task trains on one torch thread either way (workers._run.trial_threads).
        assert b.value == a.value
        assert b.intermediate_values == a.intermediate_values
        assert b.intermediate_values.keys() == {1, 2}
        assert [r["epoch"] for r in b.user_attrs["curve"]] == [1, 2]
        for rb, ra in zip(b.user_attrs["curve"], a.user_attrs["curve"], strict=True):
            assert {**rb, "seconds": 0} == {**ra, "seconds": 0}
    # The random arm was batched too (one suggestion per trial); tpe ran one by one.
    assert all(t.user_attrs["batch_trials"] == 13 for t in stored["batched"]["adam"])
    assert all("batch_trials" not in t.user_attrs for t in stored["batched"]["sgdm"])
    lrs = [t.params["lr"] for t in stored["batched"]["adam"]]
    assert len(set(lrs)) == 4


@pytest.mark.postgres
def test_kill_9_mid_batch_leaves_every_trial_retried_once(postgres_url: str) -> None:
    storage = open_storage(postgres_url)
    spec = _adabound_spec("kill-batch", [0.01, 0.1, 1.0], epochs=100)
    create_campaign(storage, spec)
    victim = WorkerProcess(postgres_url, "--campaign", "kill-batch", "--batch-trials", "6")
    try:
        _until(lambda: " epoch 2/100" in victim.log, 120, "the batch mid-way")
        assert _running_count(storage, "kill-batch") == 6
        victim.process.kill()  # kill -9: no chance to clean up
        victim.wait(10)
        rescuer = WorkerProcess(postgres_url, "--until-idle", "--campaign", "kill-batch")
        assert rescuer.wait(300) == 0, rescuer.log[-3000:]
    finally:
        victim.kill()
    assert "6 trials batched" in victim.log
    assert "stale trial" in rescuer.log
    _assert_exact(storage, spec)
    trials = _trials(storage, "kill-batch/adabound")
    killed = [t for t in trials if t.state == TrialState.FAIL]
    retries = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(killed) == len(retries) == 6
    assert sorted(t.system_attrs["retry_history"][0] for t in retries) == sorted(
        t.number for t in killed
    )
    (row,) = campaign_progress(storage, "kill-batch")
    assert (row.complete, row.fail, row.retried) == (6, 0, 6)


def test_sigterm_gives_every_trial_of_the_batch_back(sqlite_url: str) -> None:
    storage = open_storage(sqlite_url)
    spec = _adabound_spec("term-batch", [0.01, 0.1], epochs=100)
    create_campaign(storage, spec)

    def terminate_mid_batch() -> None:  # what `kill PID` does to a worker, sent to ourselves
        _until(lambda: _running_count(storage, "term-batch") == 4, 90, "the batch mid-way")
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_mid_batch)
    killer.start()
    ran = run_worker(sqlite_url, until_idle=True, **FAST)  # returns instead of dying
    killer.join()
    assert ran == 4
    trials = _trials(storage, "term-batch/adabound")
    states = Counter(t.state for t in trials)
    assert states == {TrialState.FAIL: 4, TrialState.WAITING: 4}
    copies = [t for t in trials if t.state == TrialState.WAITING]
    assert all(t.system_attrs["retry_history"] == [] for t in copies)  # not the trials' fault
    assert all(t.system_attrs["boundsweep:interrupted"] == 1 for t in copies)

    assert run_worker(sqlite_url, until_idle=True, **FAST) == 4
    _assert_exact(storage, spec)


def test_a_crashing_batch_is_retried_one_by_one_then_fails_every_trial(
    sqlite_url: str, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = open_storage(sqlite_url)
    spec = _spec("crash-batch", seeds=1).model_copy(update={"task": "mnist_mlp"})
    create_campaign(storage, spec)
    # MNIST files that are there but not in the idx format make loading raise: a real crash
    # of the whole batch. (A missing file or device is a setup error, see test_setup_errors.)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        (raw / name).write_bytes(b"not an idx file")
    with caplog.at_level(logging.WARNING, logger="boundsweep.worker"):
        run_worker(sqlite_url, until_idle=True, max_retries=1, data_dir=str(tmp_path), **FAST)
    # A batch that crashes is not held against its trials (batching may be what failed): they
    # go back uncounted, and the worker trains the task one by one, where each crashes again
    # and fails after its one retry.
    assert "batched training of task mnist_mlp failed" in caplog.text
    rows = {r.arm: r for r in campaign_progress(storage, "crash-batch")}
    for row in rows.values():
        assert (row.complete, row.waiting, row.running, row.fail) == (0, 0, 0, row.total)
    study = optuna.load_study(study_name="crash-batch/adabound", storage=storage)
    # Each of the 3 trials: the batched attempt given back, its copy crashing alone, and the
    # one retry (retry history of length 1) crashing too: all FAIL, nothing retried twice.
    assert Counter(t.state for t in study.trials) == {TrialState.FAIL: 9}
    retries = Counter(len(t.system_attrs.get("retry_history", [])) for t in study.trials)
    assert retries == {0: 6, 1: 3}


def test_a_running_batch_shows_its_epochs_before_it_ends(storage_url: str) -> None:
    storage = open_storage(storage_url)
    spec = _adabound_spec("live-batch", [0.01, 0.1], epochs=300)
    create_campaign(storage, spec)
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker, args=(storage_url,), kwargs={"stop": stop, "batch_trials": 4, **FAST}
    )
    worker.start()
    try:
        seen = []
        for _ in range(2):  # the epochs of the running batch move, read after read
            before = seen[-1] if seen else 0
            _until(
                lambda b=before: campaign_progress(storage, "live-batch")[0].running_epochs > b,
                90,
                "the batch's epochs",
            )
            (row,) = campaign_progress(storage, "live-batch")
            seen.append(row.running_epochs)
            assert row.running == 4 and row.complete == 0
        # What the dashboard and pruning read: each running trial's epochs and first attrs.
        running = [t for t in _trials(storage, "live-batch/adabound") if t.state.name == "RUNNING"]
        assert len(running) == 4
        assert all(t.intermediate_values and "hparams" in t.user_attrs for t in running)
        assert all(t.user_attrs["batch_trials"] == 4 for t in running)
    finally:
        stop.set()
        worker.join(120)
    assert seen[1] > seen[0] > 0
