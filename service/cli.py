"""The ``boundsweep`` command: one entry point for the service, the workers and the reports.

Every command reads the campaigns' storage from ``--storage URL``, else from
``BOUNDSWEEP_DATABASE_URL``, else a SQLite file ``boundsweep.db`` in the working directory.
This module parses the command line with the standard library alone; the command's work
(``service._commands``) is imported once the line is understood, so ``--help`` and a refused
spec file cost no more than Python's start. The commands that only read or write the storage
(submit, status, report, scheduler, demo) import no torch and no web framework. The servers'
stacks (FastAPI for ``serve``, the dashboard's for ``dashboard``) and the worker's (torch) are
imported by the command that runs them, so every other command starts without paying for them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from boundsweep.studies.defaults import DEFAULT_STORAGE

__all__ = ["CLIError", "build_parser", "main", "read_spec_file"]


class CLIError(Exception):
    """A user mistake: printed as one line naming what is wrong, exit status 2, no traceback."""


def _default_storage() -> str:
    return os.environ.get("BOUNDSWEEP_DATABASE_URL") or DEFAULT_STORAGE


def _add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        metavar="URL",
        default=None,
        help="SQLAlchemy URL of the campaigns' database (default: $BOUNDSWEEP_DATABASE_URL, "
        f"else {DEFAULT_STORAGE})",
    )


def _storage(args: argparse.Namespace) -> str:
    return args.storage or _default_storage()


def read_spec_file(file: str) -> dict[str, Any]:
    """A campaign spec file's document, held to the API's document limits (size before a byte
    is read, values with YAML aliases counted, depth, integers, control characters) by a
    module that imports nothing heavy: ``_run`` reads it before the commands' stack, so a
    hostile file (a YAML "billion laughs", a million seeds) is refused as soon as Python runs.
    """
    from boundsweep.studies.documents import DocumentError, read_document_file

    path = Path(file)
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    try:
        document = read_document_file(path)
    except DocumentError as exc:
        raise CLIError(f"{file}: {exc}") from None
    except OSError as exc:
        raise CLIError(f"{file}: {exc.strerror or exc}") from None
    if not isinstance(document, dict):
        raise CLIError(f"{path}: a campaign spec must be a mapping (name, task, arms, ...)")
    return document


# --- the parser -----------------------------------------------------------------------------


def _command(
    subparsers: Any,
    name: str,
    summary: str,
    description: str,
    examples: str,
    *,
    storage: bool = True,
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=f"{summary}\n\n{textwrap.dedent(description).strip()}",
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if storage:
        _add_storage(parser)
    return parser


class _VersionAction(argparse.Action):
    """``--version``: the distribution's version, looked up only when the option is given."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"boundsweep {_version()}")
        parser.exit()


