"""Serve the real app with uvicorn on a free loopback port, for the API tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn
from boundsweep.service.app import create_app
from boundsweep.service.settings import Settings

TOKEN = "api-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextlib.contextmanager
def live_server(app: Any, lifespan: str = "on") -> Iterator[str]:
    """Run `app` in a uvicorn thread on 127.0.0.1:<free port>; yields its base URL.

    `lifespan="auto"` serves apps without startup/shutdown events (the bare dashboard).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 60 s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@contextlib.contextmanager
def api_client(database_url: str, **settings: Any) -> Iterator[httpx.Client]:
    """An httpx client against a live app over `database_url`, carrying the write token."""
    settings.setdefault("api_token", TOKEN)
    settings.setdefault("dashboard", False)
    app = create_app(Settings(database_url=database_url, **settings))
    with live_server(app) as base_url, httpx.Client(base_url=base_url, timeout=120) as client:
        client.headers.update(AUTH if settings["api_token"] == TOKEN else {})
        yield client
