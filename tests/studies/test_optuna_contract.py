"""The adapter's contract: what it writes is what Optuna writes, as Optuna's readers see it.

Each operation is done twice on the same storage: once through the adapter
(``studies._storage._optuna``, as the worker and ``create_campaign`` do it) in the study
``ours``, once with plain Optuna API in the study ``optuna``. Both studies are then read back
through Optuna's public API (``load_study``, ``study.trials``, ``best_trial``,
``trials_dataframe``, ``copy_study`` into a fresh storage) and through optuna-dashboard's own
HTTP API, and must not differ in anything but ids and clock times. On SQLite and PostgreSQL;
``make test`` also runs this file under the oldest Optuna that ``pyproject.toml`` admits.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import json
import math
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna
import optuna_dashboard
import pytest
from boundsweep.studies._storage._optuna import (
    NewStudy,
    RetryStaleTrial,
    engine_of,
    enqueue_fixed_params,
    write_studies,
)
from boundsweep.studies.storage import (
    CampaignStorage,
    add_finished_trials,
    beat,
    claim_trial,
    claim_trials,
    claim_waiting_trial,
    fail_if_running,
    fail_stale_trials,
    finish_trial,
    open_storage,
    requeue,
    set_intermediate_values,
    set_trial_user_attrs,
    study_id_of,
    trial_id_of,
)
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

DISTRIBUTIONS = {
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "gamma": FloatDistribution(0.0, 1.0),
    "width": IntDistribution(8, 64, step=8),
    "seed": CategoricalDistribution([0, 1, 2]),
}
QUEUED = [
    {"lr": 1e-3, "gamma": 0.25, "width": 16, "seed": 0},
    {"lr": 1e-2, "gamma": 0.5, "width": 32, "seed": 1},
    {"lr": 3e-2, "gamma": 0.75, "width": 64, "seed": 2},
]
EPOCHS = {1: 0.5, 2: 0.25, 3: float("inf")}  # an infinity as a diverged run reports it
RECORD = {"status": "completed", "curve": [{"epoch": 1, "loss": 0.5}], "seed": 0, "note": None}
SYSTEM_KEYS = ("fixed_params", "failed_trial", "retry_history")
"""The system attrs Optuna itself reads (enqueue_trial, RetryHeartbeatStaleTrialCallback)."""


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _storage(url: str, *, grace_period: int | None = None) -> CampaignStorage:
    if grace_period is None:
        return open_storage(url)
    return open_storage(url, heartbeat_interval=1, grace_period=grace_period, max_retries=2)


def _pair(storage: RDBStorage) -> tuple[optuna.Study, optuna.Study]:
    return (
        optuna.create_study(storage=storage, study_name="ours", direction="maximize"),
        optuna.create_study(storage=storage, study_name="optuna", direction="maximize"),
    )


def _fields(trial: FrozenTrial) -> dict[str, Any]:
    """Everything an Optuna reader sees of a trial, but its id and its clock times.

    The one difference by design: a trial the adapter queued already holds its params (with
    their distributions), where ``enqueue_trial`` leaves only the ``fixed_params`` plan that
    ``Trial`` suggests from; such a trial is compared by its plan.
    """
    fresh = trial.state == TrialState.WAITING and "failed_trial" not in trial.system_attrs
    if fresh:
        assert trial.params in ({}, trial.system_attrs["fixed_params"])
    return {
        "number": trial.number,
        "state": trial.state,
        "values": trial.values,
        "params": None if fresh else trial.params,
        "distributions": None if fresh else trial.distributions,
        "intermediate_values": trial.intermediate_values,
        "user_attrs": trial.user_attrs,
        "system_attrs": {k: v for k, v in trial.system_attrs.items() if k in SYSTEM_KEYS},
        "started": trial.datetime_start is not None,
        "completed": trial.datetime_complete is not None,
    }


def _same_through_optuna(url: str, storage: RDBStorage, tmp_path: Path) -> list[FrozenTrial]:
    """Both studies read back by every public reader; they must agree. Ours, as read."""
    ours = optuna.load_study(study_name="ours", storage=url)
    theirs = optuna.load_study(study_name="optuna", storage=url)
    assert [_fields(t) for t in ours.trials] == [_fields(t) for t in theirs.trials]
    assert [_fields(t) for t in ours.get_trials(states=(TrialState.WAITING,))] == [
        _fields(t) for t in theirs.get_trials(states=(TrialState.WAITING,))
    ]
    if any(t.state == TrialState.COMPLETE for t in theirs.trials):
        assert _fields(ours.best_trial) == _fields(theirs.best_trial)
        assert ours.best_value == theirs.best_value and ours.best_params == theirs.best_params
    clocks = ["datetime_start", "datetime_complete", "duration"]
    frames = []
    for study in (ours, theirs):
        frame = study.trials_dataframe(multi_index=False).drop(columns=clocks, errors="ignore")
        # Optuna before 5.0 also lists system attrs; boundsweep's own (boundsweep:*) are extras
        # Optuna never reads, compared by _fields above only where Optuna writes them too.
        ours_only = [c for c in frame.columns if c.startswith("system_attrs_")]
        frame = frame.drop(
            columns=[c for c in ours_only if c[len("system_attrs_") :] not in SYSTEM_KEYS]
        )
        fresh = [not t.params or _fields(t)["params"] is None for t in study.trials]
        frame.loc[fresh, [c for c in frame.columns if c.startswith("params_")]] = None
        frames.append(frame)
    assert list(frames[0].columns) == list(frames[1].columns)
    assert frames[0].to_json() == frames[1].to_json()
    # A copy into a fresh storage (what a backup or a move to PostgreSQL does) keeps it all.
    copy_url = f"sqlite:///{tmp_path / f'copy-{time.monotonic_ns()}.db'}"
    optuna.copy_study(from_study_name="ours", from_storage=url, to_storage=copy_url)
    copied = optuna.load_study(study_name="ours", storage=copy_url)
    assert [_fields(t) for t in copied.trials] == [_fields(t) for t in ours.trials]
    assert _dashboard_trials(storage, study_id_of(ours)) == _dashboard_trials(
        storage, study_id_of(theirs)
    )
    return ours.trials


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _dashboard(storage: RDBStorage) -> Iterator[int]:
    """optuna-dashboard's own WSGI app, served over HTTP on a loopback port.

    Each server starts as a fresh dashboard process would: optuna-dashboard before 0.18 keeps
    its trials cache (2-10 s) in module globals keyed by study id, so within this one test
    process a server would otherwise answer from an earlier server's storage or state.
    """
    legacy_cache = importlib.import_module("optuna_dashboard._storage")
    if hasattr(legacy_cache, "trials_cache"):
        with legacy_cache.trials_cache_lock:
            legacy_cache.trials_cache.clear()
            legacy_cache.trials_last_fetched_at.clear()
    server: WSGIServer = make_server(
        "127.0.0.1", 0, optuna_dashboard.wsgi(storage), handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _dashboard_trials(storage: RDBStorage, study_id: int) -> list[dict[str, Any]]:
    """The study's trials as the dashboard's page gets them, without ids and clock times."""
    with _dashboard(storage) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", f"/api/studies/{study_id}?after=0")
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
    assert response.status == 200, body[:500]
    trials = json.loads(body)["trials"]
    drop = {"trial_id", "study_id", "datetime_start", "datetime_complete", "note", "artifacts"}
    shown = [{k: v for k, v in trial.items() if k not in drop} for trial in trials]
    for trial in shown:
        if trial["state"] == "Waiting":
            # Queued with params (ours) or with a plan only (Optuna's): the plan is compared.
            assert trial["fixed_params"], trial
            trial["params"] = None
    return shown


def _run_with_optuna(study: optuna.Study, value: float) -> None:
    """What Optuna itself does for one queued trial: ask, suggest, report, attrs, tell."""
    trial = study.ask()
    for name, dist in DISTRIBUTIONS.items():
        if isinstance(dist, FloatDistribution):
            trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        elif isinstance(dist, IntDistribution):
            trial.suggest_int(name, dist.low, dist.high, step=dist.step)
        else:
            trial.suggest_categorical(name, dist.choices)
    for step, epoch_value in EPOCHS.items():
        trial.report(epoch_value, step)
    for key, attr in RECORD.items():
        trial.set_user_attr(key, attr)
    study.tell(trial, value)


def test_queue_claim_heartbeat_and_finish_match_optuna(storage_url: str, tmp_path: Path) -> None:
    storage = _storage(storage_url)
    ours, theirs = _pair(storage)
    enqueue_fixed_params(storage, study_id_of(ours), QUEUED, DISTRIBUTIONS)
    for params in QUEUED:
        theirs.enqueue_trial(params)
    # Queued: the same plan (``fixed_params``) for Optuna's own Trial; ours also holds the
    # params, which any reader of a WAITING trial sees.
    queued = optuna.load_study(study_name="ours", storage=storage_url).trials
    assert [t.system_attrs["fixed_params"] for t in queued] == QUEUED
    assert [t.params for t in queued] == QUEUED
    assert all(t.state == TrialState.WAITING and t.datetime_start is None for t in queued)

    # Claim: what the claim read is what the storage returns; Optuna's Trial uses it as is.
    claimed = claim_trial(storage, study_id_of(ours))
    assert claimed is not None and claimed == storage.get_trial(trial_id_of(claimed))
    assert claimed.state == TrialState.RUNNING and claimed.datetime_start is not None
    with storage.primed(claimed):
        trial = optuna.Trial(ours, trial_id_of(claimed))
    assert trial.suggest_float("lr", 1e-4, 1e-1, log=True) == 1e-3
    assert trial.suggest_float("gamma", 0.0, 1.0) == 0.25
    assert trial.suggest_int("width", 8, 64, step=8) == 16
    assert trial.suggest_categorical("seed", [0, 1, 2]) == 0
    storage.record_heartbeat(trial_id_of(claimed))  # the claim wrote the first one

    # Epochs in two batches, the record in one write, then the result with the last epochs.
    assert set_intermediate_values(storage, trial_id_of(claimed), {1: EPOCHS[1]})
    assert set_trial_user_attrs(storage, trial_id_of(claimed), {"status": "running"})
    assert finish_trial(
        storage,
        trial_id_of(claimed),
        0.75,
        user_attrs=RECORD,
        intermediate_values={step: v for step, v in EPOCHS.items() if step > 1},
    )
    assert not finish_trial(storage, trial_id_of(claimed), 0.1)  # not RUNNING: nothing written
    _run_with_optuna(theirs, 0.75)

    # The second queued trial, run by Optuna's own loop on our queue (no adapter at all).
    ours_as_optuna = optuna.load_study(study_name="ours", storage=storage_url)
    _run_with_optuna(ours_as_optuna, 0.5)
    _run_with_optuna(theirs, 0.5)
    # The third is claimed by the adapter's other claim and finished with a NaN through tell.
    trial_id = claim_waiting_trial(storage, study_id_of(ours))
    assert trial_id is not None
    frozen = storage.get_trial(trial_id)
    assert frozen.params == QUEUED[2] and frozen.state == TrialState.RUNNING
    ours.tell(frozen.number, float("nan"))
    theirs_trial = theirs.ask()
    for name, value in QUEUED[2].items():
        assert theirs_trial.params.get(name, value) == value
    assert theirs_trial.number == frozen.number
    # Optuna's ask leaves params to the suggest calls; ours were queued with the trial.
    theirs_trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    theirs_trial.suggest_float("gamma", 0.0, 1.0)
    theirs_trial.suggest_int("width", 8, 64, step=8)
    theirs_trial.suggest_categorical("seed", [0, 1, 2])
    theirs.tell(theirs_trial, float("nan"))

    trials = _same_through_optuna(storage_url, storage, tmp_path)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]
    assert trials[0].intermediate_values[3] == math.inf and trials[0].user_attrs == RECORD


def test_fail_and_requeue_match_optunas_stale_trial_retry(storage_url: str, tmp_path: Path) -> None:
    storage = _storage(storage_url, grace_period=1)
    ours, theirs = _pair(storage)
    enqueue_fixed_params(storage, study_id_of(ours), QUEUED[:2], DISTRIBUTIONS)
    for params in QUEUED[:2]:
        theirs.enqueue_trial(params)

    # A worker claims, writes its first attrs and dies: no more heartbeats.
    mine = claim_trial(storage, study_id_of(ours))
    assert mine is not None
    assert set_trial_user_attrs(storage, trial_id_of(mine), {"worker": "host:1"})
    trial = theirs.ask()
    _suggest_all(trial)
    trial.set_user_attr("worker", "host:1")
    storage.record_heartbeat(trial_id_of(trial))
    time.sleep(2.5)
    # Crossed over: Optuna's own sweep finds our trial stale by the heartbeat the claim wrote,
    # fails it and queues its copy (RetryHeartbeatStaleTrialCallback); the adapter's sweep
    # does the same to the trial Optuna ran. Neither takes a trial twice.
    optuna.storages.fail_stale_trials(ours)
    assert storage.get_trial(trial_id_of(mine)).state == TrialState.FAIL
    assert fail_stale_trials(storage, grace_period=1, max_retries=2) == [trial_id_of(trial)]
    assert fail_stale_trials(storage, grace_period=1, max_retries=2) == []
    optuna.storages.fail_stale_trials(theirs)
    trials = _same_through_optuna(storage_url, storage, tmp_path)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING, TrialState.WAITING]
    copy = trials[2]
    assert copy.system_attrs["failed_trial"] == 0 and copy.system_attrs["retry_history"] == [0]
    assert copy.params == QUEUED[0] and copy.user_attrs == {"worker": "host:1"}

    # A crash the worker saw itself: fail it, then the copy (as Optuna's callback makes it).
    second = claim_trial(storage, study_id_of(ours))
    assert second is not None and second.number == 1
    assert fail_if_running(storage, trial_id_of(second))
    assert not fail_if_running(storage, trial_id_of(second))  # only one caller wins
    requeue(storage, study_id_of(ours), storage.get_trial(trial_id_of(second)), count_as_retry=True)
    theirs_second = theirs.ask()
    _suggest_all(theirs_second)
    theirs.tell(theirs_second, state=TrialState.FAIL)
    RetryStaleTrial()(theirs, theirs.trials[theirs_second.number])
    _same_through_optuna(storage_url, storage, tmp_path)


def test_a_batch_claim_and_its_beats_match_optuna(storage_url: str, tmp_path: Path) -> None:
    storage = _storage(storage_url, grace_period=5)
    ours, theirs = _pair(storage)
    enqueue_fixed_params(storage, study_id_of(ours), QUEUED, DISTRIBUTIONS)
    for params in QUEUED:
        theirs.enqueue_trial(params)
    batch = claim_trials(storage, study_id_of(ours), 2)
    assert [t.number for t in batch] == [0, 1]
    assert batch == [storage.get_trial(trial_id_of(t)) for t in batch]
    asked = [theirs.ask() for _ in range(2)]
    for trial in asked:
        _suggest_all(trial)
        storage.record_heartbeat(trial_id_of(trial))
    time.sleep(3)
    # One statement beats for the whole batch; Optuna's own sweep then finds none of them
    # stale, 6 s after the claim (grace 5 s) but 3 s after the beat.
    beat(storage, [trial_id_of(t) for t in batch])
    for trial in asked:
        storage.record_heartbeat(trial_id_of(trial))
    time.sleep(3)
    optuna.storages.fail_stale_trials(ours)
    optuna.storages.fail_stale_trials(theirs)
    for frozen in batch:
        assert storage.get_trial(trial_id_of(frozen)).state == TrialState.RUNNING
        assert finish_trial(
            storage, trial_id_of(frozen), 0.5, user_attrs=RECORD, intermediate_values=EPOCHS
        )
    for trial in asked:
        for step, epoch_value in EPOCHS.items():
            trial.report(epoch_value, step)
        for key, attr in RECORD.items():
            trial.set_user_attr(key, attr)
        theirs.tell(trial, 0.5)
    trials = _same_through_optuna(storage_url, storage, tmp_path)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 + [TrialState.WAITING]


def _tpe() -> optuna.samplers.TPESampler:
    # As ``studies.objective.sampler_for`` builds it, seeded so both studies draw alike.
    return optuna.samplers.TPESampler(seed=7, n_startup_trials=2, constant_liar=True)


def test_a_tpe_arm_finished_by_the_adapter_is_one_finished_by_tell(
    storage_url: str, tmp_path: Path
) -> None:
    # A sampled arm as the worker runs it: queued seed slots, claim, Optuna's Trial through
    # its trial cache, suggest, then the adapter's finish (COMPLETE, or PRUNED with its last
    # epoch); beside it the same arm run by ask/report/tell. TPE must see each result at its
    # next suggestion (past its 2 startup trials it reads them), so both draw the same points.
    storage = _storage(storage_url)
    ours = optuna.create_study(
        storage=storage, study_name="ours", direction="maximize", sampler=_tpe()
    )
    theirs = optuna.create_study(
        storage=storage, study_name="optuna", direction="maximize", sampler=_tpe()
    )
    seeds = {"seed": CategoricalDistribution([0, 1, 2])}
    queued = [{"seed": i % 3} for i in range(7)]
    enqueue_fixed_params(storage, study_id_of(ours), queued, seeds)
    for params in queued:
        theirs.enqueue_trial(params)
    drawn: dict[str, list[float]] = {"ours": [], "optuna": []}
    for i in range(len(queued)):
        pruned = i == 4
        trial_id = claim_waiting_trial(storage, study_id_of(ours))
        assert trial_id is not None
        ours.get_trials(deepcopy=False, states=(TrialState.RUNNING,))  # as the worker syncs
        trial = optuna.Trial(ours, trial_id)
        assert trial.suggest_categorical("seed", [0, 1, 2]) == queued[i]["seed"]
        x = trial.suggest_float("x", 0.0, 1.0)
        drawn["ours"].append(x)
        value = 1.0 - (x - 0.3) ** 2
        if pruned:
            assert finish_trial(
                storage,
                trial_id,
                None,
                state=TrialState.PRUNED,
                intermediate_values={1: value},
                study=ours,
            )
        else:
            assert finish_trial(
                storage, trial_id, value, user_attrs=RECORD, intermediate_values={1: value},
                study=ours,
            )  # fmt: skip
        assert not finish_trial(storage, trial_id, 0.1, study=ours)  # finished: nothing written

        theirs_trial = theirs.ask()
        theirs_trial.suggest_categorical("seed", [0, 1, 2])
        x = theirs_trial.suggest_float("x", 0.0, 1.0)
        drawn["optuna"].append(x)
        value = 1.0 - (x - 0.3) ** 2
        theirs_trial.report(value, 1)
        if pruned:
            theirs.tell(theirs_trial, state=TrialState.PRUNED)
        else:
            for key, attr in RECORD.items():
                theirs_trial.set_user_attr(key, attr)
            theirs.tell(theirs_trial, value)
    assert drawn["ours"] == drawn["optuna"]
    assert len(set(drawn["ours"])) == len(queued)
    trials = _same_through_optuna(storage_url, storage, tmp_path)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4 + [TrialState.PRUNED] + [
        TrialState.COMPLETE
    ] * 2
    assert trials[4].value == trials[4].intermediate_values[1]


def test_the_adapter_refuses_what_tell_refuses(storage_url: str) -> None:
    storage = _storage(storage_url)
    ours = optuna.create_study(storage=storage, study_name="ours", direction="maximize")
    enqueue_fixed_params(storage, study_id_of(ours), QUEUED[:1], DISTRIBUTIONS)
    trial_id = claim_waiting_trial(storage, study_id_of(ours))
    assert trial_id is not None
    for value, state, error in [
        (float("nan"), TrialState.COMPLETE, "value nan is not acceptable"),
        (None, TrialState.COMPLETE, "value None is not acceptable"),
        (0.5, TrialState.PRUNED, "takes no value"),
        (None, TrialState.FAIL, "expected COMPLETE or PRUNED, got FAIL"),
    ]:
        with pytest.raises(ValueError, match=error):
            finish_trial(storage, trial_id, value, state=state, user_attrs=RECORD)
    trial = storage.get_trial(trial_id)  # nothing written
    assert trial.state == TrialState.RUNNING and trial.user_attrs == {} and trial.values is None


def _suggest_all(trial: optuna.Trial) -> None:
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    trial.suggest_float("gamma", 0.0, 1.0)
    trial.suggest_int("width", 8, 64, step=8)
    trial.suggest_categorical("seed", [0, 1, 2])


def test_bulk_added_finished_trials_match_add_trials(storage_url: str, tmp_path: Path) -> None:
    storage = _storage(storage_url)
    ours, theirs = _pair(storage)
    start = datetime(2026, 1, 1)
    finished = []
    for i, params in enumerate(QUEUED):
        trial = optuna.trial.create_trial(
            state=TrialState.PRUNED if i == 1 else TrialState.COMPLETE,
            value=None if i == 1 else 0.1 * (i + 1),
            params=params,
            distributions=DISTRIBUTIONS,
            user_attrs={"seed": params["seed"], "status": "completed"},
            intermediate_values={1: 0.05 * i, 2: -math.inf if i == 2 else 0.1 * i},
        )
        trial.datetime_start = start
        trial.datetime_complete = start + timedelta(seconds=20 + i)
        finished.append(trial)
    ids = add_finished_trials(storage, study_id_of(ours), finished)
    theirs.add_trials(finished)
    assert len(ids) == len(set(ids)) == 3
    trials = _same_through_optuna(storage_url, storage, tmp_path)
    assert [t.datetime_complete - t.datetime_start for t in trials] == [
        timedelta(seconds=20 + i) for i in range(3)
    ]


def _study_as_read(storage: RDBStorage, name: str) -> dict[str, Any]:
    """A study as Optuna's readers see it (summaries, the storage's list, the loaded study),
    but its id."""
    summary = next(s for s in optuna.get_all_study_summaries(storage) if s.study_name == name)
    frozen = next(s for s in storage.get_all_studies() if s.study_name == name)
    study = optuna.load_study(study_name=name, storage=storage)
    return {
        "directions": (summary.directions, frozen.directions, study.directions),
        "user_attrs": (summary.user_attrs, frozen.user_attrs, study.user_attrs),
        "system_attrs": frozen.system_attrs,
        "trials": (summary.n_trials, len(study.trials)),
    }


def test_studies_written_in_one_transaction_match_create_study(
    storage_url: str, tmp_path: Path
) -> None:
    """``create_campaign``'s writes: a study, its user attrs and its queued trials, as
    ``create_study``, ``set_user_attr`` and ``enqueue_trial`` leave them, and a study that
    Optuna's own loop then runs."""
    storage = _storage(storage_url)
    attrs = {
        "boundsweep:arm": "adam",
        "spec": {"seeds": [0, 1], "lr": 1e-3, "x": None},
        "no": False,
    }
    with engine_of(storage).begin() as conn:
        [study_id] = write_studies(
            conn, [NewStudy("ours", "maximize", attrs, QUEUED, DISTRIBUTIONS)]
        )
    theirs = optuna.create_study(storage=storage, study_name="optuna", direction="maximize")
    for key, value in attrs.items():
        theirs.set_user_attr(key, value)
    for params in QUEUED:
        theirs.enqueue_trial(params)
    assert study_id == storage.get_study_id_from_name("ours")
    assert _study_as_read(storage, "ours") == _study_as_read(storage, "optuna")
    copy_url = f"sqlite:///{tmp_path / 'copy.db'}"
    optuna.copy_study(from_study_name="ours", from_storage=storage_url, to_storage=copy_url)
    assert optuna.load_study(study_name="ours", storage=copy_url).user_attrs == attrs
    ours = optuna.load_study(study_name="ours", storage=storage_url)
    _run_with_optuna(ours, 0.75)  # Optuna's own ask/tell runs the first queued trial
    _run_with_optuna(theirs, 0.75)
    _same_through_optuna(storage_url, storage, tmp_path)
