"""optuna-dashboard over the campaigns' storage, with its writes guarded.

optuna-dashboard has no authentication of its own, and its API can create, rename and delete
studies, write notes and tell trials. Here it runs behind one small WSGI layer that

* lets reads (GET, HEAD, OPTIONS) through, unless a read token is configured, and
* refuses every other method (POST, PUT, PATCH, DELETE) with a JSON 401/403 unless the request
  carries the API token, either as ``Authorization: Bearer <token>`` (scripts) or as HTTP
  Basic credentials whose password is the token (browsers: the dashboard's own page then gets
  the browser's login prompt on its first write). In demo mode writes are allowed.

The same layer fixes the dashboard's 500 on requests without ``Accept-Encoding``: its
``/static`` and ``/favicon.ico`` views read ``request.headers["Accept-Encoding"]``, which raises
``KeyError`` when the header is absent (curl, health probes, some proxies). A missing header
means "identity" (RFC 9110), so that is what the layer fills in.

Two ways to serve it: `mount_dashboard` puts it at ``/`` of the FastAPI app, after the API's
routes (its page hard-codes ``/dashboard``, ``/api/...`` and ``/static/...`` at the root, so a
prefix mount would never load), and `dashboard_asgi` gives a standalone ASGI app for
``boundsweep dashboard``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from boundsweep.service.api.auth import token_matches
from boundsweep.service.api.deps import StorageHolder
from boundsweep.service.api.errors import DATABASE_UNAVAILABLE
from sqlalchemy.exc import SQLAlchemyError

__all__ = [
    "DashboardAccess",
    "access_from_settings",
    "dashboard_asgi",
    "guard_dashboard",
    "mount_dashboard",
]

logger = logging.getLogger(__name__)

# Methods that only read; everything else can change the storage.
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_REALM = 'Basic realm="boundsweep dashboard", charset="UTF-8"'

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class DashboardAccess:
    """Who may read and who may write through the dashboard.

    Attributes:
        api_token: the token that authorises writes; ``None`` refuses every write
            (fail closed) unless ``demo`` is set.
        read_token: when set, reads need it (or the API token) too.
        demo: demo mode: every write is allowed, as in the rest of the demo service.
    """

    api_token: str | None = None
    read_token: str | None = None
    demo: bool = False


def _secret(value: Any) -> str | None:
    """A plain string from a str / pydantic SecretStr / None setting; empty means unset."""
    if value is None:
        return None
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return str(value) or None


def access_from_settings(settings: Any) -> DashboardAccess:
    """The dashboard's access rules from `service.settings.Settings`.

    Args:
        settings: the service settings (``api_token``, ``read_token``, ``demo``).

    Returns:
        The matching `DashboardAccess`.
    """
    return DashboardAccess(
        api_token=_secret(getattr(settings, "api_token", None)),
        read_token=_secret(getattr(settings, "read_token", None)),
        demo=bool(getattr(settings, "demo", False)),
    )


def _presented_token(environ: dict[str, Any]) -> str | None:
    """The token a request carries: a bearer token, or the password of HTTP Basic credentials."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return credentials.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        # Any user name: the password is the token.
        return decoded.partition(":")[2] or None
    return None


def _refuse(start_response: Callable[..., Any], status: str, reason: str) -> list[bytes]:
    body = json.dumps({"detail": reason}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if status.startswith("401"):
        headers.append(("WWW-Authenticate", _REALM))
    start_response(status, headers)
    return [body]


def guard_dashboard(app: WSGIApp, access: DashboardAccess) -> WSGIApp:
    """Wrap optuna-dashboard's WSGI app with the access rules and the Accept-Encoding fix.

    Args:
        app: optuna-dashboard's WSGI application.
        access: who may read and write.

    Returns:
        A WSGI application answering 401 (no or wrong credentials) or 403 (writes disabled)
        as JSON ``{"detail": ...}``, and otherwise passing the request on.
    """

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ.setdefault("HTTP_ACCEPT_ENCODING", "identity")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        presented = _presented_token(environ)
        if method in _READ_METHODS:
            if access.read_token and not token_matches(
                presented, access.read_token, access.api_token
            ):
                return _refuse(start_response, "401 Unauthorized", "Reading needs a token.")
            return app(environ, start_response)
        if access.demo:
            return app(environ, start_response)
        if access.api_token is None:
            return _refuse(
                start_response,
                "403 Forbidden",
                "Dashboard writes are disabled: BOUNDSWEEP_API_TOKEN is not set.",
            )
        if not token_matches(presented, access.api_token):
            return _refuse(
                start_response,
                "401 Unauthorized",
                "Dashboard writes need the API token (Authorization: Bearer <token>, "
                "or HTTP Basic with the token as password).",
            )
        return app(environ, start_response)

    return guarded


class _OpenOnFirstRequest:
    """optuna-dashboard's WSGI app, built on the first request that finds the storage up.

    The storage is not opened when the process starts, so the API (and ``boundsweep
    dashboard``) start while the database is down; until it is up, the dashboard answers a
    JSON 503, as the API does.
    """

    def __init__(self, storage: Callable[[], Any]) -> None:
        self._storage = storage
        self._lock = threading.Lock()
        self._app: WSGIApp | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        app = self._app
        if app is None:
            with self._lock:
                if self._app is None:
                    try:
                        storage = self._storage()
                    except (SQLAlchemyError, sqlite3.Error) as exc:
                        logger.warning("dashboard: storage unavailable (%s)", exc)
                        return _refuse(
                            start_response, "503 Service Unavailable", DATABASE_UNAVAILABLE
                        )
                    import optuna_dashboard

                    self._app = optuna_dashboard.wsgi(storage)
                app = self._app
        return app(environ, start_response)


def dashboard_asgi(storage: str | Callable[[], Any], access: DashboardAccess) -> Any:
    """optuna-dashboard as a guarded ASGI app, for ``boundsweep dashboard`` under uvicorn.

    Args:
        storage: the SQLAlchemy URL of the campaigns' storage, or a function returning the
            opened storage (the API passes its own, so both share one engine). Either is
            opened on the first request, not now.
        access: who may read and write.

    Returns:
        An ASGI application.
    """
    from a2wsgi import WSGIMiddleware

    if isinstance(storage, str):
        storage = StorageHolder(storage).get
    return WSGIMiddleware(guard_dashboard(_OpenOnFirstRequest(storage), access))


def mount_dashboard(app: Any, settings: Any) -> None:
    """Serve the guarded dashboard at ``/`` of the FastAPI app, behind every existing route.

    Call it last in ``create_app``, after ``app.state.storage`` is set: a mount at ``/``
    matches every path, so routes added after it would never be reached. The page is then at
    ``/dashboard``, over the same storage (and engine) as the API.

    Args:
        app: the FastAPI application.
        settings: the service settings (``api_token``, ``read_token``, ``demo``).
    """
    asgi = dashboard_asgi(app.state.storage.get, access_from_settings(settings))
    app.mount("/", asgi, name="dashboard")
