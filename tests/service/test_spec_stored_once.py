"""The campaign spec is stored once (on the first arm study) and read by one loader.

A database written by an older boundsweep keeps reading: its spec on every arm study, a
registry row (revision 0002) holding a copy, and a value today's registry would refuse.
"""

from __future__ import annotations

from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from alembic import command
from boundsweep.service.cli import main
from boundsweep.service.db import CampaignRecord, insert_campaign_rows, make_engine, utcnow
from boundsweep.service.db._migrate import _alembic_config
from boundsweep.studies.campaign import STORED, CampaignSpec, preset
from boundsweep.studies.robustness import analyze_campaign
from boundsweep.studies.storage import (
    ATTR_SPEC,
    campaign_progress,
    create_campaign,
    load_spec,
    open_storage,
)
from pydantic import ValidationError

from tests.service._live_api import api_client

API = "/api/v1"


def _upgrade_to(url: str, revision: str) -> None:
    engine = make_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), revision)
    finally:
        engine.dispose()


def _version(url: str) -> str:
    engine = make_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            return connection.scalar(sa.text("SELECT version_num FROM bs_alembic_version"))
    finally:
        engine.dispose()


def _registry_spec(url: str, name: str) -> Any:
    engine = make_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.select(CampaignRecord.spec).where(CampaignRecord.name == name)
            ).scalar_one()
    finally:
        engine.dispose()


def _old_layout(url: str) -> dict[str, Any]:
    """A campaign as an older boundsweep left it; its stored spec."""
    storage = open_storage(url)
    spec = preset("paper-robustness", name="old-c", task="digits_mlp", grid_width=1, seeds=[0])
    create_campaign(storage, spec)
    stored = spec.model_dump(mode="json")
    # Admitted by an older registry: an adam lr below today's lower bound.
    adam = next(arm for arm in stored["arms"] if arm["name"] == "adam")
    adam["space"]["lr"] = {"grid": [1e-6]}
    for arm in spec.arms:  # the old layout: the spec on every arm study
        study = optuna.load_study(study_name=f"old-c/{arm.name}", storage=storage)
        study.set_user_attr(ATTR_SPEC, stored)
    _upgrade_to(url, "0002")  # the service tables as they were, the spec in the row
    engine = make_engine(url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        row = {"name": "old-c", "task": "digits_mlp", "created_by": "api", "spec": stored,
               "state": "active", "schedule_name": None, "created_at": utcnow()}  # fmt: skip
        insert_campaign_rows(connection, [row])
    engine.dispose()
    return stored


def test_an_old_layout_database_reads_as_it_was(storage_url: str) -> None:
    stored = _old_layout(storage_url)
    with pytest.raises(ValidationError, match=r"space\.lr: Invalid lr: 1e-06"):
        CampaignSpec.model_validate(stored)  # today's admission refuses it; a read does not
    expected = CampaignSpec.model_validate(stored, context=STORED)
    storage = open_storage(storage_url)
    assert load_spec(storage, "old-c") == expected  # what the worker reads
    arms = campaign_progress(storage, "old-c")
    assert [(a.arm, a.optimizer, a.sampler) for a in arms] == [
        (arm.name, arm.optimizer, arm.sampler) for arm in expected.arms
    ]
    report = analyze_campaign(storage, "old-c", importance=False)
    adam = next(arm for arm in report["arms"] if arm["name"] == "adam")
    assert adam["space"]["lr"] == {"grid": [1e-6]} and report["task"] == "digits_mlp"
    assert main(["status", "old-c", "--storage", storage_url]) == 0

    assert _version(storage_url) == "0002"
    with api_client(storage_url) as api:  # starts by migrating to head
        listed = api.get(f"{API}/campaigns").json()["data"]
        assert [(c["name"], c["arms"]) for c in listed] == [
            ("old-c", [arm.name for arm in expected.arms])
        ]
        detail = api.get(f"{API}/campaigns/old-c").json()
        assert detail["spec"] == expected.model_dump(mode="json")
        assert detail["total"] == expected.total_trials()
        assert api.get(f"{API}/campaigns/old-c/trials", params={"arm": "adam"}).status_code == 200
    assert _version(storage_url) == "0004"
    assert _registry_spec(storage_url, "old-c") == stored  # the user's copy is left as it was


def test_a_new_campaign_stores_its_spec_once(storage_url: str) -> None:
    body = {"preset": "paper-robustness", "name": "new-c",
            "overrides": {"task": "digits_mlp", "grid_width": 1, "seeds": [0]}}  # fmt: skip
    with api_client(storage_url) as api:
        assert api.post(f"{API}/campaigns", json=body).status_code == 201
        detail = api.get(f"{API}/campaigns/new-c").json()
        listed = api.get(f"{API}/campaigns").json()["data"]
    spec = load_spec(open_storage(storage_url), "new-c")
    assert detail["spec"] == spec.model_dump(mode="json")
    assert listed[0]["arms"] == [arm.name for arm in spec.arms]
    assert _registry_spec(storage_url, "new-c") is None  # the plan is cleared once made
    holders = [
        arm.name
        for arm in spec.arms
        if ATTR_SPEC
        in optuna.load_study(study_name=f"new-c/{arm.name}", storage=storage_url).user_attrs
    ]
    assert holders == [spec.arms[0].name]
