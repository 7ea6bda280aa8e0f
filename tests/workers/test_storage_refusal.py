"""A worker whose storage stays unusable: ``--until-idle`` ends with exit 4 and one line.

Real refusals, no mocks: a SQLite file opened read-only (``mode=ro``, as a file on a
read-only mount is) and a PostgreSQL database that refuses every write
(``default_transaction_read_only``, as a hot standby does).
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from boundsweep.studies.storage import campaign_progress, create_campaign, open_storage
from boundsweep.workers._worker import STORAGE_ERROR_EXIT, Worker, WorkerConfig

from benchmarks._worker_process import WorkerProcess
from tests.workers.test_worker import FAST, _spec


def test_until_idle_on_a_read_only_sqlite_file_exits_4_with_one_line(tmp_path) -> None:
    path = tmp_path / "campaigns.db"
    spec = _spec("ro", 1, grid=1, sampled=0)
    create_campaign(open_storage(f"sqlite:///{path}"), spec)
    worker = WorkerProcess(
        f"sqlite:///file:{path}?mode=ro&uri=true", "--until-idle", "--storage-patience", "1"
    )
    try:
        code = worker.wait(timeout=120)
    finally:
        worker.kill()
    assert code == STORAGE_ERROR_EXIT == 4, worker.log
    errors = [line for line in worker.log.splitlines() if " ERROR " in line]
    assert len(errors) == 1, worker.log
    assert "storage unusable for" in errors[0] and "readonly database" in errors[0]
    assert "giving up (exit 4)" in errors[0]
    assert "Traceback" not in worker.log
    # Nothing was claimed: every trial still waits for a worker that can write.
    progress = campaign_progress(open_storage(f"sqlite:///{path}"), "ro")
    assert sum(row.waiting for row in progress) == sum(
        a.planned_trials(spec.seeds) for a in spec.arms
    )
    assert sum(row.running for row in progress) == 0


@pytest.mark.postgres
def test_until_idle_on_a_postgres_refusing_writes_gives_up_after_its_patience(
    postgres_url: str,
) -> None:
    create_campaign(open_storage(postgres_url), _spec("pg-ro", 1, grid=1, sampled=0))
    name = sa.make_url(postgres_url).database
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    engine.dispose()
    config = WorkerConfig(postgres_url, until_idle=True, storage_patience=1.0, **FAST)
    worker = Worker(config)
    start = time.monotonic()
    assert worker.run() == 0
    assert 1.0 <= time.monotonic() - start < 30
    assert worker.storage_failed is not None
    assert "read-only transaction" in worker.storage_failed, worker.storage_failed
