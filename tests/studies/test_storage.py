"""The campaigns' storage on SQLite and PostgreSQL: creation, queue, claims, stale trials."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import optuna
import pytest
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.storage import (
    ATTR_CAMPAIGN,
    ATTR_SPEC,
    CampaignExists,
    CampaignNotFound,
    arm_study_name,
    beat,
    campaign_progress,
    cancel_campaign,
    claim_trial,
    claim_waiting_trial,
    create_campaign,
    fail_if_running,
    fail_stale_trials,
    finish_trial,
    is_cancelled,
    list_campaigns,
    load_spec,
    open_storage,
    stale_trial_ids,
)
from optuna.trial import TrialState


@pytest.fixture(params=["sqlite", "postgres", "pooled"])
def storage_url(request: pytest.FixtureRequest) -> str:
    """Each storage test on SQLite, on PostgreSQL, and on PostgreSQL through PgBouncer in
    transaction mode (``pooled_url``): claims, heartbeats, staleness and finishes hold there
    too."""
    return request.getfixturevalue(f"{request.param}_url")


def _spec(name: str = "c1") -> CampaignSpec:
    return CampaignSpec.model_validate(
        {
            "name": name,
            "task": "digits_mlp",
            "seeds": [0, 1],
            "budget": {"epochs": 1, "max_steps": 2},
            "arms": [
                {
                    "optimizer": "adabound",
                    "space": {"final_lr": {"grid": [0.01, 0.1, 1.0]}, "gamma": 1e-3},
                },
                {
                    "optimizer": "adam",
                    "sampler": "random",
                    "n_trials": 5,
                    "space": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}},
                },
            ],
        }
    )


def test_create_campaign_queues_every_trial(storage_url: str) -> None:
    storage = open_storage(storage_url)
    spec = _spec()
    names = create_campaign(storage, spec)
    assert names == [arm_study_name("c1", "adabound"), "c1/adam"]
    grid = optuna.load_study(study_name="c1/adabound", storage=storage)
    assert grid.direction == optuna.study.StudyDirection.MAXIMIZE
    assert grid.user_attrs[ATTR_CAMPAIGN] == "c1"
    assert CampaignSpec.model_validate(grid.user_attrs[ATTR_SPEC]) == spec
    # Stored once: on the first arm only, and every reader finds it from any arm.
    assert ATTR_SPEC not in optuna.load_study(study_name="c1/adam", storage=storage).user_attrs
    assert load_spec(storage, "c1") == spec
    assert [(r.arm, r.optimizer, r.sampler) for r in campaign_progress(storage, "c1")] == [
        ("adabound", "adabound", "grid"),
        ("adam", "adam", "random"),
    ]
    queued = [t.system_attrs["fixed_params"] for t in grid.get_trials()]
    assert all(t.state == TrialState.WAITING for t in grid.get_trials())
    assert [t.number for t in grid.get_trials()] == list(range(6))
    assert sorted((p["final_lr"], p["seed"]) for p in queued) == [
        (lr, s) for lr in (0.01, 0.1, 1.0) for s in (0, 1)
    ]
    sampled = optuna.load_study(study_name="c1/adam", storage=storage).get_trials()
    assert [t.system_attrs["fixed_params"] for t in sampled] == [
        {"seed": s} for s in (0, 1, 0, 1, 0)
    ]
    # The params are in the queued trials already, with the distributions suggest uses.
    for arm, trials in (("adabound", grid.get_trials()), ("adam", sampled)):
        distributions = spec.arm(arm).distributions(spec.seeds)
        for trial in trials:
            assert trial.params == trial.system_attrs["fixed_params"]
            assert trial.distributions == {k: distributions[k] for k in trial.params}

    rows = campaign_progress(storage, "c1")
    assert [(r.arm, r.total, r.waiting, r.complete, r.fail, r.best) for r in rows] == [
        ("adabound", 6, 6, 0, 0, None),
        ("adam", 5, 5, 0, 0, None),
    ]
    assert list_campaigns(storage) == ["c1"]
    assert load_spec(storage, "c1") == spec


def test_a_campaign_name_is_taken_once_and_failures_leave_nothing(storage_url: str) -> None:
    storage = open_storage(storage_url)
    create_campaign(storage, _spec())
    with pytest.raises(CampaignExists, match="c1"):
        create_campaign(storage, _spec())
    # A foreign study already holds the second arm's name: the first arm must be removed again.
    optuna.create_study(study_name="c2/adam", storage=storage)
    with pytest.raises(CampaignExists):
        create_campaign(storage, _spec("c2"))
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert names == {"c1/adabound", "c1/adam", "c2/adam"}
    assert list_campaigns(storage) == ["c1"]


def test_unknown_campaign_and_cancel(storage_url: str) -> None:
    storage = open_storage(storage_url)
    with pytest.raises(CampaignNotFound, match="nope"):
        campaign_progress(storage, "nope")
    with pytest.raises(CampaignNotFound):
        load_spec(storage, "nope")
    with pytest.raises(CampaignNotFound):
        cancel_campaign(storage, "nope")
    create_campaign(storage, _spec())
    assert not is_cancelled(storage, "c1")
    cancel_campaign(storage, "c1")
    assert is_cancelled(storage, "c1")
    rows = campaign_progress(storage, "c1")
    assert all(r.cancelled and r.waiting == r.total for r in rows)  # nothing lost
    assert all(claim_waiting_trial(storage, r.study_id) is None for r in rows)


def test_racing_claims_take_each_queued_trial_exactly_once(storage_url: str) -> None:
    storage = open_storage(storage_url, pool_size=6)  # six connections: a real race
    create_campaign(storage, _spec())
    study_id = optuna.load_study(study_name="c1/adabound", storage=storage)._study_id
    claimed: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def claim_all() -> None:
        start.wait()
        try:
            while (trial_id := claim_waiting_trial(storage, study_id)) is not None:
                with lock:
                    claimed.append(trial_id)
        except BaseException as exc:  # the others would claim its share: name it instead
            errors.append(exc)

    threads = [threading.Thread(target=claim_all) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(claimed) == 6 and len(set(claimed)) == 6
    row = campaign_progress(storage, "c1")[0]
    assert (row.running, row.waiting) == (6, 0)
    assert claim_waiting_trial(storage, study_id) is None  # never a fresh trial


def test_stale_trials_are_failed_once_and_retried_up_to_the_limit(storage_url: str) -> None:
    storage = open_storage(storage_url, heartbeat_interval=1, grace_period=1)
    create_campaign(storage, _spec())
    study = optuna.load_study(study_name="c1/adabound", storage=storage)
    first = claim_waiting_trial(storage, study._study_id)
    assert first is not None
    params = storage.get_trial(first).system_attrs["fixed_params"]
    assert fail_stale_trials(storage, grace_period=1, max_retries=1) == []  # still fresh
    time.sleep(2.2)
    assert fail_stale_trials(storage, grace_period=1, max_retries=1) == [first]
    assert fail_stale_trials(storage, grace_period=1, max_retries=1) == []
    trials = study.get_trials()
    copy = trials[-1]
    assert storage.get_trial(first).state == TrialState.FAIL
    assert copy.state == TrialState.WAITING
    assert copy.system_attrs["fixed_params"] == params
    assert copy.system_attrs["retry_history"] == [storage.get_trial(first).number]
    row = campaign_progress(storage, "c1")[0]
    assert (row.waiting, row.fail, row.retried) == (6, 0, 1)

    # The copy crashes too: one retry was allowed, so this slot is given up and reported.
    while (trial_id := claim_waiting_trial(storage, study._study_id)) != copy._trial_id:
        assert trial_id is not None
        assert fail_if_running(storage, trial_id)  # other trials: out of the way
    time.sleep(2.2)
    assert fail_stale_trials(storage, grace_period=1, max_retries=1) == [copy._trial_id]
    row = campaign_progress(storage, "c1")[0]
    assert row.fail >= 1
    assert not any(
        t.system_attrs.get("fixed_params") == params and t.state == TrialState.WAITING
        for t in study.get_trials()
    )


def test_a_result_and_its_record_are_stored_together_by_the_trials_owner_only(
    storage_url: str,
) -> None:
    storage = open_storage(storage_url)
    create_campaign(storage, _spec())
    study_id = optuna.load_study(study_name="c1/adabound", storage=storage)._study_id
    mine, lost = claim_waiting_trial(storage, study_id), claim_waiting_trial(storage, study_id)
    assert mine is not None and lost is not None
    record = {"status": "completed", "curve": [{"epoch": 1}, {"epoch": 2}]}
    epochs = {1: 0.5, 2: float("inf")}
    assert finish_trial(storage, mine, 0.75, user_attrs=record, intermediate_values=epochs)
    done = storage.get_trial(mine)
    assert (done.state, done.value, done.user_attrs) == (TrialState.COMPLETE, 0.75, record)
    assert done.intermediate_values == epochs
    # Finished already, or failed as stale by another worker: nothing of this result is kept.
    assert not finish_trial(storage, mine, 0.1, user_attrs={"status": "late"})
    assert fail_if_running(storage, lost)
    assert not finish_trial(storage, lost, 0.9, user_attrs=record, intermediate_values=epochs)
    failed = storage.get_trial(lost)
    assert failed.state == TrialState.FAIL and failed.values is None
    assert failed.user_attrs == {} and failed.intermediate_values == {}
    assert storage.get_trial(mine).user_attrs == record


def test_a_claim_reads_the_trial_as_the_storage_would(storage_url: str) -> None:
    storage = open_storage(storage_url, heartbeat_interval=1, grace_period=1)
    create_campaign(storage, _spec())
    study = optuna.load_study(study_name="c1/adabound", storage=storage)
    first = claim_trial(storage, study._study_id)
    assert first is not None and first.state == TrialState.RUNNING
    assert first == storage.get_trial(first._trial_id)
    assert first.params == first.system_attrs["fixed_params"]
    # A crashed trial's copy carries its retry history; a trial queued through Optuna's own
    # API may carry user attrs: the claim reads both as get_trial does.
    time.sleep(2.2)
    assert fail_stale_trials(storage, grace_period=1, max_retries=1) == [first._trial_id]
    other = optuna.load_study(study_name="c1/adam", storage=storage)
    for _ in range(5):
        assert claim_waiting_trial(storage, other._study_id) is not None
    other.enqueue_trial({"lr": 1e-3, "seed": 1}, user_attrs={"note": "by hand"})
    by_hand = claim_trial(storage, other._study_id)
    assert by_hand is not None and by_hand.user_attrs == {"note": "by hand"}
    assert by_hand == storage.get_trial(by_hand._trial_id)
    while (claimed := claim_trial(storage, study._study_id)) is not None:
        assert claimed == storage.get_trial(claimed._trial_id)
        copy = claimed
    assert copy.system_attrs["retry_history"] == [first.number]

    # Primed, the storage hands the claimed trial to the first get_trial of its id, once.
    with storage.primed(copy):
        assert storage.get_trial(first._trial_id).state == TrialState.FAIL
        assert storage.get_trial(copy._trial_id) is copy
        assert storage.get_trial(copy._trial_id) is not copy
    with storage.primed(copy):
        pass
    assert storage.get_trial(copy._trial_id) is not copy
    assert storage.get_trial(copy._trial_id) == copy


def _keep_busy(path: Path, stop: threading.Event, writes: list[int], slot: int) -> None:
    """Read and write the SQLite file at ``path`` until ``stop`` is set."""
    conn = sqlite3.connect(path, timeout=60)
    while not stop.is_set():
        conn.execute("SELECT count(*) FROM busy").fetchone()
        conn.execute("INSERT INTO busy VALUES (1)")
        conn.commit()
        writes[slot] += 1
        time.sleep(0.001)  # a busy service, not a tight loop that starves every other writer
    conn.close()


def test_a_sqlite_file_in_use_is_switched_to_wal_without_a_lock_error(tmp_path: Path) -> None:
    # The service's tables may come first, in SQLite's default rollback-journal mode. Opening
    # the Optuna storage on the same file switches it to WAL, which SQLite refuses at once,
    # without waiting, while any other connection reads or writes. A scheduler lost a firing
    # to that "database is locked".
    for attempt in range(5):
        path = tmp_path / f"service-{attempt}.db"
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("CREATE TABLE busy (x INTEGER)")
        stop = threading.Event()
        writes = [0, 0, 0]
        threads = [
            threading.Thread(target=_keep_busy, args=(path, stop, writes, slot))
            for slot in range(3)
        ]
        for thread in threads:
            thread.start()
        while not all(writes):
            time.sleep(0.001)
        try:
            storage = open_storage(f"sqlite:///{path}")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert conn.execute("SELECT count(*) FROM busy").fetchone()[0] >= 3
        optuna.create_study(storage=storage, study_name=f"s{attempt}")
        storage.engine.dispose()


def test_the_service_engine_puts_a_sqlite_file_in_wal_mode(tmp_path: Path) -> None:
    from boundsweep.service.db import make_engine

    path = tmp_path / "service.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    memory = make_engine("sqlite://")
    with memory.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "memory"


def test_a_trial_claimed_37_ms_ago_is_not_stale_under_a_1_s_grace(storage_url: str) -> None:
    # The reproduction of issue 21: on SQLite a claim written at hh:mm:04.99 stored
    # ``...:04`` (whole seconds) and the stale check compared it as text with a cutoff
    # ``...:04.000000`` 37 ms later, across the second: stale. Claimed just before a second
    # turns, every time, so the old behaviour fails this test on every run.
    storage = open_storage(storage_url)
    create_campaign(storage, _spec("fresh"))
    study_id = storage.get_study_id_from_name("fresh/adam")
    claimed: list[int] = []
    for _ in range(3):
        while time.time() % 1 < 0.96:  # just before the next whole second
            time.sleep(0.005)
        trial_id = claim_waiting_trial(storage, study_id)
        assert trial_id is not None
        time.sleep(0.037)
        assert trial_id not in {i for _, i in stale_trial_ids(storage, 1)}
        claimed.append(trial_id)
    # And the rule still finds a trial that stopped beating more than the grace ago.
    time.sleep(1.3)
    assert {i for _, i in stale_trial_ids(storage, 1)} == set(claimed)
    beat(storage, claimed[:1])  # the one heartbeat writer makes it fresh again
    assert {i for _, i in stale_trial_ids(storage, 1)} == set(claimed[1:])
    assert sorted(fail_stale_trials(storage, grace_period=1, max_retries=2)) == claimed[1:]


def test_a_trial_is_judged_by_its_claimers_grace_not_the_sweepers(storage_url: str) -> None:
    # Issue 21: a worker with a short grace failed 27 healthy trials held by other workers.
    # The claim records the claimer's grace; a sweep with a shorter one leaves the trial alone.
    storage = open_storage(storage_url)
    create_campaign(storage, _spec("graces"))
    study_id = storage.get_study_id_from_name("graces/adam")
    patient = claim_waiting_trial(storage, study_id, grace_period=2.5)
    legacy = claim_waiting_trial(storage, study_id)  # no grace recorded: the sweeper's own
    assert patient is not None and legacy is not None
    time.sleep(1.2)
    assert fail_stale_trials(storage, grace_period=1, max_retries=2) == [legacy]
    time.sleep(1.5)
    assert fail_stale_trials(storage, grace_period=1, max_retries=2) == [patient]
    # The copy carries no grace of its own: its next claimer records one.
    copies = [t for t in storage.get_all_trials(study_id) if t.state == TrialState.WAITING]
    assert all("boundsweep:grace_period" not in t.system_attrs for t in copies)
