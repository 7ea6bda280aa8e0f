"""`nightly_trend`: how each arm's best and median move across a schedule's dated campaigns."""

from __future__ import annotations

import re

import numpy as np
from boundsweep.studies.robustness._campaign_data import load_campaign, open_storage, read_arms
from boundsweep.studies.robustness._spread import best_configuration, configurations
from boundsweep.studies.storage import Storage

DATE = re.compile(r"-(\d{8})$")
WINDOW = 7
MIN_HISTORY = 3
BAND_SDS = 2.0


def _band(history: list[float]) -> tuple[float, float] | None:
    """mean ± 2 sd of up to the last WINDOW earlier runs; None with fewer than MIN_HISTORY."""
    recent = history[-WINDOW:]
    if len(recent) < MIN_HISTORY:
        return None
    mean, sd = float(np.mean(recent)), float(np.std(recent, ddof=1))
    return mean - BAND_SDS * sd, mean + BAND_SDS * sd


def nightly_trend(storage: str | Storage, campaign_names: list[str]) -> dict:
    """Per arm, best and median (seed-averaged, validation metric) over the campaigns' dates.

    Campaigns are ordered by their `-YYYYMMDD` suffix (name order without one). The latest run
    is flagged when its value falls outside mean ± 2 sd of up to 7 runs before it (at least 3).

    Raises:
        ValueError: an empty ``campaign_names``.
        CampaignNotFoundError: a named campaign has no arm studies.
    """
    if not campaign_names:
        raise ValueError("Invalid campaign_names: give at least one campaign name")
    backend = open_storage(storage)

    def order(name: str) -> tuple[str, str]:
        m = DATE.search(name)
        return (m.group(1) if m else "", name)

    runs = sorted(campaign_names, key=order)
    every_arm = read_arms(backend)  # once, not once per campaign
    arms: dict[str, dict] = {}
    for name in runs:
        m = DATE.search(name)
        date = f"{m.group(1)[:4]}-{m.group(1)[4:6]}-{m.group(1)[6:]}" if m else None
        campaign = load_campaign(backend, name, arms=every_arm)
        for arm in campaign.arms:
            configs = configurations(arm)
            if not configs:
                continue
            means = [c.mean for c in configs]
            series = arms.setdefault(arm.name, {"arm": arm.name, "points": []})
            series["points"].append(
                {
                    "campaign": name,
                    "date": date,
                    "best": best_configuration(configs, arm.maximize).mean,
                    "median": float(np.median(means)),
                    "n_complete": len(arm.records),
                }
            )
    for series in arms.values():
        points = series["points"]
        for key in ("best", "median"):
            history = [p[key] for p in points[:-1]]
            band = _band(history)
            latest = points[-1][key]
            series[f"{key}_band"] = list(band) if band else None
            series[f"{key}_flagged"] = bool(band and not band[0] <= latest <= band[1])
    flagged = sorted(a for a, s in arms.items() if s["best_flagged"] or s["median_flagged"])
    return {
        "campaigns": runs,
        "rule": f"latest outside mean ± {BAND_SDS:g} sd of up to {WINDOW} earlier runs (needs {MIN_HISTORY})",
        "arms": list(arms.values()),
        "flagged": flagged,
    }
