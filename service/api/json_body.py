"""Check every JSON body under `/api/` against the document limits before a route parses it.

FastAPI decodes a body with `json.loads`, which answers a 10,000-level nesting with a
`RecursionError` and a 5,000-digit integer with Python's `ValueError` (both 500s), and happily
hands a NUL character on to PostgreSQL, which refuses it (another 500). This middleware reads
the body (already capped by `LimitBodySize`), checks it with `studies.campaign.parse_json`,
the one place the limits live, and answers a JSON 422 naming where it is bad; a body within
the limits is passed on unchanged. The dashboard's own `/api/...` writes get the same check.
"""

from __future__ import annotations

import json

from boundsweep.studies.campaign import DocumentError, parse_json
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CheckJsonBody", "document_error_items"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def document_error_items(exc: DocumentError) -> list[dict[str, object]]:
    """The 422 `detail` of a body that breaks a limit: `loc` from `body`, as FastAPI's."""
    kind = "json_invalid" if exc.msg.startswith("Malformed JSON") else "value_error"
    return [{"loc": ["body", *exc.loc], "msg": exc.msg, "type": kind}]


class CheckJsonBody:
    """ASGI middleware: a 422 for `/api/` bodies that are not JSON within the limits."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") not in _BODY_METHODS
            or not scope.get("path", "").startswith("/api/")
        ):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = bytearray()
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        except HTTPException as exc:  # LimitBodySize's 413, raised from the read itself
            await _answer(send, exc.status_code, exc.detail)
            return
        if body.strip():
            try:
                parse_json(bytes(body))
            except DocumentError as exc:
                await _answer(send, 422, document_error_items(exc))
                return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


async def _answer(send: Send, status: int, detail: object) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