def _version() -> str:
    """The installed distribution's version (pyproject.toml's, through its metadata)."""
    import importlib.metadata  # read only when asked: `--version` is rare, imports are not free

    try:
        return importlib.metadata.version("boundsweep")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def build_parser(worker_options: bool = True) -> argparse.ArgumentParser:
    """The ``boundsweep`` argument parser with all its subcommands.

    Args:
        worker_options: add the worker's own options, which come from the workers package
            (it imports torch, seconds on a cold start): `main` skips them unless the command
            is ``worker``.
    """
    parser = argparse.ArgumentParser(
        prog="boundsweep",
        description="Test, with real training runs and real statistics, how robust an optimizer "
        "is to its hyperparameters (AdaBound, AMSBound and their baselines).",
        epilog="Start with `boundsweep demo`; `boundsweep COMMAND --help` explains each command.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _command(
        sub,
        "serve",
        "Serve the REST API (and the dashboard at /dashboard).",
        """
        Runs the database migrations first, then uvicorn. Writes need
        `Authorization: Bearer $BOUNDSWEEP_API_TOKEN`.
        """,
        """
        BOUNDSWEEP_API_TOKEN=secret boundsweep serve --port 8000
        boundsweep serve --storage postgresql+psycopg://bs@db/bs --host 0.0.0.0
        """,
    )
    p.add_argument("--host", help="address to bind (default: $BOUNDSWEEP_HOST, else 127.0.0.1)")
    p.add_argument(
        "--port", type=int, help="port to listen on (default: $BOUNDSWEEP_PORT, else 8000)"
    )
    p.add_argument("--log-level", default="info", help="uvicorn log level (default: info)")
    p.set_defaults(func="cmd_serve")

    p = _command(
        sub,
        "worker",
        "Train queued trials from the storage.",
        """
        Claims the next trial of any campaign with work left, trains it, reports every epoch
        and records the result. Run one per GPU, on any number of machines, all against the
        same database (SQLite is for one machine; use PostgreSQL for more).
        """,
        """
        boundsweep worker --until-idle
        boundsweep worker --storage postgresql+psycopg://bs@db/bs --gpus all
        """,
    )
    if worker_options:
        _add_worker_arguments(p)
    p.set_defaults(func="cmd_worker")

    p = _command(
        sub,
        "scheduler",
        "Run the nightly scheduler.",
        """
        Each schedule (POST /api/v1/schedules) creates its dated campaign exactly once per
        cron tick, even with several schedulers running.
        """,
        """
        boundsweep scheduler
        boundsweep scheduler --once   # one pass, then exit (cron, tests)
        """,
    )
    p.add_argument("--once", action="store_true", help="make one pass over the schedules and exit")
    p.set_defaults(func="cmd_scheduler")

    p = _command(
        sub,
        "dashboard",
        "Serve optuna-dashboard alone over the storage.",
        """
        The same dashboard the API mounts at /dashboard: every campaign arm is the study
        <campaign>/<arm>. Writes (rename, delete, notes) need $BOUNDSWEEP_API_TOKEN (or the
        token --allow-writes prints) as a bearer token, or as the password of the browser's
        login prompt; without one the dashboard is read-only. Reads need
        $BOUNDSWEEP_READ_TOKEN when it is set.
        """,
        """
        boundsweep dashboard --port 8080
        boundsweep dashboard --storage sqlite:///demo-output/boundsweep.db
        """,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    p.add_argument(
        "--allow-writes",
        action="store_true",
        help="allow renaming/deleting studies and editing notes: without "
        "$BOUNDSWEEP_API_TOKEN, a random token is made for this run and printed",
    )
    p.set_defaults(func="cmd_dashboard")

    p = _command(
        sub,
        "submit",
        "Submit a campaign from a YAML/JSON file or a preset.",
        """
        Creates one Optuna study per arm and queues its trials; workers pick them up.
        --set overrides any field of the spec, with dots for nested fields and YAML values.
        """,
        """
        boundsweep submit campaign.yaml
        boundsweep submit --preset paper-robustness --set task=mnist1d_mlp --set budget.epochs=5
        boundsweep submit --preset paper-robustness --name nightly-check --set seeds=[0,1,2]
        boundsweep submit --preset paper-robustness --dry-run   # print the spec, submit nothing
        """,
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE", help="campaign spec (.yaml or .json)")
    source.add_argument("--preset", metavar="NAME", help="a built-in campaign (see --dry-run)")
    p.add_argument("--name", help="campaign name (overrides the file's / preset's)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a field, e.g. budget.epochs=5 (repeatable)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the resulting spec and stop")
    p.set_defaults(func="cmd_submit")

    p = _command(
        sub,
        "status",
        "Show a campaign's progress per arm (or list campaigns).",
        """
        One line per arm: trials waiting, running, complete, pruned, failed, and the best value.
        """,
        """
        boundsweep status                  # list campaigns
        boundsweep status paper-robustness
        boundsweep status paper-robustness --json
        """,
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="campaign name")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func="cmd_status")

    p = _command(
        sub,
        "requeue",
        "Queue a campaign's failed trials again, with the same params.",
        """
        Trials that failed for good (crashed more than the retry limit, e.g. before their data
        was there) get a WAITING copy with a fresh retry allowance; each failed trial once,
        so running it twice changes nothing the second time.
        """,
        """
        boundsweep requeue paper-robustness
        boundsweep requeue paper-robustness --arm adabound
        """,
    )
    p.add_argument("name", metavar="NAME", help="campaign name")
    p.add_argument("--arm", help="only this arm")
    p.set_defaults(func="cmd_requeue")

    p = _command(
        sub,
        "report",
        "Print a campaign's robustness report; write it as HTML, PNG or JSON.",
        """
        Tests the paper's claims (robustness to final_lr and gamma, ...) with the campaign's
        own trials and their uncertainty; a claim the data cannot decide is inconclusive.
        """,
        """
        boundsweep report paper-robustness
        boundsweep report paper-robustness --html report.html --png-dir figures/
        boundsweep report paper-robustness --metric test --json > report.json
        """,
    )
    p.add_argument("name", metavar="NAME", help="campaign name")
    p.add_argument(
        "--metric",
        choices=("val", "test"),
        default="val",
        help="which final metric to analyse (default: val)",
    )
    p.add_argument("--html", metavar="FILE", help="write the self-contained HTML page here")
    p.add_argument("--png-dir", metavar="DIR", help="write the figures as PNG files here")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.set_defaults(func="cmd_report")

    p = _command(
        sub,
        "demo",
        "Run the whole service locally on SQLite, end to end.",
        """
        Starts the API (with the dashboard), the scheduler and two workers on a fresh SQLite
        file in --dir, submits paper-robustness on mnist1d_mlp at a small budget through the
        REST API, shows live progress, then prints the report's verdicts, its path and the
        dashboard's URL. --storage is ignored: the demo always uses its own SQLite file.
        """,
        """
        boundsweep demo
        boundsweep demo --dir /tmp/bs-demo --epochs 10 --seeds 2
        """,
    )
    p.add_argument("--dir", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per trial (default: demo's)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per configuration")
    p.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    p.set_defaults(func="cmd_demo")

    for kind in ("tasks", "optimizers"):
        p = _command(
            sub,
            kind,
            f"List the installed {kind}, with the distribution each comes from.",
            f"""
            Every {kind[:-1]} a campaign can name here: the built-in ones and the installed
            plugins' (entry point group boundsweep.{kind}, or the modules $BOUNDSWEEP_PLUGINS
            names), with the distribution and version of each. Reads no storage.
            """,
            f"""
            boundsweep {kind}
            boundsweep {kind} --json
            BOUNDSWEEP_PLUGINS=my_plugins boundsweep {kind}
            """,
            storage=False,
        )
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func="cmd_catalog", storage=None)
    return parser


def _add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's own options come from the workers package, which knows what they mean."""
    from boundsweep.workers import add_worker_arguments  # torch, as cmd_worker

    add_worker_arguments(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``boundsweep``; returns the exit status (2 for a user mistake, with one message).

    Output piped to a reader that stops early (``| head -1``) ends quietly with status 141,
    as a Unix tool killed by SIGPIPE does, instead of a BrokenPipeError traceback. (SIGPIPE
    itself stays ignored: the servers must survive a client that hangs up.)
    """
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError:
        # The reader has all it wanted; nothing more may reach the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _run(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(worker_options="worker" in argv)
    args = parser.parse_args(argv)
    storage, from_option = _storage(args), bool(args.storage)
    if args.command == "demo":  # its own file, whatever --storage says: name that one
        from boundsweep.service.demo import database_url

        storage, from_option = database_url(Path(args.dir)), False
    try:
        if args.command == "submit" and args.file:
            # Before the commands' stack is imported: a hostile file is refused at once.
            args.document = read_spec_file(args.file)
        from boundsweep.service import _commands

        return int(getattr(_commands, args.func)(args) or 0)
    except CLIError as exc:
        return _refuse(args, exc)
    except KeyboardInterrupt:
        return 130
    except ImportError:
        raise  # a missing extra: entry.main names it in one line
    except Exception as exc:
        from boundsweep.optimizers import NotInstalledError, PluginError

        if isinstance(exc, (PluginError, NotInstalledError)):
            return _refuse(args, exc)
        from boundsweep.studies.storage import storage_error_message

        found = storage_error_message(exc, storage, from_option=from_option)
        if found is None:
            raise
        status, message = found
        print(f"boundsweep {args.command}: error: {message}", file=sys.stderr)
        return status


def _refuse(args: argparse.Namespace, exc: Exception) -> int:
    """A user mistake: one line naming the command, exit status 2."""
    print(f"boundsweep {args.command}: error: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
