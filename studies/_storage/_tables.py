"""Optuna's own tables, for what its storage API makes too slow (counts, claims, bulk writes).

The schema is Optuna's (``optuna.storages._rdb.models``) and every row is written in Optuna's
own encoding, so Optuna reads it back as usual: queued trials with their params, the atomic
state changes (claim a WAITING trial, fail a stale one, complete a running one) and a trial's
attrs and epoch values in one transaction each. The service's status and trial pages query the
same tables (``studies.storage.optuna_tables``).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from optuna.storages._rdb import models

_TABLES = models.BaseModel.metadata.tables
studies: sa.Table = _TABLES["studies"]
study_directions: sa.Table = _TABLES["study_directions"]
study_user_attributes: sa.Table = _TABLES["study_user_attributes"]
trials: sa.Table = _TABLES["trials"]
trial_values: sa.Table = _TABLES["trial_values"]
trial_params: sa.Table = _TABLES["trial_params"]
trial_system_attributes: sa.Table = _TABLES["trial_system_attributes"]
trial_heartbeats: sa.Table = _TABLES["trial_heartbeats"]
trial_intermediate_values: sa.Table = _TABLES["trial_intermediate_values"]
trial_user_attributes: sa.Table = _TABLES["trial_user_attributes"]

# Study user_attrs that make a study an arm of a campaign (see docs/CONTRACTS.md).
ATTR_CAMPAIGN = "boundsweep:campaign"
ATTR_ARM = "boundsweep:arm"
ATTR_SPEC = "boundsweep:spec"
ATTR_CANCELLED = "boundsweep:cancelled"
ATTR_CREATED_AT = "boundsweep:created_at"


def attr_json(value: object) -> str:
    """A user attr's value as Optuna stores it (``value_json``), for equality in SQL."""
    return json.dumps(value)
