"""Robustness analysis and report: does an optimizer's score survive its hyperparameters?

Tests the claim of Luo et al. 2019 that AdaBound / AMSBound are robust to ``final_lr`` and
``gamma``, against Adam, AMSGrad and SGD-momentum tuned over their learning rate, with the
campaign's own numbers and their seed-bootstrap uncertainty. Methods: docs/report.md.

The analysis and its summary import no drawing library. The page and the PNG files
(``render_html``, ``write_pngs``) are matplotlib's, which loads on first use of one of those
names (PEP 562): a report printed as text does not pay for it.
"""

from __future__ import annotations

from boundsweep.optimizers._lazy import lazy_front
from boundsweep.studies.robustness._analysis import analyze_campaign
from boundsweep.studies.robustness._campaign_data import CampaignNotFoundError
from boundsweep.studies.robustness._summary import summary_lines
from boundsweep.studies.robustness._trend import nightly_trend

# The drawing half: each public name and the module that defines it.
_DRAWING_NAMES = {"render_html": "_html", "write_pngs": "_drawing"}

__all__ = [
    "CampaignNotFoundError",
    "analyze_campaign",
    "nightly_trend",
    "render_html",
    "summary_lines",
    "write_pngs",
]


__getattr__, __dir__ = lazy_front(__name__, _DRAWING_NAMES, __all__)
