"""The status endpoint's SQL counts: a crashed trial that was queued again is not a lost one."""

from __future__ import annotations

import optuna
import sqlalchemy as sa
from boundsweep.service.db._progress import campaign_progress as service_progress
from boundsweep.studies._storage._queue import claim_waiting_trial, fail_if_running, requeue
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.storage import campaign_progress as storage_progress
from boundsweep.studies.storage import create_campaign, open_storage

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
    study = optuna.load_study(study_name="retried/adabound", storage=storage)
    engine = sa.create_engine(storage_url)

    def counts() -> tuple[int, int, int, int]:
        with engine.connect() as conn:
            arm = service_progress(conn, {"adabound": "retried/adabound"}).arms[0]
        return arm.total, arm.counts["failed"], arm.counts["waiting"], arm.retried

    assert counts() == (6, 0, 6, 0)

    # A crash that is queued again: one FAIL row and one WAITING copy stand for one planned trial.
    crashed = claim_waiting_trial(storage, study._study_id)
    assert crashed is not None and fail_if_running(storage, crashed)
    requeue(storage, study._study_id, storage.get_trial(crashed), count_as_retry=True)
    assert counts() == (6, 0, 6, 1)

    # A crash that is given up (no copy) is a failed trial, in the total.
    given_up = claim_waiting_trial(storage, study._study_id)
    assert given_up is not None and fail_if_running(storage, given_up)
    assert counts() == (6, 1, 5, 1)
    # The same answer as the workers' own progress query.
    row = storage_progress(storage, "retried")[0]
    assert (row.total, row.fail, row.waiting, row.retried) == (6, 1, 5, 1)
    engine.dispose()
