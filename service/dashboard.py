"""optuna-dashboard over the campaigns' storage, with its writes guarded.

optuna-dashboard has no authentication of its own, and its API can create, rename and delete
studies, write notes and tell trials. Here it runs behind one small WSGI layer that

* lets reads (GET, HEAD, OPTIONS) through, unless a read token is configured, and
* refuses every other method (POST, PUT, PATCH, DELETE) with a JSON 401/403 unless the request
  carries the API token, either as ``Authorization: Bearer <token>`` (scripts) or as HTTP
  Basic credentials whose password is the token (browsers: the dashboard's own page then gets
  the browser's login prompt on its first write). Without an API token the dashboard is
  read-only, however it is served (``serve``, ``dashboard``, the demo, demo mode included):
  no write is ever anonymous.

The same layer fixes the dashboard's 500 on requests without ``Accept-Encoding``: its
``/static`` and ``/favicon.ico`` views read ``request.headers["Accept-Encoding"]``, which raises
``KeyError`` when the header is absent (curl, health probes, some proxies). A missing header
means "identity" (RFC 9110), so that is what the layer fills in.

Two ways to serve it: `mount_dashboard` puts it at ``/`` of the FastAPI app, after the API's
routes (its page hard-codes ``/dashboard``, ``/api/...`` and ``/static/...`` at the root, so a
prefix mount would never load), and `dashboard_asgi` gives a standalone ASGI app for
``boundsweep dashboard``.

Everything under ``/api/`` answers JSON, errors included. A mount at ``/`` receives every
request no API route took: under ``/api/v1`` that is an unknown path (404) or a known path with
the wrong method (405), answered here as FastAPI would, never by the dashboard's HTML 404 page.
The dashboard's own ``/api/...`` errors that are HTML (bottle's 404/405/500 pages) are turned
into ``{"detail": ...}`` too.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from a2wsgi import WSGIMiddleware
from boundsweep.service.api.auth import API_PREFIX, token_matches
from boundsweep.service.api.deps import StorageHolder
from boundsweep.service.api.errors import DATABASE_UNAVAILABLE
from boundsweep.service.log_secrets import install_redaction
from boundsweep.studies.storage import CampaignStorage
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
        api_token: the token that authorises writes; ``None`` refuses every write (fail
            closed: the dashboard is read-only).
        read_token: when set, reads need it (or the API token) too.
    """

    api_token: str | None = None
    read_token: str | None = None


def _secret(value: Any) -> str | None:
    """A plain string from a str / pydantic SecretStr / None setting; empty means unset."""
    if value is None:
        return None
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return str(value) or None


def access_from_settings(settings: Any) -> DashboardAccess:
    """The dashboard's access rules from `service.settings.Settings`.

    Demo mode's built-in token is not accepted here: it is printed in the docs, so a write
    with it would be as good as anonymous.

    Args:
        settings: the service settings (``api_token``, ``read_token``).

    Returns:
        The matching `DashboardAccess`.
    """
    return DashboardAccess(
        api_token=_secret(getattr(settings, "api_token", None)),
        read_token=_secret(getattr(settings, "read_token", None)),
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
        if access.api_token is None:
            return _refuse(
                start_response,
                "403 Forbidden",
                "The dashboard is read-only: BOUNDSWEEP_API_TOKEN is not set (start it with "
                "a token to allow writes).",
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

    def __init__(self, storage: Callable[[], CampaignStorage]) -> None:
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
                    # optuna-dashboard takes seconds to import: loaded with the first
                    # dashboard request, so the API answers its probes at once.
                    import optuna_dashboard

                    self._app = optuna_dashboard.wsgi(storage)
                app = self._app
        return app(environ, start_response)


def dashboard_asgi(storage: str | Callable[[], CampaignStorage], access: DashboardAccess) -> Any:
    """optuna-dashboard as a guarded ASGI app, for ``boundsweep dashboard`` under uvicorn.

    Args:
        storage: the SQLAlchemy URL of the campaigns' storage, or a function returning the
            opened storage (the API passes its own, so both share one engine). Either is
            opened on the first request, not now.
        access: who may read and write.

    Returns:
        An ASGI application.
    """
    install_redaction()  # a token sent in a URL never reaches the access log
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
    app.mount("/", ApiAnswersJson(asgi, app.openapi), name="dashboard")


class ApiAnswersJson:
    """In front of the dashboard's mount: JSON for every ``/api/`` request that reaches it."""

    def __init__(self, dashboard: Any, openapi: Callable[[], dict[str, Any]]) -> None:
        self.dashboard = dashboard
        self._openapi = openapi
        self._paths: list[tuple[re.Pattern[str], set[str]]] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            # No API route took it: a path none has (404), or one whose methods differ (405).
            allowed = self._allowed_methods(path)
            if allowed:
                headers = [(b"allow", ", ".join(sorted(allowed)).encode())]
                await _send_json(send, 405, "Method Not Allowed", headers)
            else:
                await _send_json(send, 404, "Not Found")
            return
        if path.startswith("/api/"):
            await self.dashboard(scope, receive, _json_errors(send))
            return
        await self.dashboard(scope, receive, send)

    def _allowed_methods(self, path: str) -> set[str]:
        """The methods of the API's routes whose path template matches `path`.

        Read from the app's OpenAPI document (its public list of routes), built once.
        """
        if self._paths is None:
            self._paths = [
                (
                    re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template)) + "$"),
                    {method.upper() for method in operations},
                )
                for template, operations in self._openapi().get("paths", {}).items()
            ]
        allowed = {m for pattern, methods in self._paths if pattern.match(path) for m in methods}
        return allowed | {"HEAD"} if "GET" in allowed else allowed


async def _send_json(send: Any, status: int, detail: str, headers: Any = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _json_errors(send: Any) -> Any:
    """A ``send`` that turns a non-JSON error response into ``{"detail": <reason>}``."""
    replaced = False

    async def wrapped(message: Any) -> None:
        nonlocal replaced
        if message["type"] == "http.response.start" and message["status"] >= 400:
            headers = dict(message.get("headers", ()))
            if not headers.get(b"content-type", b"").startswith(b"application/json"):
                replaced = True
                status = message["status"]
                await _send_json(send, status, HTTPStatus(status).phrase)
                return
        if replaced:
            return  # the HTML body of the replaced response
        await send(message)

    return wrapped
