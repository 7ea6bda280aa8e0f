"""Bearer-token access to `/api/v1`: writes always need a token, reads when a read token is set.

The check runs as ASGI middleware, before routing and before any body is read, so every write
(present or future route, any body, even malformed JSON) is refused the same way: 401 when no
bearer token is sent, 403 when it is wrong or when the server has no write token at all.
Tokens are compared with `hmac.compare_digest` (time independent of where they differ).
"""

from __future__ import annotations

import hmac
import json

from boundsweep.service.settings import Settings
from fastapi.security import HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["API_PREFIX", "RequireToken", "bearer_scheme", "token_matches"]

API_PREFIX = "/api/v1"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Declares the scheme in the OpenAPI document (and /docs's "Authorize" button); the check
# itself is RequireToken's.
bearer_scheme = HTTPBearer(auto_error=False, description="BOUNDSWEEP_API_TOKEN (writes)")


def token_matches(presented: str | None, *expected: str | None) -> bool:
    """Whether ``presented`` equals one of the set (non-empty) ``expected`` tokens.

    Every candidate is compared, in constant time and without an early exit, so timing says
    neither where a guess differs nor which token matched. The dashboard's guard uses it too.
    """
    if presented is None:
        return False
    presented_bytes = presented.encode()
    results = [hmac.compare_digest(presented_bytes, token.encode()) for token in expected if token]
    return any(results)


def _presented(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class RequireToken:
    """ASGI middleware enforcing the bearer tokens of `Settings` on `/api/v1`."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        path: str = scope.get("path", "")
        if path != API_PREFIX and not path.startswith(API_PREFIX + "/"):
            return None
        write_token = self.settings.write_token
        if scope.get("method", "GET") in READ_METHODS:
            if self.settings.read_token is None:
                return None
            expected = (self.settings.read_token.get_secret_value(), write_token)
            what = "reads need a bearer token (BOUNDSWEEP_READ_TOKEN or the API token)"
        else:
            expected = (write_token,)
            what = "writes need a bearer token (BOUNDSWEEP_API_TOKEN)"
        presented = _presented(scope)
        if presented is None:
            return 401, f"Not authenticated: {what}; send 'Authorization: Bearer <token>'"
        if not any(expected):
            return 403, (
                "Writes are disabled: the server has no BOUNDSWEEP_API_TOKEN set "
                "(and is not in demo mode)"
            )
        if not token_matches(presented, *expected):
            return 403, "Invalid bearer token"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, detail = refusal
        body = json.dumps({"detail": detail}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="boundsweep"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
