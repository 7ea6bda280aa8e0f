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

from boundsweep.studies._storage import _tables as optuna_tables
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
)
from boundsweep.studies._storage._defaults import DEFAULT_STORAGE
from boundsweep.studies._storage._open import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_RETRIES,
    POSTGRES_CONNECT_TIMEOUT,
    CampaignStorage,
    engine_of,
    ensure_wal,
    open_storage,
    storage_error_message,
    storage_error_reason,
)
from boundsweep.studies._storage._progress import ArmProgress, arm_progress, campaign_progress
from boundsweep.studies._storage._queue import (
    beat,
    claim_trial,
    claim_trials,
    claim_waiting_trial,
    fail_if_running,
    fail_stale_trials,
    finish_trial,
    requeue,
    retries_left,
    set_intermediate_values,
    set_trial_user_attrs,
)
from boundsweep.studies._storage._tables import (
    ATTR_ARM,
    ATTR_CAMPAIGN,
    ATTR_CANCELLED,
    ATTR_CREATED_AT,
    ATTR_SPEC,
)

__all__ = [
    "ATTR_ARM",
    "ATTR_CAMPAIGN",
    "ATTR_CANCELLED",
    "ATTR_CREATED_AT",
    "ATTR_SPEC",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_STORAGE",
    "POSTGRES_CONNECT_TIMEOUT",
    "ArmProgress",
    "CampaignStorage",
    "CampaignExists",
    "CampaignNotFound",
    "arm_progress",
    "arm_study_name",
    "beat",
    "campaign_progress",
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
    "is_cancelled",
    "list_campaigns",
    "load_spec",
    "open_storage",
    "optuna_tables",
    "requeue",
    "retries_left",
    "set_intermediate_values",
    "set_trial_user_attrs",
    "storage_error_message",
    "storage_error_reason",
]
