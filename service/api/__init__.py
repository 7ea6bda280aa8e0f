"""The REST API under `/api/v1`, and the open probes beside it."""

from __future__ import annotations

from boundsweep.service.api.auth import API_PREFIX
from boundsweep.service.api.routes import campaigns, catalog, health, schedules
from fastapi import APIRouter

__all__ = ["API_PREFIX", "api_router", "probe_router"]

api_router = APIRouter(prefix=API_PREFIX)
api_router.include_router(campaigns.router)
api_router.include_router(schedules.router)
api_router.include_router(catalog.router)

probe_router = health.router
