"""No secret reaches a log: tokens sent in URLs, database passwords in messages.

The servers run as real processes (`boundsweep serve`, `boundsweep dashboard`) whose whole
output, uvicorn's access log included, is read back after real requests on loopback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from boundsweep.service.log_secrets import redact
from boundsweep.studies.robustness._synthetic import build_synthetic_campaign

SCRIPT = Path(sys.executable).parent / "boundsweep"
SECRETS = ["s3cret-token-1", "s3cret-key-2", "s3cret-pass-3", "s3cret-bearer-4"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> int:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def _served(argv: list[str], port: int, probe: str, requests: list[tuple[str, str]]) -> str:
    """Start the server, make ``requests`` (method, path), stop it; its whole output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNDSWEEP_")}
    env["BOUNDSWEEP_API_TOKEN"] = "the-real-write-token"
    process = subprocess.Popen(
        [SCRIPT, *argv, "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                _get(base + probe)
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer in 90 s"
                time.sleep(0.3)
        for method, path in requests:
            bearer = {"Authorization": f"Bearer {SECRETS[3]}"}
            assert _get(base + path, bearer, method) in (200, 401, 403, 404, 422), path
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    return output


def test_tokens_in_urls_never_reach_the_api_log(sqlite_url: str) -> None:
    build_synthetic_campaign(
        sqlite_url, "c", final_lr_matters=False, seeds=[0], epochs=2, arms=["adabound", "sgdm"]
    )
    output = _served(
        ["serve", "--storage", sqlite_url, "--log-level", "info"],
        _free_port(),
        "/healthz",
        [
            ("GET", f"/api/v1/campaigns?token={SECRETS[0]}&limit=5"),
            ("GET", f"/api/v1/campaigns/c/report?format=html&api_key={SECRETS[1]}"),
            ("POST", f"/api/v1/campaigns/c/cancel?password={SECRETS[2]}"),
            ("GET", f"/dashboard?access_token={SECRETS[0]}"),
            ("GET", f"/api/v1/campaigns/nope?Token={SECRETS[0]}"),
        ],
    )
    for secret in SECRETS:
        assert secret not in output, f"{secret} reached the log:\n{output}"
    # The request lines are still there, the secret's value masked.
    assert '"GET /api/v1/campaigns?token=***&limit=5 HTTP/1.1" 200' in output, output
    assert "/report?format=html&api_key=*** HTTP/1.1" in output
    assert "/cancel?password=*** HTTP/1.1" in output


def test_tokens_in_urls_never_reach_the_dashboard_log(sqlite_url: str) -> None:
    output = _served(
        ["dashboard", "--storage", sqlite_url],
        _free_port(),
        "/dashboard",
        [("GET", f"/dashboard?token={SECRETS[0]}"), ("GET", f"/api/studies?key={SECRETS[1]}")],
    )
    assert all(secret not in output for secret in SECRETS), output
    assert "/dashboard?token=*** HTTP/1.1" in output, output


@pytest.mark.parametrize("command", [["status", "nope"], ["report", "nope"], ["status"]])
def test_messages_never_show_the_database_password(postgres_url: str, command: list[str]) -> None:
    # The suite's server trusts loopback, so any password connects: the message is the point.
    url = sa.make_url(postgres_url).set(password=SECRETS[2]).render_as_string(hide_password=False)
    done = subprocess.run(
        [SCRIPT, *command, "--storage", url], capture_output=True, text=True, timeout=120
    )
    assert SECRETS[2] not in done.stdout + done.stderr
    assert ":***@" in done.stdout + done.stderr, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("GET /a?token=x&format=html", "GET /a?token=***&format=html"),
        ("/a?format=json&API_KEY=k1", "/a?format=json&API_KEY=***"),
        ("/a?client_secret=s;x=1", "/a?client_secret=***;x=1"),
        ("/a?access_token=a.b-c#top", "/a?access_token=***#top"),
        ("/a?passwd=p%40ss", "/a?passwd=***"),
        ("/a?format=html&limit=5", "/a?format=html&limit=5"),
        ("/token?x=1", "/token?x=1"),
    ],
)
def test_redact_masks_secret_named_query_values_only(line: str, shown: str) -> None:
    assert redact(line) == shown
