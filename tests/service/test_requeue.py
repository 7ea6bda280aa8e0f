"""Failed trials put back: `boundsweep requeue` and `POST /campaigns/{name}/requeue` queue each
FAIL trial given up on once, with its params, and the counts stay right (SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.storage import (
    campaign_progress,
    campaign_study_ids,
    claim_waiting_trial,
    create_campaign,
    fail_if_running,
    open_storage,
    requeue,
)
from optuna.trial import TrialState

from tests.service._live_api import api_client
from tests.service.test_cli import run

SPEC = CampaignSpec.model_validate(
    {
        "name": "put-back",
        "task": "digits_mlp",
        "seeds": [0, 1],
        "budget": {"epochs": 1, "max_steps": 2},
        "arms": [
            {"optimizer": "sgdm", "space": {"lr": {"grid": [0.01, 0.1]}}},
            {"optimizer": "adam", "space": {"lr": {"grid": [0.001, 0.01]}}},
        ],
    }
)


def _fail(storage: object, study_id: int, *, retried: bool) -> None:
    """One claimed trial crashes: given up on (FAIL), or retried (FAIL and a WAITING copy)."""
    trial_id = claim_waiting_trial(storage, study_id)
    assert trial_id is not None and fail_if_running(storage, trial_id)
    if retried:
        requeue(storage, study_id, storage.get_trial(trial_id), count_as_retry=True)


def _counts(storage: object) -> dict[str, tuple[int, int, int, int]]:
    return {
        arm.arm: (arm.total, arm.waiting, arm.fail, arm.retried)
        for arm in campaign_progress(storage, SPEC.name)
    }


def _params(storage: object, study_id: int, state: TrialState) -> list[dict[str, object]]:
    trials = storage.get_all_trials(study_id, deepcopy=False, states=(state,))
    return sorted((t.params for t in trials), key=repr)


@pytest.fixture
def failed(storage_url: str) -> object:
    storage = open_storage(storage_url)
    create_campaign(storage, SPEC)
    ids = campaign_study_ids(storage, SPEC.name)
    _fail(storage, ids["sgdm"], retried=False)
    _fail(storage, ids["sgdm"], retried=False)
    _fail(storage, ids["sgdm"], retried=True)  # a FAIL that already has its copy
    _fail(storage, ids["adam"], retried=False)
    assert _counts(storage) == {"sgdm": (4, 2, 2, 1), "adam": (4, 3, 1, 0)}
    return storage


def test_the_cli_requeues_each_failed_trial_once(
    capsys: pytest.CaptureFixture[str], storage_url: str, failed: object
) -> None:
    sgdm = campaign_study_ids(failed, SPEC.name)["sgdm"]
    given_up = [
        p
        for p in _params(failed, sgdm, TrialState.FAIL)
        if p not in _params(failed, sgdm, TrialState.WAITING)
    ]
    code, out, _ = run(capsys, "requeue", SPEC.name, "--arm", "sgdm", "--storage", storage_url)
    assert code == 0 and "2 failed trial(s) queued again" in out
    assert _counts(failed) == {"sgdm": (4, 4, 0, 3), "adam": (4, 3, 1, 0)}
    # The same params and seeds are queued again: every planned configuration once.
    assert _params(failed, sgdm, TrialState.WAITING) == sorted(
        ({"lr": lr, "seed": seed} for lr in (0.01, 0.1) for seed in (0, 1)), key=repr
    )
    assert all(p in _params(failed, sgdm, TrialState.WAITING) for p in given_up)
    code, out, _ = run(capsys, "requeue", SPEC.name, "--storage", storage_url)
    assert code == 0 and "1 failed trial(s) queued again (adam 1, sgdm 0)" in out
    code, out, _ = run(capsys, "requeue", SPEC.name, "--storage", storage_url)
    assert "0 failed trial(s)" in out
    assert _counts(failed) == {"sgdm": (4, 4, 0, 3), "adam": (4, 4, 0, 1)}
    code, _, err = run(capsys, "requeue", SPEC.name, "--arm", "nope", "--storage", storage_url)
    assert code == 2 and "arms: adam, sgdm" in err
    code, _, err = run(capsys, "requeue", "missing", "--storage", storage_url)
    assert code == 2 and "no campaign named 'missing'" in err


def test_the_api_requeues_once_and_needs_the_token(storage_url: str, failed: object) -> None:
    with api_client(storage_url) as api:
        anonymous = api.post(
            f"/api/v1/campaigns/{SPEC.name}/requeue", headers={"Authorization": ""}
        )
        assert anonymous.status_code == 401
        first = api.post(f"/api/v1/campaigns/{SPEC.name}/requeue")
        assert first.status_code == 200, first.text
        assert first.json() == {"name": SPEC.name, "requeued": {"adam": 1, "sgdm": 2}, "total": 3}
        second = api.post(f"/api/v1/campaigns/{SPEC.name}/requeue")
        assert second.json()["total"] == 0
        detail = api.get(f"/api/v1/campaigns/{SPEC.name}").json()
        assert (detail["total"], detail["finished"]) == (8, 0)
        assert [a["waiting"] for a in detail["arm_status"]] == [4, 4]
        bad_arm = api.post(f"/api/v1/campaigns/{SPEC.name}/requeue?arm=nope")
        assert bad_arm.status_code == 422 and "adam, sgdm" in bad_arm.text
        assert api.post("/api/v1/campaigns/missing/requeue").status_code == 404
