"""A worker process holds one database connection: its trials and its heartbeat share it.

Read from PostgreSQL's own ``pg_stat_activity`` while a real worker process trains real
trials with a heartbeat every second; the worker's connections carry an ``application_name``
of their own (given in its URL), so nothing else on the server is counted.
"""

from __future__ import annotations

import signal
import time
import uuid

import pytest
import sqlalchemy as sa
from boundsweep.studies.storage import (
    APPLICATION_NAME,
    campaign_progress,
    create_campaign,
    open_storage,
    postgres_connect_args,
)

from benchmarks._worker_process import WorkerProcess
from tests.workers.test_worker import _assert_exact, _spec


def _with_application_name(url: str, name: str) -> str:
    return sa.make_url(url).update_query_dict({"application_name": name}).render_as_string(False)


@pytest.mark.postgres
def test_a_worker_process_holds_one_connection(postgres_url: str) -> None:
    storage = open_storage(postgres_url)
    # Batched and one by one: a single-trial arm (adabound, then sgdm) and a sampled one.
    spec = _spec("one-connection", epochs=2, steps=20, grid=2, seeds=2, sampled=2)
    create_campaign(storage, spec)
    name = f"bs-worker-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(_with_application_name(postgres_url, name))
    admin = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    seen: list[int] = []
    try:
        with admin.connect() as conn:
            count = sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
            ).bindparams(name=name)
            deadline = time.monotonic() + 150
            while not all(row.done for row in campaign_progress(storage, spec.name)):
                assert worker.process.poll() is None, worker.log[-3000:]
                assert time.monotonic() < deadline, "timed out waiting for the campaign"
                seen.append(conn.execute(count).scalar_one())
                conn.rollback()  # a fresh snapshot of pg_stat_activity each time
                time.sleep(0.02)
        worker.process.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, worker.log[-3000:]
    finally:
        worker.kill()
        admin.dispose()
    _assert_exact(storage, spec)
    assert "heartbeat" not in worker.log, worker.log[-3000:]  # no beat waited out the pool
    assert max(seen) == 1, f"the worker held {max(seen)} connections at once"
    # From its first transaction on, it kept that one connection open (not one per use).
    assert set(seen[seen.index(1) :]) == {1}, seen


def test_every_postgres_connection_is_named_and_prepares_nothing() -> None:
    args = postgres_connect_args("postgresql+psycopg://u@h/db")
    assert args["prepare_threshold"] is None  # safe behind PgBouncer in transaction mode
    assert args["application_name"] == APPLICATION_NAME
    # A name in the URL is the one used; SQLite needs none of it.
    assert "application_name" not in postgres_connect_args(
        "postgresql+psycopg://h/db?application_name=x"
    )
    assert postgres_connect_args("sqlite:///x.db") == {}
