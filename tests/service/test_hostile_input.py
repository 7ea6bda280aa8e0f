"""Hostile input to a live API on SQLite and PostgreSQL: a 4xx naming the problem, never a 5xx,
no traceback in the server log, and not one row of the database changed."""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from boundsweep.studies.campaign import (
    MAX_CAMPAIGN_STEPS,
    MAX_DOCUMENT_VALUES,
    MAX_EPOCHS,
    MAX_JSON_DEPTH,
)

from tests.service._live_api import AUTH, api_client
from tests.service._snapshot import database_rows

API = "/api/v1"
ARM = {"optimizer": "adabound", "space": {"gamma": {"grid": [1e-3]}}}
SPEC = {"name": "hostile", "task": "digits_mlp", "seeds": [0], "arms": [ARM]}
SCHEDULE = {"name": "nightly", "cron": "0 3 * * *", "template": {"preset": "paper-robustness"}}


def _deep_list(levels: int) -> str:
    return "[" * levels + "]" * levels


def _deep_object(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def _with(base: dict[str, Any], path: str, raw: str) -> bytes:
    """`base` as JSON with the value at `path` (dotted) replaced by the raw JSON `raw`."""
    marker = "__RAW__"
    document = json.loads(json.dumps(base))
    node = document
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = marker
    return json.dumps(document).replace(f'"{marker}"', raw).encode()


BIG = "9" * 5000
CAMPAIGN_BODIES = {
    "deep-list": _deep_list(10_000).encode(),
    "deep-object": _deep_object(10_000).encode(),
    "deep-description": _with(SPEC, "description", _deep_list(10_000)),
    "deep-overrides": _with({"preset": "paper-robustness"}, "overrides.arms", _deep_list(10_000)),
    "just-over-the-depth": _with(SPEC, "description", _deep_list(MAX_JSON_DEPTH)),
    "huge-seed": _with(SPEC, "seeds", f"[{BIG}]"),
    "huge-epochs": _with(SPEC, "budget.epochs", BIG),
    "epochs-1e9": _with(SPEC, "budget.epochs", str(10**9)),
    "epochs-1e30": _with(SPEC, "budget.epochs", str(10**30)),
    "boolean-seeds": _with(SPEC, "seeds", "[true, false]"),
    "too-many-values": _with(SPEC, "seeds", "[" + ",".join(["0"] * MAX_DOCUMENT_VALUES) + "]"),
    "boolean-epochs": _with(SPEC, "budget.epochs", "true"),
    "nul-description": _with(SPEC, "description", '"a\\u0000b"'),
    "bell-description": _with(SPEC, "description", '"a\\u0007b"'),
    "lone-surrogate": _with(SPEC, "description", '"\\ud800"'),
    "nul-key": b'{"name\\u0000": 1}',
    "not-utf8": b'{"name": "\xff\xfe"}',
    "too-many-steps": json.dumps(
        {
            **SPEC,
            "task": "cifar10_resnet34",  # 391 steps an epoch: 4 * 10^9 steps in all
            "budget": {"epochs": MAX_EPOCHS},
            "seeds": list(range(100)),
            "arms": [
                {"name": f"a{i}", "optimizer": "sgdm", "sampler": "random", "n_trials": 1000}
                for i in range(10)
            ],
        }
    ).encode(),
}
SCHEDULE_BODIES = {
    "deep-template": _with(SCHEDULE, "template", _deep_object(10_000)),
    "deep-description": _with(SCHEDULE, "description", _deep_list(10_000)),
    "nul-description": _with(SCHEDULE, "description", '"x\\u0000y"'),
    "huge-int-template": _with(SCHEDULE, "template.overrides", f'{{"grid_width": {BIG}}}'),
    "never-fires": _with(SCHEDULE, "cron", '"0 0 30 2 *"'),
    "repeated-commas": _with(SCHEDULE, "cron", json.dumps("0," * 61 + "0 0 * * *")),
    "not-utf8": b'{"name": "\xc3\x28"}',
    "boolean-seeds": _with(SCHEDULE, "template.overrides", '{"seeds": [true]}'),
}


@pytest.fixture
def api(storage_url: str) -> Iterator[httpx.Client]:
    with api_client(storage_url, dashboard=True) as client:
        # A campaign and a schedule already there: a refused request must leave them as they are.
        assert client.post(f"{API}/campaigns", json=SPEC | {"name": "kept"}).status_code == 201
        assert client.post(f"{API}/schedules", json=SCHEDULE).status_code == 201
        yield client


def _post(api: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return api.post(path, content=body, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("case", sorted(CAMPAIGN_BODIES))
def test_hostile_campaign_bodies_are_refused_and_change_nothing(
    api: httpx.Client, storage_url: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = database_rows(storage_url)
    with caplog.at_level(logging.ERROR):
        response = _post(api, f"{API}/campaigns", CAMPAIGN_BODIES[case])
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail[0]["loc"][0] == "body" and detail[0]["msg"]
    assert database_rows(storage_url) == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a traceback was logged"


@pytest.mark.parametrize("case", sorted(SCHEDULE_BODIES))
def test_hostile_schedule_bodies_are_refused_and_change_nothing(
    api: httpx.Client, storage_url: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = database_rows(storage_url)
    with caplog.at_level(logging.ERROR):
        response = _post(api, f"{API}/schedules", SCHEDULE_BODIES[case])
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert database_rows(storage_url) == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a traceback was logged"


def test_the_errors_name_the_field_the_cap_and_the_value(api: httpx.Client) -> None:
    def message(case: str) -> tuple[list[Any], str]:
        item = _post(api, f"{API}/campaigns", CAMPAIGN_BODIES[case]).json()["detail"][0]
        return item["loc"], item["msg"]

    loc, msg = message("epochs-1e9")
    assert loc == ["body", "budget", "epochs"]
    assert str(10**9) in msg and str(MAX_EPOCHS) in msg
    loc, msg = message("too-many-steps")
    assert loc == ["body", "budget"] and f"{MAX_CAMPAIGN_STEPS}" in msg
    loc, msg = message("huge-seed")
    assert "100 digits" in msg
    loc, msg = message("too-many-values")
    assert loc == ["body"] and f"more than {MAX_DOCUMENT_VALUES:,} values" in msg
    loc, msg = message("deep-description")
    assert f"{MAX_JSON_DEPTH} levels" in msg
    loc, msg = message("nul-description")
    assert loc == ["body", "description"] and "control character" in msg
    loc, msg = message("boolean-seeds")
    assert loc == ["body", "seeds", 0] and "integer" in msg
    cron = _post(api, f"{API}/schedules", SCHEDULE_BODIES["never-fires"]).json()["detail"]
    assert cron[0]["loc"] == ["body", "cron"] and "never fires within 4 years" in cron[0]["msg"]


def _raw(base_url: str, method: str, path: str) -> tuple[int, str, bytes]:
    """Send `path` exactly as written (httpx would resolve `..` segments first)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(method, path, headers={"Content-Length": "0", **AUTH})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/campaigns/..%2F..%2Fetc%2Fpasswd", 404),
        ("POST", "/api/v1/campaigns/../x/cancel", 404),
        ("GET", "/api/v1/nothing/here", 404),
        ("GET", "/api/v1", 404),
        ("POST", "/api/v1/campaigns/kept", 405),  # the path exists, for GET
        ("DELETE", "/api/v1/campaigns", 405),
        ("GET", "/api/nothing", 404),  # the dashboard's part of /api/
        ("PATCH", "/api/studies", 405),
        ("GET", "/api/studies/999999", 404),
    ],
)
def test_every_answer_under_api_is_json(
    api: httpx.Client, method: str, path: str, status: int
) -> None:
    code, content_type, body = _raw(str(api.base_url), method, path)
    assert code == status, body[:300]
    assert content_type.startswith("application/json"), (content_type, body[:300])
    answer = json.loads(body)
    assert isinstance(answer, dict) and answer, answer  # the dashboard's own say "reason"


def test_a_poisoned_schedule_is_listed_with_its_error(api: httpx.Client, storage_url: str) -> None:
    from boundsweep.service.db import Schedule, make_engine
    from sqlalchemy import update

    engine = make_engine(storage_url)
    with engine.begin() as connection:  # a row written before the API refused such crons
        connection.execute(update(Schedule).values(cron="0 0 30 2 *"))
    engine.dispose()
    listing = api.get(f"{API}/schedules")
    assert listing.status_code == 200, listing.text
    [schedule] = listing.json()["data"]
    assert schedule["next_firings"] == [] and "CroniterBadDateError" in schedule["error"]
    one = api.get(f"{API}/schedules/nightly")
    assert one.status_code == 200 and one.json()["error"] == schedule["error"]
