"""What one `POST /api/v1/campaigns` costs the database: transactions and statements.

Serves the real app with uvicorn on loopback (in this process, so a SQLAlchemy event listener
on every engine sees each transaction it begins and each statement it sends), posts one
5-arm campaign (the `paper-robustness` preset on `digits_mlp`: 195 trials) to warm the app
(the first request opens the Optuna storage), then counts a second POST of the same shape,
on SQLite and on PostgreSQL (the tests' server, or one of its own). Also times the POST.

    .venv/bin/python benchmarks/bench_creation.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from boundsweep.service.app import create_app  # noqa: E402
from boundsweep.service.settings import Settings  # noqa: E402

from benchmarks._db_calls import DatabaseCalls, counting  # noqa: E402
from benchmarks._postgres import postgres_database, postgres_server  # noqa: E402

TOKEN = "bench-token"


def body(name: str) -> dict[str, Any]:
    """A 5-arm campaign: the paper's robustness preset on the digits MLP."""
    return {"preset": "paper-robustness", "name": name, "overrides": {"task": "digits_mlp"}}


@contextmanager
def live_api(url: str) -> Iterator[httpx.Client]:
    """The real app on 127.0.0.1:<free port>, and a client carrying the write token."""
    app = create_app(Settings(database_url=url, api_token=TOKEN, dashboard=False))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            client.headers["Authorization"] = f"Bearer {TOKEN}"
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def measure(url: str, repeat: int) -> tuple[DatabaseCalls, list[float]]:
    """Counts of one POST (after a warm-up one), and the wall times of `repeat` POSTs."""
    with live_api(url) as api:
        assert api.post("/api/v1/campaigns", json=body("warm-up")).status_code == 201
        with counting() as calls:
            answer = api.post("/api/v1/campaigns", json=body("counted"))
        assert answer.status_code == 201, answer.text
        times = []
        for i in range(repeat):
            began = time.perf_counter()
            assert api.post("/api/v1/campaigns", json=body(f"timed-{i}")).status_code == 201
            times.append(time.perf_counter() - began)
    return calls, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed POSTs per database")
    parser.add_argument("--statements", action="store_true", help="list the counted statements")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows.append(("SQLite", *measure(f"sqlite:///{folder}/bench.db", args.repeat)))
    with postgres_server(), postgres_database() as url:
        rows.append(("PostgreSQL", *measure(url, args.repeat)))
    print(f"{'database':<12}{'transactions':>14}{'statements':>12}{'POST ms (median)':>18}")
    for name, calls, times in rows:
        print(
            f"{name:<12}{calls.transactions:>14}{calls.statements:>12}"
            f"{statistics.median(times) * 1e3:>18.0f}"
        )
    if args.statements:
        for name, calls, _ in rows:
            print(f"\n{name}:")
            for text in calls.texts:
                print("  ", text)


if __name__ == "__main__":
    main()
