"""The campaigns' storage: Optuna ``RDBStorage`` (SQLite by default, PostgreSQL for many workers).

Each arm of a campaign is one Optuna study named ``<campaign>/<arm>`` whose ``user_attrs``
carry the spec, so the Optuna dashboard and CLI read campaigns as they are. Every trial a
campaign will run is queued (WAITING) when it is created; workers claim them one at a time.

```python
storage = open_storage("sqlite:///boundsweep.db")
create_campaign(storage, spec)
for arm in campaign_progress(storage, spec.name):
    print(arm.arm, arm.complete, "/", arm.total)
```
"""

from __future__ import annotations

from boundsweep.studies._storage._attrs import (
    ATTR_ARM,
    ATTR_CAMPAIGN,
    ATTR_CANCELLED,
    ATTR_CREATED_AT,
    ATTR_SPEC,
)
from boundsweep.studies._storage._campaigns import (
    CampaignExists,
    CampaignNotFound,
    arm_study_name,
    campaign_study_ids,
    cancel_campaign,
    create_campaign,
    is_cancelled,
    list_campaigns,
    load_spec,
    not_installed_on,
    record_not_installed,
)
from boundsweep.studies._storage._defaults import DEFAULT_STORAGE
from boundsweep.studies._storage._open import (
    APPLICATION_NAME,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_RETRIES,
    POSTGRES_CONNECT_TIMEOUT,
    ensure_wal,
    open_engine,
    open_storage,
    postgres_connect_args,
    shown_url,
    storage_error_message,
    storage_error_reason,
)
from boundsweep.studies._storage._optuna import (
    ArmStudy,
    CampaignStorage,
    Storage,
    StudyCounts,
    TrialRow,
    add_finished_trials,
    arm_studies,
    beat,
    campaign_names,
    claim_trial,
    claim_trials,
    claim_waiting_trial,
    engine_of,
    fail_if_running,
    fail_stale_trials,
    finish_trial,
    has_tables,
    requeue,
    retries_left,
    set_intermediate_values,
    set_trial_user_attrs,
    study_counts,
    study_id_of,
    talk_directly,
    trial_id_of,
    trial_rows,
)
from boundsweep.studies._storage._progress import (
    API_STATES,
    TRIAL_STATES,
    ArmProgress,
    api_state,
    arm_progress,
    campaign_eta_seconds,
    campaign_progress,
    campaign_specs,
    spec_of,
)
from boundsweep.studies._storage._requeue import requeue_failed

__all__ = [
    "APPLICATION_NAME",
    "API_STATES",
    "ATTR_ARM",
    "ATTR_CAMPAIGN",
    "ATTR_CANCELLED",
    "ATTR_CREATED_AT",
    "ATTR_SPEC",
    "TRIAL_STATES",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_STORAGE",
    "POSTGRES_CONNECT_TIMEOUT",
    "ArmProgress",
    "ArmStudy",
    "CampaignStorage",
    "Storage",
    "StudyCounts",
    "TrialRow",
    "add_finished_trials",
    "api_state",
    "arm_studies",
    "CampaignExists",
    "CampaignNotFound",
    "arm_progress",
    "arm_study_name",
    "beat",
    "campaign_eta_seconds",
    "campaign_names",
    "campaign_progress",
    "campaign_specs",
    "campaign_study_ids",
    "cancel_campaign",
    "claim_trial",
    "claim_trials",
    "claim_waiting_trial",
    "create_campaign",
    "engine_of",
    "ensure_wal",
    "fail_if_running",
    "fail_stale_trials",
    "finish_trial",
    "has_tables",
    "is_cancelled",
    "list_campaigns",
    "load_spec",
    "not_installed_on",
    "record_not_installed",
    "open_engine",
    "open_storage",
    "postgres_connect_args",
    "requeue",
    "requeue_failed",
    "retries_left",
    "set_intermediate_values",
    "set_trial_user_attrs",
    "shown_url",
    "spec_of",
    "storage_error_message",
    "storage_error_reason",
    "study_counts",
    "study_id_of",
    "talk_directly",
    "trial_id_of",
    "trial_rows",
]
