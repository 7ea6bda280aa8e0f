"""The read model's counts: a crashed trial that was queued again is not a lost one."""

from __future__ import annotations

import optuna
import sqlalchemy as sa
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.storage import (
    campaign_progress,
    claim_waiting_trial,
    create_campaign,
    fail_if_running,
    open_storage,
    requeue,
    study_id_of,
)

SPEC = {
    "name": "retried",
    "task": "digits_mlp",
    "seeds": [0, 1],
    "budget": {"epochs": 1, "max_steps": 2},
    "arms": [{"optimizer": "adabound", "space": {"final_lr": {"grid": [0.01, 0.1, 1.0]}}}],
}


def test_a_retried_crash_counts_once_and_a_given_up_one_as_failed(storage_url: str) -> None:
    storage = open_storage(storage_url)
    create_campaign(storage, CampaignSpec.model_validate(SPEC))
    study_id = study_id_of(optuna.load_study(study_name="retried/adabound", storage=storage))
    engine = sa.create_engine(storage_url)

    def counts() -> tuple[int, int, int, int]:
        # The API reads through an engine of its own, the worker and CLI through the storage:
        # one read model, the same answer.
        (arm,) = campaign_progress(engine, "retried")
        (same,) = campaign_progress(storage, "retried")
        assert arm == same
        return arm.total, arm.counts["failed"], arm.counts["waiting"], arm.retried

    assert counts() == (6, 0, 6, 0)

    # A crash that is queued again: one FAIL row and one WAITING copy stand for one planned trial.
    crashed = claim_waiting_trial(storage, study_id)
    assert crashed is not None and fail_if_running(storage, crashed)
    requeue(storage, study_id, storage.get_trial(crashed), count_as_retry=True)
    assert counts() == (6, 0, 6, 1)

    # A crash that is given up (no copy) is a failed trial, in the total.
    given_up = claim_waiting_trial(storage, study_id)
    assert given_up is not None and fail_if_running(storage, given_up)
    assert counts() == (6, 1, 5, 1)
    (row,) = campaign_progress(storage, "retried")
    assert (row.fail, row.running, row.finished, row.done) == (1, 0, 1, False)
    engine.dispose()
