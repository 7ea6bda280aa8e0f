"""boundsweep behind a real PgBouncer in transaction mode (benchmarks/_pgbouncer.py).

In transaction mode each transaction may run on another server connection, so nothing may
outlive a transaction on the server: no session ``SET``, no session advisory lock, no
``LISTEN``, no temporary table, and no prepared statement (psycopg 3 prepares a statement
after its 5th run on a connection). The first test shows the fixture really is such a pooler
(a default psycopg engine breaks behind it) and that boundsweep's engines do not; the second
runs the product's whole path through it: a campaign POSTed to the API, trained by a worker
process, reported.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from boundsweep.studies.storage import open_engine, open_storage

from benchmarks import _pgbouncer
from benchmarks._pgbouncer import PgBouncer
from benchmarks._worker_process import WorkerProcess
from tests.service._live_api import api_client
from tests.workers.test_worker import _assert_exact, _spec

pytestmark = pytest.mark.postgres

API = "/api/v1"


def _server_change_after_repeats(pooled: sa.Engine, url: str) -> None:
    """Run one statement 8 times on a connection of ``pooled`` (psycopg prepares it on the
    server by then), then once more while another client holds that server connection, so
    PgBouncer runs it on another one."""
    query = sa.text("SELECT count(*) FROM pg_class WHERE relname = :name")
    with pooled.connect() as conn:
        for _ in range(8):
            conn.execute(query, {"name": "x"})
        conn.commit()  # the server connection goes back to PgBouncer's pool
        other = sa.create_engine(url, poolclass=sa.NullPool)
        with other.connect() as holder:
            holder.execute(sa.text("SELECT 1"))  # its transaction takes that server connection
            conn.execute(query, {"name": "x"})
            conn.commit()
        other.dispose()


def test_statements_survive_a_change_of_server_connection(pooled_url: str) -> None:
    plain = sa.create_engine(pooled_url, poolclass=sa.NullPool)  # psycopg's defaults
    with pytest.raises(sa.exc.DBAPIError, match="prepared statement"):
        _server_change_after_repeats(plain, pooled_url)
    plain.dispose()
    ours = open_engine(pooled_url)
    _server_change_after_repeats(ours, pooled_url)
    ours.dispose()


def test_a_campaign_is_posted_trained_and_reported_through_pgbouncer(
    pooled_url: str, pgbouncer_in_use: PgBouncer
) -> None:
    spec = _spec("pooled", epochs=1, steps=10, grid=3, seeds=2, sampled=2)
    database = sa.make_url(pooled_url).database
    with api_client(pooled_url) as api:
        created = api.post(f"{API}/campaigns", json=spec.model_dump(mode="json"))
        assert created.status_code == 201, created.text
        # Two workers, one batched and one trial by one, share the pooled server connections.
        workers = [
            WorkerProcess(pooled_url, "--until-idle"),
            WorkerProcess(pooled_url, "--until-idle", "--batch-trials", "1"),
        ]
        try:
            for worker in workers:
                assert worker.wait(240) == 0, worker.log[-3000:]
        finally:
            for worker in workers:
                worker.kill()
        for worker in workers:
            assert "prepared statement" not in worker.log and "Traceback" not in worker.log
        status = api.get(f"{API}/campaigns/pooled")
        assert status.status_code == 200, status.text
        finished = {a["name"]: (a["complete"], a["total"]) for a in status.json()["arm_status"]}
        planned = {arm.name: arm.planned_trials(spec.seeds) for arm in spec.arms}
        assert finished == {name: (n, n) for name, n in planned.items()}, status.json()
        report = api.get(f"{API}/campaigns/pooled/report")
        assert report.status_code == 200, report.text
    _assert_exact(open_storage(pooled_url), spec)
    # Everything went through the pooler, within its bound on server connections.
    assert 0 < pgbouncer_in_use.server_connections(database) <= pgbouncer_in_use.pool_size


def test_a_machine_without_pgbouncer_is_told_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Not a skip: the pooled tests fail at their fixture with one line naming the fix."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no pgbouncer on PATH
    monkeypatch.setattr(_pgbouncer, "DEBIAN_PGBOUNCER", tmp_path / "pgbouncer")
    server = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    with pytest.raises(_pgbouncer.PgBouncerMissing) as missing, _pgbouncer.pgbouncer(server):
        pass
    message = str(missing.value)
    assert "\n" not in message
    assert "make pgbouncer" in message and "apt-get install pgbouncer" in message
