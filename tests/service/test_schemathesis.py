"""Schemathesis over the live OpenAPI document: no generated request gets a 5xx."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service._live_api import TOKEN, api_client


def _schemathesis() -> str:
    found = Path(sys.executable).with_name("st")
    return str(found) if found.exists() else (shutil.which("st") or "st")


def test_no_generated_request_gets_a_server_error(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="boundsweep.service.api"),
        api_client(sqlite_url) as client,
    ):
        run = subprocess.run(
            [
                _schemathesis(),
                "run",
                f"{client.base_url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "8",
                "--max-time",
                "25",  # bounded: the whole suite stays within its few minutes
                "--seed",
                "20190501",
                "--request-timeout",
                "60",
                "--header",
                f"Authorization: Bearer {TOKEN}",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "passed" in run.stdout
    assert not [r for r in caplog.records if r.name == "boundsweep.service.api"], (
        "a request hit a 500"
    )
