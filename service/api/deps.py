"""Dependencies the routes share: settings, the database engine, the Optuna storage."""

from __future__ import annotations

import threading
from typing import Annotated

import sqlalchemy as sa
from boundsweep.service.api.auth import bearer_scheme
from boundsweep.service.api.report_cache import ReportCache
from boundsweep.service.api.status_cache import StatusCache
from boundsweep.service.settings import Settings
from boundsweep.studies.storage import CampaignStorage, open_storage
from fastapi import Depends, Request, Security

__all__ = [
    "EngineDep",
    "ReportCacheDep",
    "SettingsDep",
    "StatusCacheDep",
    "StorageDep",
    "StorageHolder",
    "documented_token",
]


class StorageHolder:
    """Opens the Optuna storage once, on first use, for every request to share.

    Opening creates Optuna's tables and checks their version, so it is done once per app;
    the lock keeps two first requests from doing it twice.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._storage: CampaignStorage | None = None

    def get(self) -> CampaignStorage:
        if self._storage is None:
            with self._lock:
                if self._storage is None:
                    # The request threads share a pool (4, and as many again at peaks).
                    self._storage = open_storage(self._url, pool_size=4)
        return self._storage


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _engine(request: Request) -> sa.Engine:
    return request.app.state.engine


def _storage(request: Request) -> CampaignStorage:
    return request.app.state.storage.get()


def _status_cache(request: Request) -> StatusCache:
    return request.app.state.status_cache


def _report_cache(request: Request) -> ReportCache:
    return request.app.state.report_cache


SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[sa.Engine, Depends(_engine)]
StorageDep = Annotated[CampaignStorage, Depends(_storage)]
StatusCacheDep = Annotated[StatusCache, Depends(_status_cache)]
ReportCacheDep = Annotated[ReportCache, Depends(_report_cache)]

# The token is checked by `service.api.auth.RequireToken` before routing; declaring the scheme
# on routes puts it in the OpenAPI document.
documented_token = [Security(bearer_scheme)]
