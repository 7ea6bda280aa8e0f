"""`/docs` (Swagger UI) with its script and styles served by the app itself.

FastAPI's own page loads Swagger UI from a CDN, so on an air-gapped cluster `/docs` is blank.
The same page here points at a copy installed with the package (`fastapi-offline` ships
Swagger UI 5, which renders the OpenAPI 3.1 document FastAPI writes), served under
`/docs/assets`: opening `/docs` makes no request beyond this server. There is no `/redoc`:
ReDoc's bundle fetches its logo from its vendor's CDN whatever the page says.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_URL", "install_docs_pages"]

ASSETS_URL = "/docs/assets"
logger = logging.getLogger(__name__)


def _assets() -> Path | None:
    try:
        import fastapi_offline
    except ImportError:  # an environment installed before the dependency was added
        return None
    return Path(fastapi_offline.__file__).parent / "static"


def install_docs_pages(app: FastAPI) -> None:
    """Add `/docs`, its OAuth2 redirect and their assets to an app created with
    ``docs_url=None, redoc_url=None``."""
    assets = _assets()
    if assets is None or not (assets / "swagger-ui-bundle.js").is_file():
        # Still a working /docs where a CDN is reachable; say why it is not self-contained.
        logger.warning("fastapi-offline is not installed: /docs loads Swagger UI from a CDN")
        app.get("/docs", include_in_schema=False)(_cdn_docs(app))
        return
    app.mount(ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a prefix, every URL the page asks for carries it again.
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + redirect_url,
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def _cdn_docs(app: FastAPI):
    async def swagger_ui_from_cdn() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=app.title)

    return swagger_ui_from_cdn
