"""Bearer tokens: every write refused without one (401) or with a wrong one (403)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from boundsweep.service.settings import DEMO_TOKEN, Settings

from tests.service._live_api import TOKEN, api_client

API = "/api/v1"
PRESET = {
    "preset": "paper-robustness",
    "name": "auth-c",
    "overrides": {"task": "digits_mlp", "grid_width": 1, "seeds": [0]},
}
SCHEDULE = {"name": "auth-s", "cron": "@daily", "template": {"preset": "paper-robustness"}}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    url = f"sqlite:///{tmp_path_factory.mktemp('auth') / 'boundsweep.db'}"
    with api_client(url) as client:
        yield client


def _writes(client: httpx.Client) -> list[tuple[str, str]]:
    """Every non-read operation of the OpenAPI document, with sample path parameters."""
    paths = client.get("/openapi.json").json()["paths"]
    writes = [
        (method.upper(), path.replace("{name}", "auth-c" if "campaigns" in path else "auth-s"))
        for path, operations in paths.items()
        for method in operations
        if method in {"post", "put", "patch", "delete"}
    ]
    assert len(writes) >= 4  # create/cancel campaign, create/delete schedule
    return writes


def _body(path: str) -> dict | None:
    if path.endswith("/campaigns"):
        return PRESET
    return SCHEDULE if path.endswith("/schedules") else None


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        ({}, 401, "Not authenticated"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "Not authenticated"),
        ({"Authorization": "Bearer"}, 401, "Not authenticated"),
        ({"Authorization": "Bearer wrong-token"}, 403, "Invalid bearer token"),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403, "Invalid bearer token"),
        ({"Authorization": f"Bearer {DEMO_TOKEN}"}, 403, "Invalid bearer token"),
    ],
    ids=["none", "basic", "empty", "wrong", "longer", "demo-token-outside-demo"],
)
def test_every_write_is_refused(
    api: httpx.Client, headers: dict[str, str], status: int, detail: str
) -> None:
    for method, path in _writes(api):
        response = httpx.request(
            method, f"{api.base_url}{path}", json=_body(path), headers=headers, timeout=30
        )
        assert response.status_code == status, (method, path, response.text)
        assert response.json()["detail"].startswith(detail)
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")
    # Nothing was written by any of them.
    assert api.get(f"{API}/campaigns").json()["count"] == 0
    assert api.get(f"{API}/schedules").json()["count"] == 0


def test_refused_before_the_body_is_read(api: httpx.Client) -> None:
    response = httpx.post(
        f"{api.base_url}{API}/campaigns",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401


def test_writes_with_the_token_and_open_reads(api: httpx.Client) -> None:
    assert api.post(f"{API}/campaigns", json={**PRESET, "name": "auth-ok"}).status_code == 201
    anonymous = httpx.get(f"{api.base_url}{API}/campaigns/auth-ok")
    assert anonymous.status_code == 200
    assert httpx.get(f"{api.base_url}/healthz").status_code == 200


def test_no_configured_token_disables_writes(sqlite_url: str) -> None:
    assert Settings(database_url=sqlite_url).write_token is None
    with api_client(sqlite_url, api_token=None) as client:
        response = client.post(
            f"{API}/campaigns", json=PRESET, headers={"Authorization": "Bearer anything"}
        )
        assert response.status_code == 403
        assert "no BOUNDSWEEP_API_TOKEN" in response.json()["detail"]


def test_demo_mode_accepts_the_built_in_token(sqlite_url: str) -> None:
    with api_client(sqlite_url, api_token=None, demo=True) as client:
        demo = {"Authorization": f"Bearer {DEMO_TOKEN}"}
        assert client.post(f"{API}/campaigns", json=PRESET, headers=demo).status_code == 201
        assert client.post(f"{API}/campaigns/auth-c/cancel").status_code == 401


def test_a_read_token_closes_reads(sqlite_url: str) -> None:
    with api_client(sqlite_url, read_token="reader") as client:
        url = f"{client.base_url}{API}/campaigns"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 403
        assert httpx.get(url, headers={"Authorization": "Bearer reader"}).status_code == 200
        assert httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        # The read token does not write; probes stay open for orchestrators.
        refused = httpx.post(url, json=PRESET, headers={"Authorization": "Bearer reader"})
        assert refused.status_code == 403
        assert httpx.get(f"{client.base_url}/readyz").status_code == 200


def test_empty_token_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOUNDSWEEP_API_TOKEN", "")
    monkeypatch.setenv("BOUNDSWEEP_READ_TOKEN", "")
    settings = Settings()
    assert settings.api_token is None and settings.read_token is None
    assert settings.write_token is None
