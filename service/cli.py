"""The ``boundsweep`` command: one entry point for the service, the workers and the reports.

Every command reads the campaigns' storage from ``--storage URL``, else from
``BOUNDSWEEP_DATABASE_URL``, else a SQLite file ``boundsweep.db`` in the working directory.
The commands that only read or write the storage (submit, status, report, scheduler, demo)
import no torch and no web framework. The servers' stacks (FastAPI for ``serve``, the
dashboard's for ``dashboard``) and the worker's (torch) are imported by the command that runs
them, so every other command starts without paying for them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import signal
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from boundsweep.optimizers import NotInstalledError, PluginError
from boundsweep.service.db import make_engine, migrate
from boundsweep.service.settings import Settings
from boundsweep.studies import robustness
from boundsweep.studies.campaign import (
    MAX_DOCUMENT_BYTES,
    PRESETS,
    CampaignSpec,
    DocumentError,
    check_document,
    check_size,
    parse_json,
    parse_yaml,
    preset,
)
from boundsweep.studies.robustness import CampaignNotFoundError, analyze_campaign, summary_lines
from boundsweep.studies.storage import (
    DEFAULT_STORAGE,
    CampaignNotFound,
    CampaignStorage,
    campaign_progress,
    list_campaigns,
    not_installed_on,
    open_engine,
    open_storage,
    shown_url,
    storage_error_message,
)
from pydantic import ValidationError

__all__ = ["CLIError", "build_parser", "main"]


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


def _open_storage(url: str) -> CampaignStorage:
    """The campaigns' storage, Optuna's INFO lines silenced: the commands say what matters."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return open_storage(url)


def _settings(args: argparse.Namespace, **overrides: Any) -> Any:
    """The service settings from the environment, with the command line's storage on top.

    A bad ``BOUNDSWEEP_*`` value is one line naming the variable (exit status 2), not
    pydantic's traceback naming a field.
    """
    try:
        return Settings(database_url=_storage(args), **overrides)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(map(str, error.get("loc", ()))) or "settings"
        variable = f"BOUNDSWEEP_{field.upper()}"
        value = os.environ.get(variable)
        shown = f" = {value!r}" if value is not None else ""
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        raise CLIError(f"{variable}{shown}: {message}") from None


# --- serve / scheduler / dashboard / worker: long-running processes -------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """Migrate the database, then serve the REST API (and the dashboard) with uvicorn."""
    import uvicorn  # the web stack: only this command and `dashboard` need it
    from boundsweep.service.app import create_app

    # Migrated here, so the app's start-up need not do it a second time.
    settings = _settings(args, migrate_on_start=False)
    migrate(str(settings.database_url))
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.host,
        port=settings.port if args.port is None else args.port,
        log_level=args.log_level,
    )
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    """Run the nightly scheduler: create each schedule's dated campaign exactly once."""
    from boundsweep.service.scheduler import run_scheduler  # croniter: only this command

    settings = _settings(args)
    migrate(str(settings.database_url))
    # SIGTERM (docker stop, the demo) and Ctrl-C end the loop between polls, not mid-firing.
    # The previous handlers come back afterwards, so calling main() in-process leaves none behind.
    stop = threading.Event()
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    for signum in previous:
        signal.signal(signum, lambda *_: stop.set())
    try:
        firings = run_scheduler(settings, stop_event=stop, once=args.once)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if args.once:
        print(f"scheduler: {len(firings)} campaign(s) created")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve optuna-dashboard alone over the storage, with the same write guard as the API.

    Without a token it is read-only; ``--allow-writes`` without one makes a random token for
    this run and prints it: a write is never anonymous.
    """
    import uvicorn  # the web stack: only this command and `serve` need it
    from boundsweep.service.dashboard import access_from_settings, dashboard_asgi

    access = access_from_settings(_settings(args))
    url = f"http://{args.host}:{args.port}/dashboard"
    if args.allow_writes and access.api_token is None:
        access = dataclasses.replace(access, api_token=secrets.token_urlsafe(18))
        print(
            f"dashboard: writes need this run's token {access.api_token}: give it as the "
            "password of the browser's login prompt (any user name), or as "
            "'Authorization: Bearer <token>'",
            flush=True,
        )
    elif access.api_token is None:
        print(
            "dashboard: read-only (no BOUNDSWEEP_API_TOKEN); --allow-writes makes a token",
            flush=True,
        )
    print(f"dashboard: {url}", flush=True)
    uvicorn.run(dashboard_asgi(_storage(args), access), host=args.host, port=args.port)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Train trials from the storage until stopped (or, with --until-idle, until none are left)."""
    from boundsweep import workers  # torch: only the command that trains loads it

    args.storage = _storage(args)
    return int(workers.worker_main(args) or 0)


# --- submit / status / report: one-shot commands --------------------------------------------


