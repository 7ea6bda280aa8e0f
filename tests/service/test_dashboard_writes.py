"""No anonymous write through the dashboard, however it is served: real `boundsweep serve` and
`boundsweep dashboard` processes, with the environment the demo gives its API, demo mode
without a token, and `--allow-writes`."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from boundsweep.service.demo import _child_environment
from boundsweep.service.settings import DEMO_TOKEN

NEW_STUDY = {"study_name": "anonymous", "directions": ["minimize"]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(
    port: int, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers or {}
    )
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"me:{token}".encode()).decode()}


@contextlib.contextmanager
def _serving(args: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        [sys.executable, "-m", "boundsweep.service.cli", *args, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer in 90 s"
                time.sleep(0.3)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert "Traceback" not in output, output


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNDSWEEP_")}
    return {**env, **extra}


def _studies(port: int) -> list[str]:
    status, body = _request(port, "GET", "/api/studies")
    assert status == 200, body
    assert "study_summaries" in body, body
    return [study["study_name"] for study in body["study_summaries"]]


def test_the_demos_api_wants_its_token_for_dashboard_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'boundsweep.db'}"
    token = "the-demos-random-token"
    port = _free_port()
    with _serving(["serve"], _child_environment(url, token), port):
        for headers in ({}, {"Authorization": f"Bearer {DEMO_TOKEN}"}, _basic("guess")):
            status, body = _request(port, "POST", "/api/studies", NEW_STUDY, headers)
            assert status == 401, body
        assert _studies(port) == []
        status, _ = _request(port, "POST", "/api/studies", NEW_STUDY, _basic(token))
        assert status == 201
        assert _studies(port) == ["anonymous"]


def test_demo_mode_without_a_token_serves_a_read_only_dashboard(tmp_path: Path) -> None:
    port = _free_port()
    env = _clean_env(BOUNDSWEEP_DEMO="true", BOUNDSWEEP_DATABASE_URL=f"sqlite:///{tmp_path}/b.db")
    with _serving(["serve"], env, port):
        for headers in ({}, {"Authorization": f"Bearer {DEMO_TOKEN}"}):
            status, body = _request(port, "POST", "/api/studies", NEW_STUDY, headers)
            assert status == 403 and "read-only" in body["detail"], body
        assert _studies(port) == []


@pytest.mark.parametrize("allow_writes", [False, True], ids=["plain", "allow-writes"])
def test_boundsweep_dashboard_never_takes_an_anonymous_write(
    tmp_path: Path, allow_writes: bool
) -> None:
    port = _free_port()
    args = ["dashboard", "--storage", f"sqlite:///{tmp_path / 'b.db'}"]
    args += ["--allow-writes"] if allow_writes else []
    with _serving(args, _clean_env(), port) as process:
        status, body = _request(port, "POST", "/api/studies", NEW_STUDY)
        assert status == (401 if allow_writes else 403), body
        assert _studies(port) == []
        if allow_writes:
            first = process.stdout.readline()
            token = first.split("token ", 1)[1].split(":", 1)[0]
            status, _ = _request(port, "POST", "/api/studies", NEW_STUDY, _basic(token))
            assert status == 201
            assert _studies(port) == ["anonymous"]
