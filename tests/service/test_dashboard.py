"""The guarded optuna-dashboard, served for real by uvicorn on loopback over a real storage."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
from boundsweep.service.dashboard import DashboardAccess, dashboard_asgi

from tests.service._live_api import live_server

TOKEN = "s3cret-token"


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[int]:
    """Serve an ASGI app with uvicorn on a free loopback port; yields the port."""
    with live_server(app, lifespan="auto") as base_url:
        yield int(base_url.rsplit(":", 1)[1])


def request(
    port: int,
    method: str,
    path: str,
    body: dict | None = None,
    headers: dict[str, str] | None = None,
    accept_encoding: bool = True,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One HTTP request with nothing added behind our back (http.client adds no defaults here)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=not accept_encoding)
        data = json.dumps(body).encode() if body is not None else b""
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if body is not None:
            conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


@pytest.fixture
def storage(sqlite_url: str) -> str:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=sqlite_url, study_name="demo-campaign/adam")
    study.optimize(lambda trial: trial.suggest_float("lr", 1e-4, 1e-1, log=True), n_trials=3)
    return sqlite_url


def _serve(storage: str, **access: Any) -> contextlib.AbstractContextManager[int]:
    return serve_in_thread(dashboard_asgi(storage, DashboardAccess(**access)))


def _study_names(port: int, headers: dict[str, str] | None = None) -> list[str]:
    status, _, body = request(port, "GET", "/api/studies", headers=headers)
    assert status == 200, body
    return [s["study_name"] for s in json.loads(body)["study_summaries"]]


def _basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"me:{password}".encode()).decode()}


def test_page_and_studies_are_readable_without_a_token(storage: str) -> None:
    with _serve(storage, api_token=TOKEN) as port:
        status, headers, body = request(port, "GET", "/dashboard")
        assert status == 200
        assert headers["Content-Type"].startswith("text/html")
        assert _study_names(port) == ["demo-campaign/adam"]


def test_static_bundle_is_served_without_accept_encoding(storage: str) -> None:
    with _serve(storage, api_token=TOKEN) as port:
        status, headers, body = request(port, "GET", "/static/bundle.js", accept_encoding=False)
        assert status == 200
        assert "Content-Encoding" not in headers  # plain JavaScript, not gzip
        assert len(body) > 10_000
        status, _, _ = request(port, "GET", "/favicon.ico", accept_encoding=False)
        assert status == 200
        # And with gzip accepted, the precompressed bundle still comes back.
        status, headers, _ = request(
            port, "GET", "/static/bundle.js", headers={"Accept-Encoding": "gzip"}
        )
        assert status == 200
        assert headers.get("Content-Encoding") == "gzip"


WRITES = [
    ("POST", "/api/studies/1/rename", {"study_name": "renamed"}),
    ("DELETE", "/api/studies/1", None),
    ("PUT", "/api/studies/1/note", {"version": 1, "body": "vandalised"}),
    ("POST", "/api/studies", {"study_name": "intruder", "directions": ["minimize"]}),
    ("POST", "/api/trials/1/user-attrs", {"user_attrs": {"x": 1}}),
]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, _basic("wrong"), {"Authorization": "Bearer"}],
    ids=["none", "wrong-bearer", "wrong-basic", "empty-bearer"],
)
def test_writes_without_the_token_are_refused(storage: str, headers: dict[str, str]) -> None:
    with _serve(storage, api_token=TOKEN) as port:
        for method, path, body in WRITES:
            status, response_headers, response = request(port, method, path, body, headers)
            assert status == 401, (method, path)
            assert json.loads(response)["detail"].startswith("Dashboard writes need the API token")
            assert response_headers["WWW-Authenticate"].startswith("Basic")
        assert _study_names(port) == ["demo-campaign/adam"]


def test_writes_with_the_token_go_through(storage: str) -> None:
    with _serve(storage, api_token=TOKEN) as port:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        status, _, body = request(
            port, "POST", "/api/studies/1/rename", {"study_name": "renamed"}, bearer
        )
        assert status == 201, body
        assert _study_names(port) == ["renamed"]
        # A browser answers the login prompt with HTTP Basic: the password is the token.
        new_id = json.loads(body)["study_id"]
        status, _, body = request(port, "DELETE", f"/api/studies/{new_id}", {}, _basic(TOKEN))
        assert status == 204, body
        assert _study_names(port) == []


def test_writes_are_disabled_without_an_api_token(storage: str) -> None:
    with _serve(storage) as port:
        status, _, body = request(port, "DELETE", "/api/studies/1", {}, _basic(""))
        assert status == 403
        assert "BOUNDSWEEP_API_TOKEN" in json.loads(body)["detail"]
        assert _study_names(port) == ["demo-campaign/adam"]


def test_no_write_is_anonymous_without_a_token(storage: str) -> None:
    with _serve(storage) as port:
        for method, path, body in (
            ("POST", "/api/studies", {"study_name": "x", "directions": ["minimize"]}),
            ("POST", "/api/studies/1/rename", {"study_name": "demo-2"}),
            ("DELETE", "/api/studies/1", {}),
            ("PUT", "/api/studies/1/note", {"version": 1, "body": "hi"}),
        ):
            status, _, answer = request(port, method, path, body)
            assert status == 403, (method, path, answer)
            assert "read-only" in json.loads(answer)["detail"]
        assert _study_names(port) == ["demo-campaign/adam"]


def test_a_read_token_guards_reads_too(storage: str) -> None:
    with _serve(storage, api_token=TOKEN, read_token="reader") as port:
        status, _, _ = request(port, "GET", "/api/studies")
        assert status == 401
        assert _study_names(port, {"Authorization": "Bearer reader"}) == ["demo-campaign/adam"]
        assert _study_names(port, _basic(TOKEN)) == ["demo-campaign/adam"]
        # The read token does not authorise writes.
        status, _, _ = request(
            port, "DELETE", "/api/studies/1", {}, {"Authorization": "Bearer reader"}
        )
        assert status == 401


def test_the_api_starts_while_the_database_is_down_and_its_dashboard_follows_it_up(
    postgres_url: str,
) -> None:
    # The API used to open the dashboard's storage while building the app, so a database that
    # was down at start failed the whole process. Now the dashboard answers 503 until the
    # database is there, then serves it over the API's own storage.
    from boundsweep.service.app import create_app
    from boundsweep.service.settings import Settings

    from benchmarks._postgres import admin_engine
    from tests.service._live_api import live_server

    name = postgres_url.rsplit("/", 1)[1]
    admin = admin_engine()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    settings = Settings(
        database_url=postgres_url, dashboard=True, migrate_on_start=False, api_token=TOKEN
    )
    with live_server(create_app(settings)) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        assert request(port, "GET", "/healthz")[0] == 200
        assert request(port, "GET", "/readyz")[0] == 503
        for path in ("/dashboard", "/api/studies"):
            status, headers, body = request(port, "GET", path)
            assert status == 503, (path, body)
            assert headers["Content-Type"] == "application/json"
            assert json.loads(body) == {"detail": "Database unavailable; retry later"}
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        optuna.create_study(storage=postgres_url, study_name="late/adam")
        assert _study_names(port) == ["late/adam"]
        status, _, page = request(port, "GET", "/dashboard")
        assert status == 200 and b"<html" in page.lower()
        assert request(port, "GET", "/readyz")[0] == 200
    admin.dispose()