def _parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs into a nested dict; values are YAML (``5``, ``[0, 1]``, ``true``)."""
    import yaml  # only the commands that read YAML pay for it

    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CLIError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set seeds=[0,1]")
        try:
            value = parse_yaml(raw)
        except yaml.YAMLError as exc:
            raise CLIError(f"--set {key}: value {raw!r} is not valid YAML ({exc})") from None
        except DocumentError as exc:
            raise CLIError(f"--set {key}: {exc}") from None
        *parents, leaf = key.split(".")
        node = overrides
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise CLIError(f"--set {key}: {part} is set both as a value and as a section")
        node[leaf] = value
    return overrides


def _validation_message(exc: Exception) -> str:
    """One line per pydantic error, naming the field; other errors as they are."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    lines = []
    for error in errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        # A spec-wide check names its field itself ("budget.epochs: ...").
        lines.append(f"  {where}: {message}" if where else f"  {message}")
    return "invalid campaign spec:\n" + "\n".join(lines)


def _load_spec(args: argparse.Namespace) -> CampaignSpec:
    import yaml  # only the commands that read YAML pay for it

    try:
        overrides = check_document(_parse_overrides(args.set or []))
        if args.name:
            overrides["name"] = args.name
        if args.preset:
            if args.preset not in PRESETS:
                raise CLIError(
                    f"unknown preset {args.preset!r}; valid presets: {', '.join(sorted(PRESETS))}"
                )
            return preset(args.preset, **overrides)
        path = Path(args.file)
        if not path.is_file():
            raise CLIError(f"{path}: no such file")
        # The API's limits (size, values, YAML aliases, depth, integer size, control
        # characters), from the same place; the size before a byte is read.
        check_size(path.stat().st_size)
        with path.open("rb") as file:
            raw = file.read(MAX_DOCUMENT_BYTES + 1)  # a file that grew since: still capped
        check_size(len(raw))
        document = parse_json(raw) if path.suffix == ".json" else _yaml_document(raw, parse_yaml)
        if not isinstance(document, dict):
            raise CLIError(f"{path}: a campaign spec must be a mapping (name, task, arms, ...)")
        return CampaignSpec.model_validate(_merge(document, overrides))
    except DocumentError as exc:
        raise CLIError(f"{args.file}: {exc}") from None
    except ValidationError as exc:
        raise CLIError(_validation_message(exc)) from None
    except yaml.YAMLError as exc:
        raise CLIError(f"{args.file}: not valid YAML: {' '.join(str(exc).split())}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise CLIError(str(exc)) from None


def _yaml_document(raw: bytes, parse_yaml: Any) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CLIError(f"the file is not UTF-8 (byte {exc.start})") from None
    return parse_yaml(text)


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def cmd_submit(args: argparse.Namespace) -> int:
    """Create a campaign (one Optuna study per arm, its trials queued) and register it.

    The API's and the scheduler's creation protocol (`service.launch`): the registry row, the
    studies and the queued trials commit in one transaction, so a submit killed half-way
    leaves nothing and can simply be run again.
    """
    from boundsweep.service.launch import CampaignBeingCreated, launch_campaign

    spec = _load_spec(args)
    if args.dry_run:
        print(spec.to_yaml())
        return 0
    url = _storage(args)
    storage = _open_storage(url)
    migrate(url)  # the service tables, so the API lists the campaign like one it created
    engine = make_engine(url)
    try:
        launch_campaign(engine, storage, spec, source="cli")
    except CampaignBeingCreated as exc:
        raise CLIError(str(exc)) from None
    except ValueError as exc:  # CampaignExists among them
        raise CLIError(str(exc)) from None
    finally:
        engine.dispose()
    arms = ", ".join(arm.name for arm in spec.arms)
    print(f"submitted campaign {spec.name!r} on {spec.task} with arms: {arms}")
    print(f"watch it: boundsweep status {spec.name}   report: boundsweep report {spec.name}")
    return 0


def cmd_requeue(args: argparse.Namespace) -> int:
    """Put a campaign's failed trials back in the queue (same params), each exactly once."""
    from boundsweep.studies.storage import CampaignNotFound, requeue_failed

    try:
        counts = requeue_failed(_open_storage(_storage(args)), args.name, arm=args.arm)
    except CampaignNotFound:
        raise CLIError(f"no campaign named {args.name!r} in {shown_url(_storage(args))}") from None
    except KeyError as exc:
        raise CLIError(str(exc.args[0])) from None
    total = sum(counts.values())
    detail = ", ".join(f"{arm} {n}" for arm, n in counts.items())
    print(f"{args.name}: {total} failed trial(s) queued again ({detail})")
    return 0


_STATUS_COLUMNS = (
    "arm",
    "optimizer",
    "finished",
    "total",
    "waiting",
    "running",
    "complete",
    "pruned",
    "fail",
    "best",
)


def format_progress(rows: Sequence[dict[str, Any]]) -> str:
    """A fixed-width table with one line per arm (rows as `ArmProgress.to_dict()`)."""

    def cell(row: dict[str, Any], column: str) -> str:
        value = row.get(column)
        if isinstance(value, float):
            return f"{value:.4g}"
        return "-" if value is None else str(value)

    table = [list(_STATUS_COLUMNS)] + [[cell(row, c) for c in _STATUS_COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(_STATUS_COLUMNS))]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    )


