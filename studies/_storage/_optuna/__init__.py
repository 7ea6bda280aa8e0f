"""The adapter: the one place that knows how Optuna stores a study (written for Optuna 4.3-5.0).

Everything boundsweep does to Optuna's storage beyond its public API goes through here, and
nothing else in the project names Optuna's tables, its private attributes or its internal
attr keys (``tests/test_optuna_boundary.py`` fails if something does):

- the tables of ``optuna.storages._rdb.models`` and their value encodings, one module per
  state change of a trial: queueing (``_queue``), the claim (``_claim``), heartbeats and
  staleness (``_beat``), finishing and the records before it (``_finish``), failing and
  re-queueing (``_requeue``); a campaign's studies, attrs and queue written in the caller's
  one transaction (``_create``); and the reads: counts and pages (``_counts``,
  ``_trial_rows``, ``_studies``);
- ``RDBStorage`` under Optuna's cache wrapper (``_backend``), ``Study._study_id``,
  ``Trial._trial_id``, ``Study._storage``, and the trials a sampler read during one trial
  (``Study._thread_local``, dropped when a trial is finished without ``tell``) (``_schema``);
- the ``get_trial`` that serves a just-claimed trial to ``optuna.Trial.__init__``
  (``_primed``);
- the system attr keys Optuna itself reads: ``fixed_params`` (``enqueue_trial``),
  ``failed_trial`` and ``retry_history`` (``RetryHeartbeatStaleTrialCallback``);
- the one name that moved within the range: the stale-trial retry callback
  (``RetryStaleTrial``: ``RetryFailedTrialCallback`` before Optuna 4.9) and the
  ``RDBStorage`` argument that takes it (``heartbeat_storage``).

Each state change has one path here. Written for, and tested on, the Optuna versions that
``pyproject.toml`` admits; ``tests/studies/test_optuna_contract.py`` reads every write back
through Optuna's public API and the dashboard's, and compares it with what Optuna writes
itself for the same operation; ``make test`` runs it on the oldest and the newest.
"""

from __future__ import annotations

from boundsweep.studies._storage._optuna._beat import (
    beat,
    heartbeat_now,
    older_than,
    stale_trial_ids,
)
from boundsweep.studies._storage._optuna._claim import (
    CLAIMER_ATTR,
    claim_trial,
    claim_trials,
    claim_waiting_trial,
    read_trials,
)
from boundsweep.studies._storage._optuna._counts import StateCount, StudyCounts, study_counts
from boundsweep.studies._storage._optuna._create import (
    ExistingStudy,
    NewStudy,
    existing_studies,
    write_studies,
)
from boundsweep.studies._storage._optuna._finish import (
    Finished,
    finish_trial,
    finish_trials,
    set_intermediate_values,
    set_intermediate_values_of,
    set_trial_user_attrs,
)
from boundsweep.studies._storage._optuna._primed import CampaignStorage, heartbeat_storage
from boundsweep.studies._storage._optuna._queue import (
    add_finished_trials,
    enqueue_fixed_params,
    insert_queued_trials,
)
from boundsweep.studies._storage._optuna._requeue import (
    GivenBack,
    fail_if_running,
    fail_stale_trials,
    give_back,
    requeue,
    requeue_given_up,
    retries_left,
)
from boundsweep.studies._storage._optuna._schema import (
    FrozenStudy,
    RetryStaleTrial,
    Storage,
    engine_of,
    forget_trials_read,
    has_tables,
    is_rdb,
    rdb_of,
    storage_of,
    study_id_of,
    talk_directly,
    trial_id_of,
)
from boundsweep.studies._storage._optuna._studies import (
    ArmStudy,
    arm_studies,
    campaign_names,
    put_study_attr,
    set_study_attr,
    study_attrs_starting,
)
from boundsweep.studies._storage._optuna._trial_rows import TrialRow, trial_rows

__all__ = [
    "CLAIMER_ATTR",
    "Finished",
    "GivenBack",
    "finish_trials",
    "give_back",
    "heartbeat_now",
    "older_than",
    "read_trials",
    "set_intermediate_values_of",
    "ArmStudy",
    "CampaignStorage",
    "ExistingStudy",
    "FrozenStudy",
    "NewStudy",
    "RetryStaleTrial",
    "StateCount",
    "Storage",
    "StudyCounts",
    "TrialRow",
    "add_finished_trials",
    "arm_studies",
    "beat",
    "campaign_names",
    "claim_trial",
    "claim_trials",
    "claim_waiting_trial",
    "engine_of",
    "enqueue_fixed_params",
    "existing_studies",
    "fail_if_running",
    "fail_stale_trials",
    "finish_trial",
    "forget_trials_read",
    "has_tables",
    "heartbeat_storage",
    "insert_queued_trials",
    "is_rdb",
    "rdb_of",
    "requeue",
    "requeue_given_up",
    "retries_left",
    "set_intermediate_values",
    "put_study_attr",
    "set_study_attr",
    "study_attrs_starting",
    "set_trial_user_attrs",
    "stale_trial_ids",
    "storage_of",
    "study_counts",
    "study_id_of",
    "talk_directly",
    "trial_id_of",
    "trial_rows",
    "write_studies",
]
