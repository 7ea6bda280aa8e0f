"""Optuna's tables, its value encodings, its attr keys and the private attributes used.

Everything here is Optuna's, not boundsweep's: the table definitions come from
``optuna.storages._rdb.models`` (so the enum types, column names and encodings are the ones
the installed Optuna writes), and the few private attributes read (``_backend``,
``_study_id``, ``_trial_id``, ``Study._thread_local``) each have one accessor.
"""

from __future__ import annotations

import json

import optuna
import sqlalchemy as sa
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._rdb import models
from optuna.study._frozen import FrozenStudy  # what BaseStorage.get_all_studies returns
from optuna.trial import FrozenTrial

Storage = RDBStorage | sa.Engine
"""What the adapter's SQL runs on: an ``RDBStorage`` (``CampaignStorage``) or its engine."""

_TABLES = models.BaseModel.metadata.tables
studies: sa.Table = _TABLES["studies"]
study_directions: sa.Table = _TABLES["study_directions"]
study_user_attributes: sa.Table = _TABLES["study_user_attributes"]
study_system_attributes: sa.Table = _TABLES["study_system_attributes"]
trials: sa.Table = _TABLES["trials"]
trial_values: sa.Table = _TABLES["trial_values"]
trial_params: sa.Table = _TABLES["trial_params"]
trial_system_attributes: sa.Table = _TABLES["trial_system_attributes"]
trial_heartbeats: sa.Table = _TABLES["trial_heartbeats"]
trial_intermediate_values: sa.Table = _TABLES["trial_intermediate_values"]
trial_user_attributes: sa.Table = _TABLES["trial_user_attributes"]

METRIC_NAMES = "study:metric_names"
"""The study system attr ``Study.set_metric_names`` writes (the dashboard's axis label)."""

# Trial system attrs Optuna itself writes and reads.
FIXED_PARAMS = "fixed_params"
"""``Study.enqueue_trial``'s plan of a queued trial; ``Trial`` suggests these values."""
FAILED_TRIAL = "failed_trial"
"""``RetryHeartbeatStaleTrialCallback``: the number of the attempt a retry copy replaces."""
RETRY_HISTORY = "retry_history"
"""``RetryHeartbeatStaleTrialCallback``: the numbers of every failed attempt before this copy."""

value_to_stored = models.TrialValueModel.value_to_stored_repr
stored_to_value = models.TrialValueModel.stored_repr_to_value
intermediate_to_stored = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr
stored_to_intermediate = models.TrialIntermediateValueModel.stored_repr_to_intermediate_value


RetryStaleTrial: type = (
    getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    or optuna.storages.RetryFailedTrialCallback
)
"""Optuna's callback that queues a copy of a stale trial: ``RetryHeartbeatStaleTrialCallback``
from Optuna 4.9, ``RetryFailedTrialCallback`` before (a deprecated alias since, gone in 6)."""


def has_tables(storage: Storage) -> bool:
    """Whether Optuna's tables exist: a reader that opened a bare engine on a fresh database
    (created nothing) finds no campaign there rather than an error."""
    return sa.inspect(engine_of(storage)).has_table(studies.name)


def attr_json(value: object) -> str:
    """An attr's value as Optuna stores it (``value_json``), for equality in SQL."""
    return json.dumps(value)


def rdb_of(storage: BaseStorage) -> RDBStorage:
    """The ``RDBStorage`` itself, under Optuna's ``_CachedStorage`` wrapper if there is one."""
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, RDBStorage):
        raise TypeError(f"expected an RDBStorage, got {type(storage).__name__}")
    return backend


def is_rdb(storage: BaseStorage) -> bool:
    """Whether ``storage`` is (or wraps) an ``RDBStorage``."""
    return isinstance(getattr(storage, "_backend", storage), RDBStorage)


def engine_of(storage: Storage) -> sa.Engine:
    """The SQLAlchemy engine behind an ``RDBStorage``, a cached wrapper, or an engine."""
    if isinstance(storage, sa.Engine):
        return storage
    return rdb_of(storage).engine


def study_id_of(study: optuna.Study | FrozenStudy) -> int:
    """The storage's id of a study (Optuna keeps it private)."""
    return study._study_id


def trial_id_of(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a trial (Optuna keeps it private)."""
    return trial._trial_id


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a study reads and writes through (Optuna's cache wrapper, usually)."""
    return study._storage


def forget_trials_read(study: optuna.Study) -> None:
    """Drop the trials the study's sampler read during the last trial.

    Optuna keeps them per thread (``Study._thread_local.cached_all_trials``) until the next
    ``ask`` or ``tell``; a trial finished without ``tell`` must drop them too, or the next
    trial's sampler (TPE counts its finished trials there) misses the result.
    """
    study._thread_local.cached_all_trials = None


def talk_directly(study: optuna.Study, storage: RDBStorage) -> None:
    """Make ``study`` use ``storage`` itself instead of Optuna's trial cache over it.

    The cache re-reads every unfinished trial of the study before it accepts a claimed one;
    a study whose sampler reads no other trial (grid, random, no pruner) only pays for that.
    """
    study._storage = storage
