"""A property over the write endpoints of a live API (SQLite and PostgreSQL): whatever body
arrives, valid specs bent out of shape with deep nesting, huge integers, NUL and other control
characters, booleans for numbers, or bytes that are not UTF-8, the answer is never a 5xx, no
error is logged, and a refused request leaves every table exactly as it was. Bounded: a fixed
number of examples from a fixed seed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.service._live_api import api_client
from tests.service._snapshot import database_rows

API = "/api/v1"
SPEC = {
    "name": "fuzzed",
    "task": "digits_mlp",
    "seeds": [0],
    "budget": {"epochs": 1, "max_steps": 2},
    "arms": [{"optimizer": "adabound", "space": {"gamma": {"grid": [1e-3]}}}],
    "description": "",
}
SCHEDULE = {
    "name": "fuzzed",
    "cron": "0 3 * * *",
    "timezone": "UTC",
    "template": {"preset": "paper-robustness", "overrides": {"task": "digits_mlp"}},
    "description": "",
}
EXAMPLES = 60


def _deep(levels: int, kind: str) -> str:
    if kind == "list":
        return "[" * levels + "]" * levels
    return '{"a":' * levels + "0" + "}" * levels


# Raw JSON fragments a hostile client puts where a value belongs.
hostile_values = st.one_of(
    st.builds(_deep, st.integers(20, 12_000), st.sampled_from(["list", "object"])),
    st.integers(90, 6_000).map(lambda digits: "9" * digits),
    st.integers(-(10**40), 10**40).map(str),
    st.sampled_from(["true", "false", "null", "1e999", "-0", "NaN", "[]", "{}", '""']),
    st.text(min_size=0, max_size=20).map(json.dumps),
    st.sampled_from(['"a\\u0000b"', '"\\u0007"', '"\\ud800"', '"\\u001b[31m"', '"x\\u007f"']),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=8,
    ).map(json.dumps),
)


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*prefix, index))
    return found


def _bend(base: dict[str, Any], path: tuple[Any, ...], raw: str) -> bytes:
    """`base` as JSON with the value at `path` replaced by the raw JSON text `raw`."""
    marker = "__FUZZ__"
    document = json.loads(json.dumps(base))
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = marker
    return json.dumps(document).replace(f'"{marker}"', raw, 1).encode()


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    endpoint, base = draw(st.sampled_from([("campaigns", SPEC), ("schedules", SCHEDULE)]))
    kind = draw(st.sampled_from(["bend", "bend", "bend", "bytes", "whole"]))
    if kind == "bytes":  # not UTF-8, or not JSON at all
        body = draw(st.binary(min_size=1, max_size=64))
    elif kind == "whole":
        body = draw(hostile_values).encode()
    else:
        path = draw(st.sampled_from(_paths(base)))
        body = _bend(base, path, draw(hostile_values))
    return endpoint, body


@pytest.fixture
def api(storage_url: str) -> Iterator[httpx.Client]:
    with api_client(storage_url, dashboard=True) as client:
        assert client.post(f"{API}/campaigns", json=SPEC | {"name": "kept"}).status_code == 201
        assert client.post(f"{API}/schedules", json=SCHEDULE | {"name": "kept"}).status_code == 201
        yield client


def test_no_body_gets_a_5xx_or_changes_the_database_when_refused(
    api: httpx.Client, storage_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    statuses: dict[int, int] = {}

    @seed(20190501)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(bodies())
    def check(case: tuple[str, bytes]) -> None:
        endpoint, body = case
        before = database_rows(storage_url)
        response = api.post(
            f"{API}/{endpoint}", content=body, headers={"Content-Type": "application/json"}
        )
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (body[:200], response.text[:500])
        assert response.headers["content-type"].startswith("application/json")
        if response.status_code >= 400:
            assert database_rows(storage_url) == before, body[:200]
        else:  # a bend that stayed valid: undo it so the next example starts the same
            name = response.json()["name"]
            if endpoint == "schedules":
                assert api.delete(f"{API}/schedules/{name}").status_code == 204

    with caplog.at_level(logging.ERROR):
        check()
    assert sum(statuses.values()) == EXAMPLES
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "an error was logged"
    logging.getLogger(__name__).warning("fuzzed bodies by status: %s", statuses)
