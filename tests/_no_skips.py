"""A skipped test fails the run: the suite skips nothing.

``make test`` sets up what the tests need (a PostgreSQL, a Chromium, the compose checks), so a
test that cannot run on a machine is a failure that says what to install, never a skip that a
green run hides. This plugin (loaded by ``tests/conftest.py``) turns any skip that slips in,
``pytest.skip``, ``skipif`` or ``importorskip``, into a failure carrying the skip's reason.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = (
            f"skipped ({reason}), and the suite skips nothing: make test sets up what the tests "
            "need, and a test that cannot run here fails with what to install"
        )
