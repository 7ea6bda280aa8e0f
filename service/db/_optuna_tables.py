"""Just the columns of Optuna's tables the service reads with its own SQL.

Why not Optuna's API: with 5,000 trials in one study `get_n_trials` takes seconds, because it
loads every trial; a status page needs one grouped COUNT instead. These light `sa.table`
descriptions (no ORM, no metadata of ours) keep those queries typed and dialect-neutral.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "studies",
    "study_directions",
    "study_user_attributes",
    "trial_params",
    "trial_system_attributes",
    "trial_user_attributes",
    "trial_values",
    "trials",
]

studies = sa.table("studies", sa.column("study_id", sa.Integer), sa.column("study_name", sa.String))
study_directions = sa.table(
    "study_directions",
    sa.column("study_id", sa.Integer),
    sa.column("direction", sa.String),
    sa.column("objective", sa.Integer),
)
study_user_attributes = sa.table(
    "study_user_attributes",
    sa.column("study_id", sa.Integer),
    sa.column("key", sa.String),
    sa.column("value_json", sa.Text),
)
# `state` is a SQL enum of TrialState names ('WAITING', 'RUNNING', 'COMPLETE', 'PRUNED', 'FAIL').
trials = sa.table(
    "trials",
    sa.column("trial_id", sa.Integer),
    sa.column("number", sa.Integer),
    sa.column("study_id", sa.Integer),
    sa.column("state", sa.String),
    sa.column("datetime_start", sa.DateTime),
    sa.column("datetime_complete", sa.DateTime),
)
trial_values = sa.table(
    "trial_values",
    sa.column("trial_id", sa.Integer),
    sa.column("objective", sa.Integer),
    sa.column("value", sa.Float),
)
trial_params = sa.table(
    "trial_params",
    sa.column("trial_id", sa.Integer),
    sa.column("param_name", sa.String),
    sa.column("param_value", sa.Float),
    sa.column("distribution_json", sa.Text),
)
trial_system_attributes = sa.table(
    "trial_system_attributes",
    sa.column("trial_id", sa.Integer),
    sa.column("key", sa.String),
    sa.column("value_json", sa.Text),
)
trial_user_attributes = sa.table(
    "trial_user_attributes",
    sa.column("trial_id", sa.Integer),
    sa.column("key", sa.String),
    sa.column("value_json", sa.Text),
)
