"""Failing a RUNNING trial and queueing its copy: crashes, stale trials, trials given up on."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import optuna
import sqlalchemy as sa
from boundsweep.studies._storage._attrs import (
    ATTR_INTERRUPTED,
    ATTR_PREVIOUS,
    ATTR_REQUEUED,
)
from boundsweep.studies._storage._optuna import _schema as t
from boundsweep.studies._storage._optuna._beat import stale_trial_ids
from boundsweep.studies._storage._optuna._schema import (
    Storage,
    engine_of,
    rdb_of,
)
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState


def fail_if_running(storage: Storage, trial_id: int) -> bool:
    """Move a RUNNING trial to FAIL; ``False`` if it was not RUNNING (someone else won)."""
    trials = t.trials
    with engine_of(storage).begin() as conn:
        return (
            conn.execute(
                sa.update(trials)
                .where(trials.c.trial_id == trial_id, trials.c.state == TrialState.RUNNING)
                .values(state=TrialState.FAIL, datetime_complete=datetime.now())
            ).rowcount
            == 1
        )


def requeue(storage: RDBStorage, study_id: int, trial: FrozenTrial, *, count_as_retry: bool) -> int:
    """Queue a WAITING copy of a failed trial (same params, same seed); the copy's id.

    Args:
        storage: The ``RDBStorage``.
        study_id: The trial's study.
        trial: The failed trial.
        count_as_retry: ``True`` for a crash (it counts towards the retry limit, kept in the
            ``retry_history`` system attr as ``RetryHeartbeatStaleTrialCallback`` does);
            ``False`` for a worker that was asked to stop, which is not the trial's fault.
    """
    system_attrs: dict[str, Any] = {
        t.FAILED_TRIAL: trial.number,
        t.RETRY_HISTORY: [],
        **trial.system_attrs,
    }
    history = list(system_attrs[t.RETRY_HISTORY])
    if count_as_retry:
        history.append(trial.number)
    else:
        system_attrs[ATTR_INTERRUPTED] = int(system_attrs.get(ATTR_INTERRUPTED, 0)) + 1
    system_attrs[t.RETRY_HISTORY] = history
    system_attrs[ATTR_PREVIOUS] = trial.number
    system_attrs.pop(ATTR_REQUEUED, None)
    # The copy Optuna's own RetryHeartbeatStaleTrialCallback makes (user attrs included).
    copy = optuna.trial.create_trial(
        state=TrialState.WAITING,
        params=trial.params,
        distributions=trial.distributions,
        user_attrs=trial.user_attrs,
        system_attrs=system_attrs,
    )
    return rdb_of(storage).create_new_trial(study_id, template_trial=copy)


def fail_stale_trials(storage: RDBStorage, *, grace_period: float, max_retries: int) -> list[int]:
    """Fail every RUNNING trial whose worker stopped beating; re-queue those with retries left.

    Any live worker calls this now and then (a stale trial is only failed when someone
    looks). Exactly one caller wins each trial, so each crash is re-queued at most once.

    Returns:
        Ids of the trials this call failed.
    """
    failed = []
    backend = rdb_of(storage)
    for study_id, trial_id in stale_trial_ids(backend, grace_period):
        if not fail_if_running(backend, trial_id):
            continue
        failed.append(trial_id)
        trial = backend.get_trial(trial_id)
        if retries_left(trial, max_retries):
            requeue(backend, study_id, trial, count_as_retry=True)
    return failed


def retries_left(trial: FrozenTrial, max_retries: int) -> bool:
    """Whether a crashed trial may be queued once more."""
    return len(trial.system_attrs.get(t.RETRY_HISTORY, [])) < max_retries


def requeue_given_up(storage: Storage, study_id: int, limit: int) -> int:
    """Queue a WAITING copy of up to ``limit`` FAIL trials nothing replaced yet; how many.

    A FAIL is replaced when a copy names it (``retry_history``, ``boundsweep:previous``) or
    it was re-queued already (``boundsweep:requeued``). Each is marked re-queued before its
    copy is made, by an insert Optuna's unique (trial, key) constraint lets one caller win,
    so two requeues racing copy it once. The copy has the same params and a fresh retry
    allowance (the user fixed the cause).
    """
    trials = rdb_of(storage).get_all_trials(study_id, deepcopy=False)
    replaced = {
        number
        for trial in trials
        for number in [
            *trial.system_attrs.get(t.RETRY_HISTORY, []),
            trial.system_attrs.get(ATTR_PREVIOUS),
        ]
    }
    open_fails = sorted(
        (
            trial
            for trial in trials
            if trial.state == TrialState.FAIL
            and trial.number not in replaced
            and ATTR_REQUEUED not in trial.system_attrs
        ),
        key=lambda trial: trial.number,
        reverse=True,  # the newest of a chain is the one given up on
    )
    done = 0
    for trial in open_fails[:limit]:
        try:
            with engine_of(storage).begin() as conn:
                conn.execute(
                    sa.insert(t.trial_system_attributes).values(
                        trial_id=trial._trial_id, key=ATTR_REQUEUED, value_json=json.dumps(True)
                    )
                )
        except sa.exc.IntegrityError:
            continue  # another requeue marked it first
        system_attrs = {
            key: value
            for key, value in trial.system_attrs.items()
            if key not in (ATTR_REQUEUED, ATTR_INTERRUPTED)
        }
        system_attrs.setdefault(t.FAILED_TRIAL, trial.number)  # what marks a copy
        system_attrs[t.RETRY_HISTORY] = []
        system_attrs[ATTR_PREVIOUS] = trial.number
        copy = optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            system_attrs=system_attrs,
        )
        rdb_of(storage).create_new_trial(study_id, template_trial=copy)
        done += 1
    return done
