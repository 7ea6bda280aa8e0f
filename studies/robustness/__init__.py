"""Robustness analysis and report: does an optimizer's score survive its hyperparameters?

Tests the claim of Luo et al. 2019 that AdaBound / AMSBound are robust to ``final_lr`` and
``gamma``, against Adam, AMSGrad and SGD-momentum tuned over their learning rate (or any arms
a campaign names), with the campaign's own numbers, intervals that keep their coverage at 3-5
seeds, honest selection and family-wise control. Methods: docs/report.md.

The verdict functions work on plain data (``Configuration``: params, seeds, per-seed scores),
so numbers from any source can be judged: ``campaign_verdicts`` decides every claim of a
report together; ``robustness_verdict``, ``tuning_gain_verdict``, ``dynamics_verdict`` decide
one claim each and ``family_verdicts`` applies Holm to a list of them.

The analysis, its summary and the page (``render_html``, hand-written SVG) import no drawing
library. The PNG files (``write_pngs``) are matplotlib's, which loads on first use of that
name (PEP 562): only ``boundsweep report --png-dir`` pays for it.
"""

from __future__ import annotations

from boundsweep.optimizers._lazy import lazy_front
from boundsweep.studies.robustness._analysis import analyze_campaign
from boundsweep.studies.robustness._campaign_data import CampaignNotFoundError, campaign_state
from boundsweep.studies.robustness._claims import campaign_verdicts
from boundsweep.studies.robustness._dynamics import dynamics_verdict
from boundsweep.studies.robustness._evidence import MIN_SEEDS
from boundsweep.studies.robustness._family import FAMILY_ALPHA, family_verdicts
from boundsweep.studies.robustness._html import render_html
from boundsweep.studies.robustness._metric import Metric
from boundsweep.studies.robustness._spread import Configuration
from boundsweep.studies.robustness._summary import summary_lines
from boundsweep.studies.robustness._trend import nightly_trend
from boundsweep.studies.robustness._tuning import tuning_gain_verdict
from boundsweep.studies.robustness._verdict import RATIO_THRESHOLD, robustness_verdict

# matplotlib's half: each public name and the module that defines it.
_DRAWING_NAMES = {"write_pngs": "_drawing"}

__all__ = [
    "FAMILY_ALPHA",
    "MIN_SEEDS",
    "RATIO_THRESHOLD",
    "CampaignNotFoundError",
    "Configuration",
    "Metric",
    "analyze_campaign",
    "campaign_state",
    "campaign_verdicts",
    "dynamics_verdict",
    "family_verdicts",
    "nightly_trend",
    "render_html",
    "robustness_verdict",
    "summary_lines",
    "tuning_gain_verdict",
    "write_pngs",
]


__getattr__, __dir__ = lazy_front(__name__, _DRAWING_NAMES, __all__)
