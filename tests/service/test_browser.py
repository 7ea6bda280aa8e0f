"""The dashboard mounted in the real app, in a real headless browser (Chromium).

A small campaign is trained for real by a worker on SQLite, the app is served by uvicorn on
loopback, and chromium, driven by Playwright, opens ``/dashboard``, finds the campaign's arm
study ``<campaign>/<arm>`` and its trials.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from boundsweep.service.app import create_app
from boundsweep.service.settings import Settings
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.storage import create_campaign, open_storage
from boundsweep.workers import run_worker

from tests._chromium import launch_chromium
from tests.service._live_api import live_server
from tests.service.test_dashboard import request

pytestmark = pytest.mark.browser

TOKEN = "browser-test-token"
CAMPAIGN = "browser-check"
LRS = [0.001, 0.01, 0.1]


@pytest.fixture(scope="module")
def trained_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite storage with one campaign whose three trials a real worker has trained."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'boundsweep.db'}"
    spec = CampaignSpec.model_validate(
        {
            "name": CAMPAIGN,
            "task": "digits_mlp",
            "seeds": [0],
            "budget": {"epochs": 2, "max_steps": 6},
            "arms": [{"optimizer": "adam", "space": {"lr": {"grid": LRS}}}],
        }
    )
    create_campaign(open_storage(url), spec)
    assert run_worker(url, until_idle=True) == len(LRS)
    return url


@pytest.fixture(scope="module")
def base_url(trained_url: str) -> Iterator[str]:
    app = create_app(Settings(database_url=trained_url, api_token=TOKEN, dashboard=True))
    with live_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


def test_dashboard_shows_the_campaign_study_and_its_trials(
    browser: object, base_url: str, tmp_path: Path
) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{base_url}/dashboard")
        study_link = page.get_by_text(f"{CAMPAIGN}/adam").first
        study_link.wait_for(timeout=60_000)
        page.screenshot(path=str(tmp_path / "studies.png"))

        study_link.click()
        page.wait_for_url("**/dashboard/studies/*", timeout=30_000)
        page.get_by_text("Best Trial").first.wait_for(timeout=30_000)
        page.goto(page.url.rstrip("/") + "/trials")
        page.get_by_text("3 Trials").wait_for(timeout=30_000)
        body = page.inner_text("body")
        page.screenshot(path=str(tmp_path / "trials.png"), full_page=True)
    finally:
        page.close()
    assert f"{CAMPAIGN}/adam" in body
    for number in range(len(LRS)):
        assert f"Trial {number}" in body
    assert body.count("Complete") >= len(LRS)
    # The trial's user attributes written by the worker are there too.
    assert "val_metric" in body and "hparams" in body
    assert (tmp_path / "trials.png").stat().st_size > 10_000
    assert errors == []


def test_mounted_dashboard_refuses_writes_without_the_token(base_url: str) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    for method, path, body in [
        ("POST", "/api/studies/1/rename", {"study_name": "renamed"}),
        ("DELETE", "/api/studies/1", None),
        ("PUT", "/api/studies/1/note", {"version": 1, "body": "x"}),
    ]:
        status, _, response = request(port, method, path, body)
        assert status == 401, (method, path, response)
        status, _, response = request(
            port, method, path, body, {"Authorization": "Bearer not-the-token"}
        )
        assert status == 401
    status, _, response = request(port, "GET", "/api/studies")
    names = [s["study_name"] for s in json.loads(response)["study_summaries"]]
    assert names == [f"{CAMPAIGN}/adam"]


def test_mounted_dashboard_serves_static_files_without_accept_encoding(base_url: str) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    status, headers, body = request(port, "GET", "/static/bundle.js", accept_encoding=False)
    assert status == 200
    assert "Content-Encoding" not in headers
    assert len(body) > 10_000


def test_api_routes_still_win_over_the_dashboard_mount(base_url: str) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    status, headers, body = request(port, "GET", f"/api/v1/campaigns/{CAMPAIGN}")
    assert status == 200
    assert json.loads(body)["finished"] == len(LRS)
    status, _, _ = request(port, "GET", "/docs")
    assert status == 200


def test_mounted_dashboard_accepts_writes_with_the_token(base_url: str) -> None:
    import base64

    port = int(base_url.rsplit(":", 1)[1])
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    status, _, response = request(
        port,
        "PUT",
        "/api/studies/1/note",
        {"version": 1, "body": "checked by the test"},
        {"Authorization": f"Basic {basic}"},
    )
    assert status == 204, response
    status, _, response = request(port, "GET", "/api/studies/1")
    assert json.loads(response)["note"]["body"] == "checked by the test"
