"""``boundsweep worker`` / ``python -m workers``: options, logging, one process per GPU."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from boundsweep.studies.storage import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_STORAGE,
    storage_error_message,
)
from boundsweep.workers._setup import SETUP_ERROR_EXIT, device_problem
from boundsweep.workers._worker import (
    STORAGE_ERROR_EXIT,
    STORAGE_PATIENCE,
    Worker,
    WorkerConfig,
)

_DEVICE = re.compile(r"^(cpu|cuda|cuda:\d+|mps)$")


def _device(value: str) -> str:
    if not _DEVICE.match(value):
        raise argparse.ArgumentTypeError(f"invalid device {value!r}; valid: cpu, cuda, cuda:N, mps")
    return value


def _at_least(low: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if number < low:
            raise argparse.ArgumentTypeError(f"expected a number >= {low}, got {number}")
        return number

    return parse


def _duration(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {value}")
    return number


_count = _at_least(0)
_seconds = _at_least(1)  # a heartbeat every 0 s (or a grace of 0 s) makes no sense


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's options (``--storage`` is the caller's, as every command has it)."""
    parser.add_argument(
        "--device",
        type=_device,
        default="cpu",
        help="torch device: cpu, cuda or cuda:N (default: cpu)",
    )
    parser.add_argument(
        "--gpus",
        metavar="all|0,1,...",
        help="start one worker process per GPU (all visible ones, or the listed indices)",
    )
    parser.add_argument(
        "--until-idle", action="store_true", help="exit once no campaign has work left"
    )
    parser.add_argument(
        "--max-retries",
        type=_count,
        default=DEFAULT_MAX_RETRIES,
        help=f"times a crashed trial is retried before it is reported failed (default: {DEFAULT_MAX_RETRIES})",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=_seconds,
        default=DEFAULT_HEARTBEAT_INTERVAL,
        help=f"seconds between heartbeats of the running trial (default: {DEFAULT_HEARTBEAT_INTERVAL})",
    )
    parser.add_argument(
        "--grace-period",
        type=_seconds,
        default=None,
        help="seconds without a heartbeat before a trial this worker claims counts as crashed; "
        "recorded on the trial, so every worker judges it by this (default: 3 heartbeats)",
    )
    parser.add_argument(
        "--campaign",
        action="append",
        dest="campaigns",
        metavar="NAME",
        help="only work on this campaign (repeatable; default: all)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=2.0,
        help="seconds between looks for new work when there is none (default: 2)",
    )
    parser.add_argument("--max-trials", type=_count, default=None, help="stop after N trials")
    parser.add_argument(
        "--storage-patience",
        type=_duration,
        default=STORAGE_PATIENCE,
        metavar="SECONDS",
        help="with --until-idle: give up (exit 4) once the storage has failed for this long in "
        f"a row: a full disk, a read-only file or database, an outage (default: {STORAGE_PATIENCE:.0f})",
    )
    parser.add_argument(
        "--batch-trials",
        type=_at_least(1),
        default=None,
        metavar="K",
        help="train up to K queued trials of one arm together as one batched model, where the "
        "task and the arm's sampler allow it (default: automatic; 1: one by one)",
    )
    parser.add_argument(
        "--data-dir", default=None, help="dataset folder (default: $BOUNDSWEEP_DATA_DIR or ./data)"
    )


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s worker[%(process)d] %(message)s",
        )


def _gpu_indices(spec: str) -> list[int]:
    if spec == "all":
        import torch

        return list(range(torch.cuda.device_count()))
    try:
        return [int(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(
            f"boundsweep worker: --gpus {spec!r}: expected 'all' or indices like 0,1"
        ) from None


def _child_argv(args: argparse.Namespace, gpu: int) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "boundsweep.workers",
        "--storage",
        args.storage,
        "--device",
        f"cuda:{gpu}",
    ]
    argv += [
        "--max-retries",
        str(args.max_retries),
        "--heartbeat-interval",
        str(args.heartbeat_interval),
    ]
    if args.until_idle:
        argv.append("--until-idle")
    if args.grace_period is not None:
        argv += ["--grace-period", str(args.grace_period)]
    for name in args.campaigns or []:
        argv += ["--campaign", name]
    if args.max_trials is not None:
        argv += ["--max-trials", str(args.max_trials)]
    argv += ["--poll-interval", str(args.poll_interval)]
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    if args.batch_trials is not None:
        argv += ["--batch-trials", str(args.batch_trials)]
    argv += ["--storage-patience", str(args.storage_patience)]
    return argv


def _run_per_gpu(args: argparse.Namespace) -> int:
    """One child worker per GPU; SIGTERM/SIGINT are passed on and the children awaited."""
    gpus = _gpu_indices(args.gpus)
    if not gpus:
        print("boundsweep worker: --gpus: no CUDA device is visible", file=sys.stderr)
        return 2
    children = [subprocess.Popen(_child_argv(args, gpu)) for gpu in gpus]
    logging.getLogger("boundsweep.worker").info("started %d workers on GPUs %s", len(gpus), gpus)

    def forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        codes = [child.wait() for child in children]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return max(codes, default=0)


def worker_main(args: argparse.Namespace) -> int:
    """Run the worker (or one per GPU) as ``args`` say; the exit status."""
    _configure_logging()
    if args.gpus:
        return _run_per_gpu(args)
    if args.grace_period is not None and args.grace_period <= args.heartbeat_interval:
        # Its own trials would go stale between two of its beats and be failed by others.
        print(
            f"boundsweep worker: --grace-period {args.grace_period} must be longer than "
            f"--heartbeat-interval {args.heartbeat_interval}",
            file=sys.stderr,
        )
        return 2
    problem = device_problem(args.device)
    if problem is not None:  # every trial would fail the same way: claim none
        logging.getLogger("boundsweep.worker").error("worker not started: %s", problem)
        return SETUP_ERROR_EXIT
    worker = Worker(WorkerConfig(
        args.storage,
        device=args.device,
        until_idle=args.until_idle,
        max_retries=args.max_retries,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        campaigns=args.campaigns,
        max_trials=args.max_trials,
        poll_interval=args.poll_interval,
        data_dir=args.data_dir,
        batch_trials=args.batch_trials,
        storage_patience=args.storage_patience,
    ))  # fmt: skip
    worker.run()
    if worker.storage_failed is not None:
        return STORAGE_ERROR_EXIT
    if worker.unrunnable and args.until_idle:
        return SETUP_ERROR_EXIT  # idle only because it could not run some campaign's trials
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m workers [--storage URL] [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m workers",
        description="Train queued trials of every open campaign until stopped.",
    )
    parser.add_argument(
        "--storage",
        help="SQLAlchemy URL (default: $BOUNDSWEEP_DATABASE_URL or sqlite:///boundsweep.db)",
    )
    add_worker_arguments(parser)
    args = parser.parse_args(argv)
    from_option = bool(args.storage)
    args.storage = args.storage or os.environ.get("BOUNDSWEEP_DATABASE_URL") or DEFAULT_STORAGE
    try:
        return worker_main(args)
    except Exception as exc:
        # A wrong URL or a database out of reach is one line, as with `boundsweep worker`.
        found = storage_error_message(exc, args.storage, from_option=from_option)
        if found is None:
            raise
        status, message = found
        print(f"python -m workers: error: {message}", file=sys.stderr)
        return status