def cmd_status(args: argparse.Namespace) -> int:
    """Per-arm progress of one campaign, or the list of campaigns."""
    storage = _open_storage(_storage(args))
    if args.name is None:
        names = list(list_campaigns(storage))
        if args.json:
            print(json.dumps(names))
        else:
            print("\n".join(names) if names else f"no campaigns yet in {shown_url(_storage(args))}")
        return 0
    try:
        rows = [arm.to_dict() for arm in campaign_progress(storage, args.name)]
    except CampaignNotFound:
        raise CLIError(f"no campaign named {args.name!r} in {shown_url(_storage(args))}") from None
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    finished = sum(row["finished"] for row in rows)
    total = sum(row["total"] for row in rows)
    cancelled = " (cancelled)" if any(row["cancelled"] for row in rows) else ""
    epochs = sum(row["running_epochs"] for row in rows)
    live = f", running trials {epochs} epochs in" if epochs else ""
    print(f"{args.name}: {finished}/{total} trials finished{live}{cancelled}")
    print(format_progress(rows))
    for worker, why in sorted(not_installed_on(storage, args.name).items()):
        print(f"worker {worker} skips it: {why}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """The robustness report of one campaign: summary, and optionally HTML / PNGs / JSON."""
    # A bare engine: the report reads through the adapter's SQL and creates nothing, so it
    # needs no Optuna storage (whose opening cost more than the analysis).
    storage = open_engine(_storage(args))
    try:
        # The text summary shows no importance; the page, the figures and the JSON do.
        drawn = bool(args.json or args.html or args.png_dir)
        report = analyze_campaign(storage, args.name, metric=args.metric, importance=drawn)
    except CampaignNotFoundError:
        raise CLIError(f"no campaign named {args.name!r} in {shown_url(_storage(args))}") from None
    # With --json, stdout is the report alone; the written files are named on stderr.
    notes = sys.stderr if args.json else sys.stdout
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(summary_lines(report)))
    if args.html:
        path = Path(args.html)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(robustness.render_html(report))
        print(f"report: {path}", file=notes)
    if args.png_dir:
        for path in robustness.write_pngs(report, args.png_dir):
            print(f"figure: {path}", file=notes)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole service on SQLite: API, scheduler, two workers, one small campaign."""
    from boundsweep.service.demo import run_demo

    return run_demo(
        out_dir=Path(args.dir),
        workers=args.workers,
        epochs=args.epochs,
        seeds=args.seeds,
        port=args.port,
    )


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
    p.set_defaults(func=cmd_serve)

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
    p.set_defaults(func=cmd_worker)

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
    p.set_defaults(func=cmd_scheduler)

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
    p.set_defaults(func=cmd_dashboard)

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
    p.set_defaults(func=cmd_submit)

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
    p.set_defaults(func=cmd_status)

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
    p.set_defaults(func=cmd_requeue)

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
    p.set_defaults(func=cmd_report)

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
    p.set_defaults(func=cmd_demo)

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
        p.set_defaults(func=cmd_catalog, storage=None)
    return parser


def cmd_catalog(args: argparse.Namespace) -> int:
    """``boundsweep tasks`` / ``boundsweep optimizers``: the installed catalog."""
    from boundsweep.optimizers import OPTIMIZERS, describe_optimizer
    from boundsweep.studies.tasks import TASKS, describe_task

    catalog, describe_one = (
        (TASKS, describe_task) if args.command == "tasks" else (OPTIMIZERS, describe_optimizer)
    )
    listing = catalog.listing(describe_one)
    if args.json:
        print(json.dumps({"data": listing, "broken": catalog.broken}, indent=2))
        return 0
    for item in listing:
        origin = f"{item['distribution']} {item['version']}"
        if args.command == "tasks":
            what = f"{item['metric']} ({item['direction']}), {item['shape']}"
        else:
            what = ", ".join(item["hyperparameters"])
        print(f"{item['name']:<20} {origin:<28} {what}")
    for name, why in catalog.broken.items():
        print(f"{name:<20} NOT LOADED: {why}")
    return 0


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
        return int(args.func(args) or 0)
    except (CLIError, PluginError, NotInstalledError) as exc:
        print(f"boundsweep {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        found = storage_error_message(exc, storage, from_option=from_option)
        if found is None:
            raise
        status, message = found
        print(f"boundsweep {args.command}: error: {message}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
