"""Failing a RUNNING trial and queueing its copy: crashes, stale trials, trials given up on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import optuna
import sqlalchemy as sa
from boundsweep.studies._storage._attrs import (
    ATTR_GRACE,
    ATTR_INTERRUPTED,
    ATTR_PREVIOUS,
    ATTR_REQUEUED,
)
from boundsweep.studies._storage._optuna import _schema as t
from boundsweep.studies._storage._optuna._beat import stale_trial_ids
from boundsweep.studies._storage._optuna._claim import read_trials
from boundsweep.studies._storage._optuna._queue import next_trial_number
from boundsweep.studies._storage._optuna._schema import (
    Storage,
    engine_of,
    rdb_of,
)
from optuna.distributions import distribution_to_json
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


def _copy_attrs(trial: FrozenTrial, *, count_as_retry: bool) -> dict[str, Any]:
    """The system attrs of a failed trial's WAITING copy (what Optuna's
    ``RetryHeartbeatStaleTrialCallback`` writes, plus boundsweep's interruption count)."""
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
    system_attrs.pop(ATTR_GRACE, None)  # the next claimer records its own
    return system_attrs


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
    with engine_of(storage).begin() as conn:
        (copy,) = insert_copies(
            conn, [(study_id, trial, _copy_attrs(trial, count_as_retry=count_as_retry))]
        )
    return copy


def insert_copies(
    conn: sa.Connection, copies: list[tuple[int, FrozenTrial, dict[str, Any]]]
) -> list[int]:
    """Insert a WAITING copy of each (study id, trial, the copy's system attrs) in ``conn``'s
    transaction: the trial's params (with their distributions) and user attrs, as Optuna's
    ``create_new_trial(template_trial=...)`` copies them, numbered after the study's trials
    under its lock. The copies' ids, in order."""
    ids = []
    numbers: dict[int, int] = {}
    for study_id, trial, system_attrs in copies:
        if study_id not in numbers:
            numbers[study_id] = next_trial_number(conn, study_id)
        number = numbers[study_id]
        numbers[study_id] += 1
        copy_id = conn.execute(
            sa.insert(t.trials)
            .values(study_id=study_id, number=number, state=TrialState.WAITING)
            .returning(t.trials.c.trial_id)
        ).scalar_one()
        ids.append(copy_id)
        params = [
            {
                "trial_id": copy_id,
                "param_name": name,
                "param_value": trial.distributions[name].to_internal_repr(value),
                "distribution_json": distribution_to_json(trial.distributions[name]),
            }
            for name, value in trial.params.items()
        ]
        if params:
            conn.execute(sa.insert(t.trial_params), params)
        for table, attrs in (
            (t.trial_user_attributes, trial.user_attrs),
            (t.trial_system_attributes, system_attrs),
        ):
            if attrs:
                conn.execute(
                    sa.insert(table),
                    [
                        {"trial_id": copy_id, "key": key, "value_json": json.dumps(value)}
                        for key, value in attrs.items()
                    ],
                )
    return ids


@dataclass
class GivenBack:
    """What ``give_back`` did: the trials it failed, the copies it queued, the trials given up
    on (failed with no retry left: no copy)."""

    failed: list[int] = field(default_factory=list)
    copies: list[int] = field(default_factory=list)
    given_up: list[FrozenTrial] = field(default_factory=list)


def give_back(
    storage: Storage, trial_ids: list[int], *, count_as_retry: bool, max_retries: int
) -> GivenBack:
    """Fail the RUNNING trials among ``trial_ids`` and queue a WAITING copy of each, all in
    ONE transaction: a process killed at any moment leaves either each trial RUNNING (it goes
    stale and is retried) or each one FAIL with its copy queued, never a FAIL without its copy.

    A trial that is no longer RUNNING (another worker failed it as stale and queued the copy,
    or it finished) is left alone. With ``count_as_retry`` (a crash, a stale trial) a trial
    whose retries are spent stays FAIL without a copy; without it (a worker asked to stop)
    every trial is queued again and counted as interrupted, not as a retry.
    """
    trials = t.trials
    done = GivenBack()
    if not trial_ids:
        return done
    with engine_of(storage).begin() as conn:
        failed = conn.execute(
            sa.update(trials)
            .where(trials.c.trial_id.in_(trial_ids), trials.c.state == TrialState.RUNNING)
            .values(state=TrialState.FAIL, datetime_complete=datetime.now())
            .returning(
                trials.c.trial_id, trials.c.study_id, trials.c.number, trials.c.datetime_start
            )
        ).all()
        if not failed:
            return done
        study_of = {trial_id: study_id for trial_id, study_id, _, _ in failed}
        read = read_trials(
            conn,
            sorted(((i, n, s) for i, _, n, s in failed), key=lambda row: row[1]),
            state=TrialState.FAIL,
        )
        copies = []
        for trial in read:
            done.failed.append(trial._trial_id)
            if count_as_retry and not retries_left(trial, max_retries):
                done.given_up.append(trial)
                continue
            copies.append(
                (
                    study_of[trial._trial_id],
                    trial,
                    _copy_attrs(trial, count_as_retry=count_as_retry),
                )
            )
        done.copies = insert_copies(conn, copies)
    return done


def fail_stale_trials(storage: RDBStorage, *, grace_period: float, max_retries: int) -> list[int]:
    """Fail every RUNNING trial whose worker stopped beating; re-queue those with retries left.

    Any live worker calls this now and then (a stale trial is only failed when someone
    looks). Exactly one caller wins each trial, so each crash is re-queued at most once; each
    trial's FAIL and its copy are written in one transaction (``give_back``).

    Returns:
        Ids of the trials this call failed.
    """
    stale = [trial_id for _, trial_id in stale_trial_ids(storage, grace_period)]
    return give_back(storage, stale, count_as_retry=True, max_retries=max_retries).failed


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
        try:
            # The mark and the copy in one transaction: never a mark without its copy.
            with engine_of(storage).begin() as conn:
                conn.execute(
                    sa.insert(t.trial_system_attributes).values(
                        trial_id=trial._trial_id, key=ATTR_REQUEUED, value_json=json.dumps(True)
                    )
                )
                insert_copies(conn, [(study_id, copy, system_attrs)])
        except sa.exc.IntegrityError:
            continue  # another requeue marked it first
        done += 1
    return done
