"""Robustness analysis and report: does an optimizer's score survive its hyperparameters?

Tests the claim of Luo et al. 2019 that AdaBound / AMSBound are robust to ``final_lr`` and
``gamma``, against Adam, AMSGrad and SGD-momentum tuned over their learning rate, with the
campaign's own numbers and their seed-bootstrap uncertainty. Methods: docs/report.md.
"""

from __future__ import annotations

from boundsweep.studies.robustness._analysis import analyze_campaign
from boundsweep.studies.robustness._campaign_data import CampaignNotFoundError
from boundsweep.studies.robustness._html import render_html
from boundsweep.studies.robustness._png import write_pngs
from boundsweep.studies.robustness._summary import summary_lines
from boundsweep.studies.robustness._trend import nightly_trend

__all__ = [
    "CampaignNotFoundError",
    "analyze_campaign",
    "nightly_trend",
    "render_html",
    "summary_lines",
    "write_pngs",
]
