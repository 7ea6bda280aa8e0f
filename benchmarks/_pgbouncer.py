"""A real PgBouncer in transaction mode in front of the suite's PostgreSQL, for the tests and
the scale benchmark: started on a free port of 127.0.0.1 and stopped at the end, like the
suite's own PostgreSQL (``benchmarks/_postgres.py``).

It is Debian's ``pgbouncer`` package. ``make test`` runs ``python -m benchmarks._pgbouncer``
first: it finds the binary, else installs the package (``apt-get`` as root), and if neither
works it stops with one line saying what is missing, so a missing PgBouncer is never a skip.

Every database name a client asks for is served from the same-named database on the server
(PgBouncer's ``*`` fallback), so a throwaway test database needs no configuration. As root,
PgBouncer (which refuses to run as root) runs as ``nobody``.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

DEBIAN_PGBOUNCER = Path("/usr/sbin/pgbouncer")
HOW_TO_GET_ONE = (
    "install Debian's pgbouncer (`make pgbouncer`, or `apt-get install pgbouncer` as root)"
)
STARTUP_SECONDS = 30


class PgBouncerMissing(RuntimeError):
    """No PgBouncer binary on this machine."""


def pgbouncer_binary() -> Path | None:
    """The PgBouncer to run: on ``PATH``, else Debian's; None when there is none."""
    found = shutil.which("pgbouncer")
    if found:
        return Path(found)
    return DEBIAN_PGBOUNCER if DEBIAN_PGBOUNCER.exists() else None


@dataclass(frozen=True)
class PgBouncer:
    """A running PgBouncer: where it listens, and its admin console."""

    host: str
    port: int
    user: str
    pool_size: int

    def url(self, server_url: str) -> str:
        """``server_url`` (a database on the server behind it) as reached through PgBouncer."""
        parsed = sa.make_url(server_url)
        return parsed.set(host=self.host, port=self.port).render_as_string(hide_password=False)

    def show(self, what: str) -> list[dict[str, Any]]:
        """The rows of the admin console's ``SHOW <what>`` (``POOLS``, ``CLIENTS``, ...)."""
        # The console speaks only the simple query protocol; a client-side cursor uses it.
        with psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname="pgbouncer",
            autocommit=True,
            cursor_factory=psycopg.ClientCursor,
        ) as conn:
            cursor = conn.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def server_connections(self, database: str) -> int:
        """Server connections PgBouncer holds open to ``database`` now (any state)."""
        return sum(
            row["sv_active"] + row["sv_idle"] + row["sv_used"] + row["sv_tested"] + row["sv_login"]
            for row in self.show("POOLS")
            if row["database"] == database
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _in_child() -> None:
    """In PgBouncer's process: as many open files as allowed (one per client and server
    connection), and SIGTERM when the process that started it dies (Linux)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


@contextmanager
def pgbouncer(
    server_url: str, *, pool_size: int = 20, max_client_conn: int = 200
) -> Iterator[PgBouncer]:
    """A PgBouncer in transaction mode in front of the server of ``server_url``.

    Args:
        server_url: Any URL on the PostgreSQL server (its host, port and user are used).
        pool_size: Server connections per database at most (``max_db_connections``).
        max_client_conn: Client connections it accepts at most.

    Raises:
        PgBouncerMissing: No PgBouncer is installed.
    """
    binary = pgbouncer_binary()
    if binary is None:
        raise PgBouncerMissing(f"no PgBouncer for the pooled tests: {HOW_TO_GET_ONE}")
    server = sa.make_url(server_url)
    user = server.username or "postgres"
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="boundsweep-pgbouncer-") as folder:
        root = Path(folder)
        (root / "users.txt").write_text(f'"{user}" ""\n')
        ini = root / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={server.host or '127.0.0.1'} port={server.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {root / 'users.txt'}\nadmin_users = {user}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\nmax_db_connections = {pool_size}\n"
            f"max_client_conn = {max_client_conn}\n"
            f"logfile = {root / 'pgbouncer.log'}\n"
            "log_connections = 0\nlog_disconnections = 0\n"
        )
        owner = ["-u", "nobody"] if os.geteuid() == 0 else []
        if owner:
            nobody = pwd.getpwnam("nobody")
            for path in (root, *root.iterdir()):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
        process = subprocess.Popen(
            [binary, *owner, ini],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=root,
            preexec_fn=_in_child,
        )
        bouncer = PgBouncer("127.0.0.1", port, user, pool_size)
        try:
            _wait_until_ready(process, bouncer, root / "pgbouncer.log")
            yield bouncer
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # "safe shutdown": wait for clients
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _wait_until_ready(process: subprocess.Popen, bouncer: PgBouncer, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            bouncer.show("VERSION")
            return
        except psycopg.OperationalError as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                text = log.read_text(errors="replace") if log.exists() else ""
                raise RuntimeError(
                    f"PgBouncer did not start ({exc}); its output:\n{stderr}{text}"
                ) from exc
        time.sleep(0.1)


def _install() -> None:
    """Debian's package, as root, quietly; whether it worked is checked afterwards."""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("make test: installing Debian's pgbouncer (apt-get)", file=sys.stderr)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "update", "-qq"], env=env, **quiet).returncode == 0:
            subprocess.run(["apt-get", "install", "-y", "-qq", "pgbouncer"], env=env, **quiet)


def main() -> int:
    """``make pgbouncer``: 0 when a PgBouncer is there (installed now if need be), else 1
    with one line saying what is missing."""
    if pgbouncer_binary() is None:
        _install()
    binary = pgbouncer_binary()
    if binary is None:
        print(f"make test: no PgBouncer for the pooled tests: {HOW_TO_GET_ONE}", file=sys.stderr)
        return 1
    print(f"PgBouncer: {binary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
