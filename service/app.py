"""The FastAPI application: `/api/v1` routes, probes, OpenAPI at `/docs`, then the dashboard."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from boundsweep.service.api import api_router, probe_router
from boundsweep.service.api.auth import RequireToken
from boundsweep.service.api.body_limit import LimitBodySize
from boundsweep.service.api.deps import StorageHolder
from boundsweep.service.api.docs_pages import install_docs_pages
from boundsweep.service.api.errors import install_error_handlers
from boundsweep.service.api.json_body import CheckJsonBody
from boundsweep.service.api.report_cache import REPORT_THREADS_PER_COMPUTATION, ReportCache
from boundsweep.service.api.routes.campaigns import create_body_components
from boundsweep.service.api.status_cache import StatusCache
from boundsweep.service.dashboard import mount_dashboard
from boundsweep.service.db import make_engine, migrate
from boundsweep.service.log_secrets import install_redaction
from boundsweep.service.settings import DEMO_TOKEN, Settings
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Campaigns that test how robust an optimizer is to its hyperparameters (AdaBound, AMSBound and
their baselines), each arm an Optuna study. Writes need `Authorization: Bearer <token>`
(`BOUNDSWEEP_API_TOKEN`); reads too when `BOUNDSWEEP_READ_TOKEN` is set.
"""


def _lifespan(settings: Settings):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await run_in_threadpool(migrate, settings.database_url)
        # Optuna's tables must exist before the first status query reads them. Past the
        # migrations (which `boundsweep serve` runs before the app, and which fail the start),
        # a database that is down now is not fatal: /readyz and the API answer 503, and the
        # storage (the dashboard's too) opens on first use.
        try:
            await run_in_threadpool(app.state.storage.get)
        except SQLAlchemyError as exc:
            logger.warning("storage not opened at start (%s); will retry on first use", exc)
        if settings.demo and settings.api_token is None:
            logger.warning("demo mode: writes accept the built-in token %r", DEMO_TOKEN)
        elif settings.write_token is None:
            logger.warning("BOUNDSWEEP_API_TOKEN is not set: every write will be refused")
        yield
        app.state.engine.dispose()

    return lifespan


def _openapi_with_create_body(app: FastAPI):
    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, component in create_body_components().items():
                components.setdefault(name, component)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service.

    Args:
        settings: Service settings; default: read from the environment.

    Returns:
        The app; run it with uvicorn. The Optuna dashboard is mounted at `/` last (when
        `settings.dashboard`), so it never shadows an API route.
    """
    settings = settings or Settings()
    install_redaction()  # a token sent in a URL never reaches the access log
    app = FastAPI(
        title="boundsweep",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=_lifespan(settings),
        # Served from the package instead of a CDN (docs_pages), so they work air-gapped.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.storage = StorageHolder(settings.database_url)
    app.state.status_cache = StatusCache(settings.status_cache_seconds)
    app.state.report_cache = ReportCache(settings.report_cache_bytes, settings.report_concurrency)
    app.state.report_threads = anyio.CapacityLimiter(
        REPORT_THREADS_PER_COMPUTATION * settings.report_concurrency
    )
    # Added last = runs first: a refused write never has its body looked at.
    app.add_middleware(CheckJsonBody)
    app.add_middleware(LimitBodySize, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequireToken, settings=settings)
    install_error_handlers(app, settings.max_body_bytes)
    app.include_router(probe_router)
    app.include_router(api_router)
    install_docs_pages(app)
    app.openapi = _openapi_with_create_body(app)  # type: ignore[method-assign]
    if settings.dashboard:
        mount_dashboard(app, settings)
    return app
