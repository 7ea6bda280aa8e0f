"""Open the Optuna storage every part shares: an ``RDBStorage`` from a SQLAlchemy URL.

SQLite is the embedded default (one worker, or the demo's two); PostgreSQL is the store for
several workers. Heartbeats are always on, so a worker that dies mid-trial is noticed by the
others and its trial retried (``RetryHeartbeatStaleTrialCallback``).
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
import warnings
from contextlib import closing
from typing import Any

import optuna
import sqlalchemy as sa
from boundsweep.studies._storage._optuna import CampaignStorage, heartbeat_storage

DEFAULT_HEARTBEAT_INTERVAL = 10
"""Seconds between two heartbeats of a running trial."""
DEFAULT_MAX_RETRIES = 2
"""How many times a crashed trial is retried before it is reported failed."""
POSTGRES_CONNECT_TIMEOUT = 10
"""Seconds to wait for a PostgreSQL server to accept a connection."""
SQLITE_BUSY_TIMEOUT = 60.0
"""Seconds a SQLite writer waits for another's lock before giving up."""
APPLICATION_NAME = "boundsweep"
"""What PostgreSQL (``pg_stat_activity``) and PgBouncer (``SHOW CLIENTS``) show as the
``application_name`` of boundsweep's connections, unless the URL names its own
(``?application_name=...``)."""


def _prepare_sqlite(url: sa.URL) -> dict[str, Any]:
    """WAL mode (readers never block the writer) and a busy timeout, for two local processes."""
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        # journal_mode=WAL is stored in the file itself: set it once, before Optuna connects.
        with closing(sqlite3.connect(database, timeout=SQLITE_BUSY_TIMEOUT)) as conn:
            ensure_wal(conn, SQLITE_BUSY_TIMEOUT)
    return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}}


def ensure_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Put the SQLite file behind ``conn`` in WAL mode, waiting up to ``timeout`` s for others.

    Leaving the rollback journal needs the file to itself, and SQLite answers "database is
    locked" at once, without its busy handler, while another connection reads or writes it
    (the service, a scheduler or a worker on the same file). So this retries until the
    switch is made or ``timeout`` has passed. A file already in WAL mode costs one read.

    Raises:
        sqlite3.OperationalError: The file stayed locked for ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
            if mode.lower() in ("wal", "memory"):
                return
            (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            if mode.lower() == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        if time.monotonic() >= deadline:
            raise sqlite3.OperationalError(
                f"could not switch the SQLite database to WAL mode within {timeout:.0f} s: "
                "other connections kept it busy"
            )
        # Others' transactions are short; try again soon, at a random moment.
        time.sleep(random.uniform(0.001, 0.02))


def _unwrap(exc: BaseException) -> BaseException:
    """The error under Optuna's ``StorageInternalError`` wrappers."""
    while isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__:
        exc = exc.__cause__
    return exc


def storage_error_reason(exc: BaseException) -> str:
    """The database's own one-line reason for a storage error, unwrapped from Optuna's and
    SQLAlchemy's exceptions (for logs and messages)."""
    exc = _unwrap(exc)
    cause = getattr(exc, "orig", None) or exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def shown_url(url: str) -> str:
    """``url`` as messages and logs may show it: the password as ``***``."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def storage_error_message(
    exc: BaseException, url: str, *, from_option: bool
) -> tuple[int, str] | None:
    """Exit status and one line for a storage URL that is wrong or a database out of reach.

    For the command lines: a bad URL is a usage error (status 2) that names where it came from
    (``--storage`` when ``from_option``, else ``BOUNDSWEEP_DATABASE_URL`` when set) and the
    accepted forms; a database that cannot be reached is status 1 with the database's own
    reason. Passwords are shown as ``***``.

    Returns:
        ``(status, message)``, or ``None`` for any other error (which keeps its traceback).
    """
    exc = _unwrap(exc)
    shown = shown_url(url)
    if isinstance(exc, sa.exc.ArgumentError):  # includes an unknown dialect or driver
        source = (
            "--storage"
            if from_option
            else "BOUNDSWEEP_DATABASE_URL"
            if os.environ.get("BOUNDSWEEP_DATABASE_URL")
            else "storage"
        )
        return 2, (
            f"{source} {shown!r} is not a database URL boundsweep can use ({exc}); give "
            "sqlite:///FILE.db or postgresql+psycopg://USER@HOST:PORT/DATABASE"
        )
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sqlite3.OperationalError):
        return 1, f"cannot use the database {shown}: {storage_error_reason(exc)}"
    return None


def postgres_connect_args(url: str | sa.URL) -> dict[str, Any]:
    """The driver arguments of every PostgreSQL connection boundsweep opens (the storage's,
    the service's, the report's); empty for another database.

    - ``connect_timeout``: a host that drops packets must fail a connection (and be retried),
      not hang it for the kernel's minutes of TCP retries.
    - ``prepare_threshold=None``: psycopg 3 prepares a statement on the server after its 5th
      run on a connection, and names it in later runs. Behind PgBouncer in transaction mode
      (docs/operations.md) the next transaction may run on another server connection, where
      that name does not exist ("prepared statement "_pg3_0" does not exist"). So statements
      are never prepared, pooled or not: ``benchmarks/bench_scale.py`` measures what that
      costs on a direct connection (within its noise), and one setting fewer to get wrong.
    - ``application_name``: ``boundsweep`` unless the URL gives one, so an operator can tell
      boundsweep's connections apart in ``pg_stat_activity``.

    Nothing else is session state: no ``SET`` outside a transaction (lock and idle timeouts
    are ``set_config(..., true)``, local to their transaction), only transaction-scoped
    advisory locks, no ``LISTEN``, no temporary tables.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return {}
    args: dict[str, Any] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT}
    if parsed.get_driver_name() == "psycopg":
        args["prepare_threshold"] = None
    if "application_name" not in parsed.query:
        args["application_name"] = APPLICATION_NAME
    return args


