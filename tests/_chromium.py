"""The Chromium the browser tests drive, found in one place, and the step that provides it.

``make test`` runs ``python -m tests._chromium`` first. It finds a Chromium that Playwright can
launch: Debian's ``/usr/bin/chromium``, else the build ``playwright install chromium`` put in
Playwright's cache. With neither, it installs one (``apt-get install chromium`` as root, else
``playwright install chromium``), and if that fails too it stops ``make test`` with one line
naming what is missing and how to get it, so a missing browser is never a skip or a failure
deep inside the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Browser, Playwright, sync_playwright

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",  # root has no sandbox; the pages are our own
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOW_TO_GET_ONE = (
    "install Debian's chromium (`apt-get install chromium`, as root) "
    "or Playwright's (`.venv/bin/playwright install chromium`)"
)


def chromium_executable(playwright: Playwright) -> str | None:
    """The Chromium to drive: Debian's where installed, else Playwright's own build, else
    None (there is none)."""
    if DEBIAN_CHROMIUM.exists():
        return str(DEBIAN_CHROMIUM)
    bundled = Path(playwright.chromium.executable_path)
    return str(bundled) if bundled.exists() else None


def launch_chromium(playwright: Playwright) -> Browser:
    """A headless Chromium; a missing one fails with what to install, never a skip."""
    executable = chromium_executable(playwright)
    if executable is None:
        raise RuntimeError(f"no Chromium for the browser tests: {HOW_TO_GET_ONE}")
    return playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)


def _why_it_cannot_drive_one() -> str | None:
    """None when a Chromium launches and loads a page, else why not (one line)."""
    with sync_playwright() as playwright:
        executable = chromium_executable(playwright)
        if executable is None:
            return "no Chromium for the browser tests"
        try:
            browser = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
            try:
                browser.new_page().goto("about:blank")
            finally:
                browser.close()
        except Exception as exc:  # whatever stops it launching is the line we print
            return (
                f"the Chromium at {executable} does not start ({str(exc).strip().splitlines()[0]})"
            )
    return None


def _install() -> None:
    """Try the installs in order, quietly; whether they worked is checked afterwards."""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("make test: installing Debian's chromium (apt-get)", file=sys.stderr)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "update", "-qq"], env=env, **quiet).returncode == 0:
            subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, **quiet)
        if DEBIAN_CHROMIUM.exists():
            return
    print("make test: installing Playwright's chromium", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "playwright", "install", "chromium"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> int:
    if _why_it_cannot_drive_one() is None:
        return 0
    _install()
    reason = _why_it_cannot_drive_one()
    if reason is None:
        return 0
    print(f"make test: {reason}: {HOW_TO_GET_ONE}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
