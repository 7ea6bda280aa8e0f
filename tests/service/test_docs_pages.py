"""`/docs` renders in a real Chromium with every request answered by the app itself:
requests to any other host are aborted, as on an air-gapped cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from boundsweep.service.app import create_app
from boundsweep.service.settings import Settings

from tests._chromium import launch_chromium
from tests.service._live_api import live_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('docs') / 'boundsweep.db'}"
    app = create_app(Settings(database_url=url, api_token="docs-test-token", dashboard=True))
    with live_server(app) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


def _open_offline(browser: object, url: str, base_url: str) -> tuple[object, list, list]:
    """A page that aborts every request not to ``base_url``; returns it, the URLs it asked
    for and the ones that were aborted."""
    page = browser.new_page()  # type: ignore[attr-defined]
    asked: list[str] = []
    outside: list[str] = []

    def route(route: object) -> None:
        request_url = route.request.url  # type: ignore[attr-defined]
        asked.append(request_url)
        if request_url.startswith(base_url + "/"):
            route.continue_()  # type: ignore[attr-defined]
        else:
            outside.append(request_url)
            route.abort()  # type: ignore[attr-defined]

    page.route("**/*", route)
    page.goto(url)
    return page, asked, outside


def test_swagger_ui_renders_every_route_with_no_outside_request(
    browser: object, base_url: str, tmp_path: Path
) -> None:
    page, asked, outside = _open_offline(browser, f"{base_url}/docs", base_url)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))  # type: ignore[attr-defined]
    try:
        page.locator(".swagger-ui .info .title").wait_for(timeout=60_000)  # type: ignore[attr-defined]
        page.locator(".opblock-summary-path").first.wait_for(timeout=30_000)  # type: ignore[attr-defined]
        title = page.inner_text(".swagger-ui .info .title")  # type: ignore[attr-defined]
        paths = page.locator(".opblock-summary-path").all_inner_texts()  # type: ignore[attr-defined]
        page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)  # type: ignore[attr-defined]
    finally:
        page.close()  # type: ignore[attr-defined]
    assert outside == []
    assert f"{base_url}/docs/assets/swagger-ui-bundle.js" in asked
    assert f"{base_url}/openapi.json" in asked
    assert title.startswith("boundsweep")
    assert "/api/v1/campaigns" in [p.replace("\u200b", "") for p in paths]
    assert errors == []
    assert (tmp_path / "docs.png").stat().st_size > 20_000


def test_there_is_no_redoc_page_that_would_reach_a_cdn(base_url: str) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{base_url}/redoc", timeout=30)
    assert missing.value.code == 404
    with urllib.request.urlopen(f"{base_url}/docs/assets/swagger-ui.css", timeout=30) as css:
        assert css.status == 200 and len(css.read()) > 50_000
