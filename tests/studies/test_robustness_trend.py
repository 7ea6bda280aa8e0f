"""Nightly trend over a schedule's dated campaigns: a jump in the latest run is flagged."""

from __future__ import annotations

import pytest
from boundsweep.studies.robustness import CampaignNotFoundError, nightly_trend
from boundsweep.studies.robustness._synthetic import build_synthetic_campaign

ARMS = ["adam", "sgdm"]


def _nights(url: str, shifts: list[float]) -> list[str]:
    names = []
    for day, shift in enumerate(shifts, start=1):
        name = f"nightly-202611{day:02d}"
        build_synthetic_campaign(
            url, name, final_lr_matters=False, seeds=[0, 1], epochs=2, shift=shift, arms=ARMS
        )
        names.append(name)
    return names


def test_latest_drop_is_flagged_and_steady_nights_are_not(sqlite_url: str) -> None:
    # five steady nights (small jitter, in accuracy fraction) then one 3-point drop
    names = _nights(sqlite_url, [0.0, 0.001, -0.001, 0.0005, 0.0, -0.03])
    trend = nightly_trend(sqlite_url, list(reversed(names)))  # order comes from the dates
    assert trend["campaigns"] == names
    arms = {a["arm"]: a for a in trend["arms"]}
    assert set(arms) == set(ARMS)
    adam = arms["adam"]
    assert [p["date"] for p in adam["points"]][:2] == ["2026-11-01", "2026-11-02"]
    best = [p["best"] for p in adam["points"]]
    assert best[-1] == pytest.approx(best[0] - 3.0, abs=0.2)
    assert adam["best_flagged"] and adam["median_flagged"]
    low, high = adam["best_band"]
    assert not low <= best[-1] <= high
    assert trend["flagged"] == sorted(ARMS)

    steady = nightly_trend(sqlite_url, names[:-1])
    assert steady["flagged"] == []
    assert all(not a["best_flagged"] for a in steady["arms"])


def test_short_history_has_no_band(sqlite_url: str) -> None:
    names = _nights(sqlite_url, [0.0, -0.05])
    trend = nightly_trend(sqlite_url, names)
    assert all(a["best_band"] is None and not a["best_flagged"] for a in trend["arms"])


def test_bad_input(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="campaign_names"):
        nightly_trend(sqlite_url, [])
    with pytest.raises(CampaignNotFoundError):
        nightly_trend(sqlite_url, ["nightly-20260101"])
