"""Interrupt a campaign's creation at any of its steps, from inside the creating process.

A creation's steps are the statements of its transaction (from the first, the registry row
or PostgreSQL's wait bounds), its commit, and the moment just after the commit. `Steps`
calls `at(step, name, connection)` at each; what `at` does there is the fault: SIGKILL the process,
stop it for a kill from outside, cut its database connection, or pause it while another
client acts. Used in-process (the API under uvicorn in the test's own process) and by the
creator scripts the tests run as subprocesses (`python -m tests.service._interrupt`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

At = Callable[[int, str, sa.Connection], None]
_FIRST = ("SELECT set_config('lock_timeout'", "INSERT INTO bs_campaigns")


class Steps:
    """Calls `at(step, name, connection)` at every step of each campaign creation in this
    process. Steps are numbered from 1 for each creation; `names` lists the last one's."""

    current: Steps | None = None
    """The instance installed now (read by the dialects' wrapped commits)."""

    def __init__(self, at: At) -> None:
        self.at = at
        self.names: list[str] = []
        self._active: sa.Connection | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Steps:
        Steps.current = self
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._statement)
        sa.event.listen(sa.engine.Engine, "commit", self._commit)
        sa.event.listen(sa.engine.Engine, "rollback", self._rollback)
        return self

    def __exit__(self, *_: Any) -> None:
        Steps.current = None
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", self._statement)
        sa.event.remove(sa.engine.Engine, "commit", self._commit)
        sa.event.remove(sa.engine.Engine, "rollback", self._rollback)

    def _step(self, name: str, conn: sa.Connection) -> None:
        self.names.append(name)
        self.at(len(self.names), name, conn)

    def _statement(self, conn: sa.Connection, _cursor: Any, text: str, *_: Any) -> None:
        with self._lock:
            if self._active is None and text.startswith(_FIRST):
                self._active, self.names = conn, []
                _report_commits(conn.dialect)
            mine = self._active is conn
        if mine:
            self._step(" ".join(text.split()[:3]), conn)

    def _commit(self, conn: sa.Connection) -> None:  # before the commit
        if self._active is conn:
            self._step("COMMIT", conn)

    def committed(self, pooled: Any) -> None:
        conn = self._active
        if conn is not None and conn.connection is pooled:
            self._active = None
            self._step("committed", conn)

    def _rollback(self, conn: sa.Connection) -> None:
        if self._active is conn:
            self._active = None


def _report_commits(dialect: sa.Dialect) -> None:
    """Make `dialect` tell the installed `Steps` when it has committed (SQLAlchemy has an
    event before a commit, none after it)."""
    if getattr(dialect, "_commits_reported", False):
        return
    commit = dialect.do_commit

    def do_commit(pooled: Any) -> None:  # the pool's proxy of the DBAPI connection
        commit(pooled)
        if Steps.current is not None:
            Steps.current.committed(pooled)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect._commits_reported = True  # type: ignore[attr-defined]


def kill(step: int) -> At:
    """SIGKILL this process at `step`."""

    def at(reached: int, _name: str, _conn: sa.Connection) -> None:
        if reached == step:
            os.kill(os.getpid(), signal.SIGKILL)

    return at


def stop(step: int) -> At:
    """Say `stopped` on stdout at `step` and wait there to be killed from outside (a PID
    namespace's first process cannot SIGKILL itself)."""

    def at(reached: int, _name: str, _conn: sa.Connection) -> None:
        if reached == step:
            print("stopped", flush=True)
            time.sleep(600)

    return at


def cut(step: int, admin_url: str = "") -> At:
    """Cut the creation's connection at `step`: PostgreSQL terminates its backend (from
    `admin_url`), as `pg_terminate_backend` or a server restart would; SQLite aborts the
    statement (or commit) about to run with "interrupted", its nearest equivalent (after
    the commit there is nothing left to abort on SQLite)."""

    def at(reached: int, name: str, conn: sa.Connection) -> None:
        if reached != step:
            return
        dbapi = conn.connection.dbapi_connection
        if conn.dialect.name == "sqlite":
            if name != "committed":
                aborted: list[bool] = []

                def abort_once() -> int:  # and leave the pooled connection usable after
                    first = not aborted
                    aborted.append(True)
                    return int(first)

                dbapi.set_progress_handler(abort_once, 1)  # type: ignore[union-attr]
            return
        admin = sa.create_engine(admin_url, poolclass=sa.NullPool)
        try:
            with admin.connect() as other:
                other.execute(
                    sa.text("SELECT pg_terminate_backend(:pid)"),
                    {"pid": dbapi.info.backend_pid},  # type: ignore[union-attr]
                )
        finally:
            admin.dispose()

    return at


def main() -> int:
    """`python -m tests.service._interrupt URL SPEC_FILE STEP kill|stop`: `boundsweep submit`,
    interrupted at STEP (0: not at all)."""
    url, spec_file, step, how = sys.argv[1:]
    from boundsweep.service.cli import main as cli

    print(f"pid {os.getpid()}", flush=True)
    with Steps({"kill": kill, "stop": stop}[how](int(step))):
        return cli(["submit", spec_file, "--storage", url])


if __name__ == "__main__":
    sys.exit(main())
