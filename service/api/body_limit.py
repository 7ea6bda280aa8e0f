"""Refuse request bodies over `max_body_bytes` with a JSON 413, before anything parses them.

A declared `Content-Length` over the limit is answered at once, body unread. A body streamed
without one is counted as it arrives; passing the limit raises a 413 `HTTPException` from the
read itself, which FastAPI re-raises untouched and our handler words like the first case.
(FastAPI's own `max_body_size` answers the declared case in plain text, so it is not used.)
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DRAIN_LIMIT", "LimitBodySize", "too_large_detail"]

DRAIN_LIMIT = 16 << 20
"""Oversized bodies up to this many bytes are read (and dropped) before the 413 is sent."""


def too_large_detail(max_body_bytes: int) -> str:
    """The 413 message every oversized request gets."""
    return f"Request body too large: the limit is {max_body_bytes} bytes"


class LimitBodySize:
    """ASGI middleware enforcing `max_body_bytes` on every HTTP request body."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _declared_too_large(self, scope: Scope) -> bool:
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    return int(value) > self.max_body_bytes
                except ValueError:
                    return True
        return False

    async def _drain(self, scope: Scope, receive: Receive) -> None:
        """Read and drop a moderately oversized body before answering.

        Closing a connection whose request body is still arriving makes the kernel reset it,
        and the client then sees "connection reset" instead of our 413. Bodies declared
        beyond `DRAIN_LIMIT` are not worth reading; their senders may see the reset.
        """
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), b"")
        if not declared.isdigit() or int(declared) > max(DRAIN_LIMIT, self.max_body_bytes):
            return
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": too_large_detail(self.max_body_bytes)}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._declared_too_large(scope):
            await self._drain(scope, receive)
            await self._refuse(send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, too_large_detail(self.max_body_bytes))
            return message

        await self.app(scope, counted_receive, send)
