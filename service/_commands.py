"""The ``boundsweep`` commands' work (``service.cli`` parses the command line and imports
this module only then): the storage, the service and the report, imported once a command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from boundsweep.service.cli import CLIError, _storage
from boundsweep.service.db import make_engine, migrate
from boundsweep.service.settings import Settings
from boundsweep.studies import robustness
from boundsweep.studies.campaign import (
    PRESETS,
    CampaignSpec,
    DocumentError,
    check_document,
    parse_yaml,
    preset,
)
from boundsweep.studies.robustness import CampaignNotFoundError, analyze_campaign, summary_lines
from boundsweep.studies.storage import (
    CampaignNotFound,
    CampaignStorage,
    campaign_progress,
    list_campaigns,
    not_installed_on,
    open_engine,
    open_storage,
    shown_url,
)
from pydantic import ValidationError


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
        # Read and held to the document limits before this module was imported (`cli._run`).
        return CampaignSpec.model_validate(_merge(args.document, overrides))
    except DocumentError as exc:  # the --set values together (each alone: _parse_overrides)
        raise CLIError(f"--set: {exc}") from None
    except ValidationError as exc:
        raise CLIError(_validation_message(exc)) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise CLIError(str(exc)) from None


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
