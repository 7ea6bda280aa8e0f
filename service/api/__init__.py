"""The REST API under `/api/v1`, and the open probes beside it."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.auth import API_PREFIX
from service.api.routes import campaigns, health, schedules

__all__ = ["API_PREFIX", "api_router", "probe_router"]

api_router = APIRouter(prefix=API_PREFIX)
api_router.include_router(campaigns.router)
api_router.include_router(schedules.router)

probe_router = health.router
