"""The report endpoint computes once per campaign state, over a real server on loopback.

Concurrent clients share one computation; a finished trial makes the next request compute
afresh; memory stays within the cache's bytes and the concurrency limit.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest
from boundsweep.service.api.report_cache import ReportCache
from boundsweep.service.app import create_app
from boundsweep.service.settings import Settings
from boundsweep.studies.robustness._synthetic import build_synthetic_campaign
from optuna.trial import TrialState

from tests.service._live_api import live_server

API = "/api/v1/campaigns"


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('reports') / 'c.db'}"
    for name in ("one", "two", "three"):
        build_synthetic_campaign(
            url, name, final_lr_matters=False, seeds=[0, 1], epochs=2, arms=["adabound", "sgdm"]
        )
    return url


@contextlib.contextmanager
def _serve(url: str, **settings: Any) -> Iterator[tuple[str, ReportCache]]:
    """The real app on loopback; its base URL and its report cache (to count computations)."""
    app = create_app(Settings(database_url=url, dashboard=False, **settings))
    with live_server(app) as base:
        yield base, app.state.report_cache


def _get_all(base: str, paths: list[str]) -> list[httpx.Response]:
    """Every path requested at the same moment, one client thread each."""
    start = threading.Barrier(len(paths))

    def get(path: str) -> httpx.Response:
        with httpx.Client(base_url=base, timeout=120) as client:
            start.wait()
            return client.get(path)

    with ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(get, paths))


def test_concurrent_requests_share_one_computation(campaigns: str) -> None:
    with _serve(campaigns) as (base, cache):
        pages = _get_all(base, [f"{API}/one/report?format=html"] * 8)
        assert {r.status_code for r in pages} == {200}
        assert len({r.content for r in pages}) == 1, "every client gets the same page"
        assert pages[0].headers["content-type"] == "text/html; charset=utf-8"
        # One analysis (the JSON) and one page drawn from it, for eight clients.
        assert cache.computed == 2
        report = httpx.get(f"{base}{API}/one/report", timeout=60)
        assert report.json()["campaign"] == "one" and cache.computed == 2


def test_a_finished_trial_makes_the_next_report_fresh(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    build_synthetic_campaign(
        url, "live", final_lr_matters=False, seeds=[0, 1], epochs=2, arms=["adabound", "sgdm"]
    )
    with _serve(url) as (base, cache):
        before = httpx.get(f"{base}{API}/live/report", timeout=60).json()
        again = httpx.get(f"{base}{API}/live/report", timeout=60).json()
        assert again == before and cache.computed == 1
        study = optuna.load_study(study_name="live/sgdm", storage=url)
        done = study.get_trials(states=(TrialState.COMPLETE,))[0]
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": 0.5, "seed": 0},
                distributions=done.distributions,
                value=0.99,
                user_attrs={"seed": 0, "status": "completed"},
            )
        )
        after = httpx.get(f"{base}{API}/live/report", timeout=60).json()
        assert cache.computed == 2
        sgdm = next(a for a in after["arms"] if a["name"] == "sgdm")
        assert (
            sgdm["n_complete"]
            == next(a["n_complete"] for a in before["arms"] if a["name"] == "sgdm") + 1
        )
        assert sgdm["best_configuration"]["params"] == {"lr": 0.5}


def test_memory_is_bounded_by_bytes_and_by_concurrent_computations(campaigns: str) -> None:
    with _serve(campaigns) as (base, _):
        one = httpx.get(f"{base}{API}/one/report", timeout=60).content
    # Room for about one report: three campaigns asked at once, then each again.
    limits = {"report_cache_bytes": len(one) * 3 // 2, "report_concurrency": 1}
    with _serve(campaigns, **limits) as (base, cache):
        names = ["one", "two", "three"]
        first = _get_all(base, [f"{API}/{name}/report" for name in names * 3])
        assert {r.status_code for r in first} == {200}
        assert [r.json()["campaign"] for r in first] == names * 3
        assert cache.peak_running == 1, "one computation at a time"
        # Room for one report: the others were dropped (and computed again when asked).
        assert 0 < cache.size <= cache.max_bytes and cache.computed >= 3
        for name in names:  # the evicted ones are computed again, and still right
            assert httpx.get(f"{base}{API}/{name}/report", timeout=60).json()["campaign"] == name
        assert cache.size <= cache.max_bytes and cache.computed > 3


def test_an_unknown_or_studyless_campaign_is_404(campaigns: str) -> None:
    with _serve(campaigns) as (base, _):
        missing = httpx.get(f"{base}{API}/nope/report", timeout=60)
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_waiters_get_the_computations_error_and_nothing_is_kept() -> None:
    cache = ReportCache(max_bytes=1_000, max_concurrent=1)
    started, release = threading.Event(), threading.Event()
    calls = []

    def failing() -> bytes:
        calls.append(1)
        started.set()
        release.wait(10)
        raise LookupError("gone")

    def ask() -> BaseException | bytes:
        try:
            return cache.get("k", failing)
        except LookupError as error:
            return error

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(ask)
        assert started.wait(10)
        others = [pool.submit(ask) for _ in range(3)]
        release.set()
        results = [f.result(10) for f in [first, *others]]
    assert all(isinstance(r, LookupError) for r in results) and calls == [1]
    assert cache.get("k", lambda: b"x" * 10) == b"x" * 10 and cache.size == 10
    assert cache.get("big", lambda: b"y" * 2_000) == b"y" * 2_000
    assert cache.size == 10, "a report over the limit is served, not kept"