def _engine_kwargs(url: str, pool_size: int) -> dict[str, Any]:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _prepare_sqlite(parsed)
    kwargs: dict[str, Any] = {
        "pool_pre_ping": True,  # a database restart must not kill long-lived workers
        "pool_size": pool_size,
        # One connection means one: the threads of a worker (its trials, its heartbeat) take
        # turns on it, one short transaction at a time. A bigger pool may overflow as much.
        "max_overflow": 0 if pool_size == 1 else pool_size,
        "pool_recycle": 1800,
        "pool_timeout": 60,
    }
    if connect_args := postgres_connect_args(parsed):
        kwargs["connect_args"] = connect_args
    return kwargs


def open_engine(url: str, *, pool_size: int = 1) -> sa.Engine:
    """An engine on the storage at ``url`` for reading what is there; creates nothing.

    The report reads campaigns through the adapter's SQL alone. Opening Optuna's
    ``RDBStorage`` for it (table creation, a schema check that imports alembic) and loading
    ``FrozenTrial`` objects cost more than the analysis itself (issue 19).
    """
    return sa.create_engine(url, **_engine_kwargs(url, pool_size))


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
    grace_period: int | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    pool_size: int = 1,
) -> CampaignStorage:
    """Open (and create the tables of) the storage at ``url``.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///boundsweep.db`` or
            ``postgresql+psycopg://user@host/db``.
        heartbeat_interval: Seconds between heartbeats of a running trial.
        grace_period: Seconds without a heartbeat after which a running trial is stale and is
            failed and retried; ``None``: three heartbeat intervals.
        max_retries: Times a stale trial is re-queued before it stays failed.
        pool_size: Connections to the database (not SQLite). 1, the default: the process's
            one connection, which its threads (a worker's trials and their heartbeat) use
            one transaction at a time; no code path holds one connection while it asks for
            another. More (the API's request threads): kept open, and as many again may
            overflow.

    Returns:
        The storage; pass it to ``optuna.load_study`` or to this module's functions.
    """
    kwargs = _engine_kwargs(url, pool_size)
    if grace_period is None:
        grace_period = 3 * heartbeat_interval
    # Several workers may start on a fresh database at once; creating Optuna's tables then
    # races (duplicate table or enum type), and the loser simply finds them on a second try.
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                # Heartbeats are "experimental" in Optuna 5 but the only crash detection it has.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return heartbeat_storage(
                    url,
                    engine_kwargs=kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    max_retries=max_retries,
                )
        except (sa.exc.DBAPIError, optuna.exceptions.StorageInternalError):
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")
