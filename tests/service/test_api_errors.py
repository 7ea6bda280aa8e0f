"""Bad input gets a 4xx whose body names the field and, where there are some, the valid choices."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.service._live_api import api_client

API = "/api/v1"
ARM = {"optimizer": "adabound", "space": {"gamma": {"grid": [1e-3]}}}


def _spec(**changes: Any) -> dict[str, Any]:
    return {"name": "bad-input", "task": "digits_mlp", "seeds": [0], "arms": [ARM], **changes}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    url = f"sqlite:///{tmp_path_factory.mktemp('errors') / 'boundsweep.db'}"
    with api_client(url, max_body_bytes=64 * 1024) as client:
        yield client


def _locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail and all({"loc", "msg", "type"} <= set(item) for item in detail)
    return [item["loc"] for item in detail]


def _messages(response: httpx.Response) -> str:
    return " ".join(item["msg"] for item in response.json()["detail"])


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        (
            _spec(arms=[{"optimizer": "lbfgs"}]),
            ["body", "arms", 0, "optimizer"],
            ["lbfgs", "adabound", "sgdm", "radam"],
        ),
        (_spec(task="imagenet"), ["body", "task"], ["imagenet", "digits_mlp", "mnist1d_mlp"]),
        (
            _spec(arms=[{"optimizer": "sgdm", "space": {"lr": -0.1}}]),
            ["body", "arms", 0, "space", "lr"],
            ["-0.1", "valid range"],
        ),
        (
            _spec(arms=[{"optimizer": "adabound", "space": {"gamma": 1.5}}]),
            ["body", "arms", 0, "space", "gamma"],
            ["1.5", "valid range"],
        ),
        (
            _spec(
                arms=[
                    {
                        "optimizer": "adabound",
                        "space": {
                            p: {"grid": [0.1 * i for i in range(1, 9)]}
                            for p in ("lr", "final_lr", "beta1", "gamma")
                        },
                    }
                ]
            ),
            ["body", "arms", 0, "space"],
            ["grid", "cap"],
        ),
        (_spec(seeds="zero"), ["body", "seeds"], ["list"]),
        (_spec(name="Has Spaces"), ["body", "name"], ["pattern"]),
        (_spec(colour="blue"), ["body", "colour"], ["Extra"]),
        ({"preset": "paper-robustnes"}, ["body", "preset"], ["paper-robustness", "adabound-betas"]),
        (
            {"preset": "paper-robustness", "overrides": {"grid_width": 50}},
            ["body", "overrides", "grid_width"],
            ["1 to 9"],
        ),
        ([1, 2, 3], ["body"], ["JSON object"]),
    ],
    ids=[
        "unknown-optimizer",
        "unknown-task",
        "negative-lr",
        "gamma-above-1",
        "enormous-grid",
        "wrong-type",
        "bad-name",
        "unknown-field",
        "unknown-preset",
        "preset-grid-width",
        "not-an-object",
    ],
)
def test_bad_campaigns_name_the_field(
    api: httpx.Client, body: Any, loc: list[Any], words: list[str]
) -> None:
    response = api.post(f"{API}/campaigns", json=body)
    assert loc in _locs(response)
    for word in words:
        assert word in _messages(response)


def test_malformed_json_says_where(api: httpx.Client) -> None:
    response = api.post(
        f"{API}/campaigns", content=b'{"name": "x",', headers={"Content-Type": "application/json"}
    )
    assert _locs(response) == [["body", 13]]
    assert _messages(response).startswith("Malformed JSON")
    schedules = api.post(
        f"{API}/schedules", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert _locs(schedules)[0][0] == "body" and "Malformed JSON" in _messages(schedules)


def test_oversized_bodies_are_refused_with_413(api: httpx.Client) -> None:
    huge = _spec(description="x" * (128 * 1024))
    response = api.post(f"{API}/campaigns", json=huge)
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large: the limit is 65536 bytes"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"description": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'

    streamed = api.post(
        f"{API}/schedules", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("changes", "loc", "words"),
    [
        ({"cron": "0 3 * *"}, ["body", "cron"], ["5 fields"]),
        ({"cron": "61 3 * * *"}, ["body", "cron"], ["minute 0-59"]),
        ({"cron": "@sometimes"}, ["body", "cron"], ["@daily"]),
        ({"timezone": "Mars/Olympus"}, ["body", "timezone"], ["Europe/Berlin"]),
        (
            {"template": {"task": "digits_mlp", "arms": [{"optimizer": "lbfgs"}]}},
            ["body", "template", "arms", 0, "optimizer"],
            ["adabound"],
        ),
        (
            {"template": {"preset": "paper-robustness", "name": "x"}},
            ["body", "template", "name"],
            ["<schedule>-YYYYMMDD"],
        ),
        ({"name": "x" * 60}, ["body", "name"], ["pattern"]),
        (
            {"template": {"preset": "paper-robustness", "overrides": 10**99}},
            ["body", "template", "overrides"],
            ["dictionary"],
        ),
        (
            {"template": {"preset": "paper-robustness", "overrides": ["name"]}},
            ["body", "template", "overrides"],
            ["dictionary"],
        ),
    ],
    ids=[
        "four-fields",
        "minute-61",
        "unknown-alias",
        "unknown-timezone",
        "bad-template",
        "named-template",
        "long-name",
        "overrides-a-huge-integer",
        "overrides-a-list",
    ],
)
def test_bad_schedules_name_the_field(
    api: httpx.Client, changes: dict[str, Any], loc: list[Any], words: list[str]
) -> None:
    body = {
        "name": "nightly",
        "cron": "0 3 * * *",
        "template": {"preset": "paper-robustness"},
        **changes,
    }
    response = api.post(f"{API}/schedules", json=body)
    assert loc in _locs(response)
    for word in words:
        assert word in _messages(response)


@pytest.mark.parametrize(
    ("path", "status", "loc"),
    [
        (f"{API}/campaigns?limit=0", 422, ["query", "limit"]),
        (f"{API}/campaigns?limit=many", 422, ["query", "limit"]),
        (f"{API}/campaigns?offset=-1", 422, ["query", "offset"]),
        (f"{API}/campaigns/Not%20A%20Name", 422, ["path", "name"]),
        (f"{API}/campaigns/missing", 404, None),
        (f"{API}/campaigns/missing/trials?state=sleeping", 422, ["query", "state"]),
        (f"{API}/campaigns/missing/report?format=pdf", 422, ["query", "format"]),
        (f"{API}/schedules/missing", 404, None),
    ],
)
def test_bad_reads(api: httpx.Client, path: str, status: int, loc: list[Any] | None) -> None:
    response = api.get(path)
    assert response.status_code == status, response.text
    if loc is not None:
        assert loc in _locs(response)
    else:
        assert isinstance(response.json()["detail"], str)


def test_trial_filter_lists_the_arms(api: httpx.Client) -> None:
    assert api.post(f"{API}/campaigns", json=_spec(name="arms-listed")).status_code == 201
    response = api.get(f"{API}/campaigns/arms-listed/trials", params={"arm": "adam"})
    assert _locs(response) == [["query", "arm"]]
    assert "valid arms: adabound" in _messages(response)
