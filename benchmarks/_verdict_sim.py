"""Simulated campaigns with a known answer, for measuring the verdicts' error rates.

A campaign is shaped like the width-5 ``paper-robustness`` preset: two arms under test
(``adabound``, ``amsbound``) over a 5 x 5 ``final_lr`` x ``gamma`` grid and three baselines
(``adam``, ``amsgrad``, ``sgdm``) over 5 learning rates, every configuration run with the same
seeds. Scores are in accuracy points, higher is better:

    score[seed, configuration] = truth[configuration] + shared[seed] + noise[seed, configuration]

``shared`` is one draw per seed index that moves every configuration of every arm alike (the
same seed gives the same data order and initialisation everywhere), ``noise`` is independent,
normal or heavy-tailed (Student t with 3 degrees of freedom, scaled to the same sd);
SGD-momentum's is twice as large (a real MNIST-1D campaign: median per-configuration seed sd
1.15-1.26 points, sgdm 2.96).

The truth is additive, ``peak - a * q(final_lr) - b * q(gamma)`` with ``q`` an asymmetric bowl
over the five grid values (0 at the best value, 1 at the worst), so the spread of every slice
over ``final_lr`` is exactly ``a`` wherever it is cut, and the true robustness ratio is
``a / min(baseline spreads)``. The baselines' lr curves have the same shape with spreads of
25-30 points (a sensitive task, as MNIST-1D) or 5-6 points (a low-sensitivity task).

The dynamics claims are set exactly at their non-inferiority margin: each arm under test's
best configuration is ``margin`` worse than SGD-momentum's best at the end and than Adam's best
at the early epoch; the early score is the final one less a per-arm offset, with noise
correlated with the final score's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from boundsweep.studies.robustness._spread import Configuration

GRID = [0, 1, 2, 3, 4]  # grid indices; the parameter values are 10 ** (index - 2) times a centre
BOWL = np.array([1.0, 0.3, 0.0, 0.15, 0.6])  # loss shape over the 5 grid values, max 1, min 0
CENTRES = {"final_lr": 0.1, "gamma": 1e-3, "lr": 1e-3}
UNDER_TEST = ("adabound", "amsbound")
BASELINES = ("adam", "amsgrad", "sgdm")
HYPERPARAMETERS = ("final_lr", "gamma")
SPREADS = {
    "sensitive": {"adam": 25.0, "amsgrad": 27.0, "sgdm": 30.0},
    "low-sensitivity": {"adam": 5.0, "amsgrad": 5.5, "sgdm": 6.0},
}
PEAK = 90.0
MARGIN = 0.5
SHARED_SD = 1.0
EARLY_OFFSET = {"adabound": 20.0, "amsbound": 20.0, "adam": 20.0, "amsgrad": 21.0, "sgdm": 30.0}
EARLY_CORRELATION = 0.5
NOISE_FACTOR = {"sgdm": 2.0}


def grid_value(name: str, index: int) -> float:
    """The parameter value at a grid index: half-decade steps around the paper's centre."""
    return float(CENTRES[name] * 10.0 ** ((index - 2) / 2))


@dataclass(frozen=True)
class Cell:
    """One setting of the simulation."""

    ratio: float
    seeds: int
    noise: float
    tails: str = "normal"  # "normal" or "t3"
    task: str = "sensitive"  # a key of SPREADS

    def label(self) -> str:
        return f"r={self.ratio:<4g} n={self.seeds} sd={self.noise:g} {self.tails:6s} {self.task}"


@dataclass
class SimulatedCampaign:
    """Plain data of one simulated campaign and its true answers."""

    final: dict[str, list[Configuration]]
    early: dict[str, list[Configuration]]
    ratio: float
    margin: float = MARGIN
    truths: dict[str, float] = field(default_factory=dict)


def _noise(
    rng: np.random.Generator, cell: Cell, shape: tuple[int, ...], factor: float
) -> np.ndarray:
    sd = cell.noise * factor
    if cell.tails == "t3":
        return sd * rng.standard_t(3, size=shape) / np.sqrt(3.0)
    return sd * rng.standard_normal(shape)


def _arm_truth(name: str, cell: Cell) -> tuple[list[dict[str, float]], np.ndarray]:
    """Every configuration's params and true final score."""
    spreads = SPREADS[cell.task]
    if name in spreads:
        params = [{"lr": grid_value("lr", i)} for i in GRID]
        return params, PEAK - spreads[name] * BOWL
    a = cell.ratio * min(spreads.values())
    params, truth = [], []
    for i in GRID:
        for j in GRID:
            params.append({"final_lr": grid_value("final_lr", i), "gamma": grid_value("gamma", j)})
            truth.append(PEAK - MARGIN - a * BOWL[i] - a * BOWL[j])
    return params, np.array(truth)


def simulate(cell: Cell, rng: np.random.Generator) -> SimulatedCampaign:
    """One campaign of ``cell``: every arm's configurations with per-seed final and early scores.

    The arms under test peak ``MARGIN`` below the baselines (all of which peak at ``PEAK``), so
    "final at least as good as sgdm's" sits exactly at its margin; the early offsets put the
    arms under test ``MARGIN`` below Adam at the early epoch too.
    """
    seeds = list(range(cell.seeds))
    shared = SHARED_SD * rng.standard_normal(cell.seeds)
    shared_early = SHARED_SD * rng.standard_normal(cell.seeds)
    final: dict[str, list[Configuration]] = {}
    early: dict[str, list[Configuration]] = {}
    for name in (*UNDER_TEST, *BASELINES):
        params, truth = _arm_truth(name, cell)
        shape = (cell.seeds, truth.size)
        factor = NOISE_FACTOR.get(name, 1.0)
        eps = _noise(rng, cell, shape, factor)
        fresh = _noise(rng, cell, shape, factor)
        scores = truth[None, :] + shared[:, None] + eps
        # early truth: the arms under test are MARGIN below adam's best early (as at the end)
        offset = EARLY_OFFSET[name]
        mixed = EARLY_CORRELATION * eps + np.sqrt(1 - EARLY_CORRELATION**2) * fresh
        early_scores = truth[None, :] - offset + shared_early[:, None] + mixed
        final[name] = [Configuration(p, seeds, scores[:, k].copy()) for k, p in enumerate(params)]
        early[name] = [
            Configuration(p, seeds, early_scores[:, k].copy()) for k, p in enumerate(params)
        ]
    return SimulatedCampaign(final=final, early=early, ratio=cell.ratio)


def cells() -> list[Cell]:
    """The benchmark's settings: the issue's goals each read one group of them."""
    out = []
    for seeds in (3, 5):
        for ratio in (0.0, 0.25, 0.5, 1.0):
            for noise in (1.0, 2.0):
                out.append(Cell(ratio, seeds, noise))
            out.append(Cell(ratio, seeds, 1.5, tails="t3"))
            out.append(Cell(ratio, seeds, 1.5, task="low-sensitivity"))
    return out


def judge(campaign: SimulatedCampaign) -> dict:
    """The report's verdicts on a simulated campaign, through the public plain-data API."""
    from boundsweep.studies.robustness import Metric, campaign_verdicts

    return campaign_verdicts(
        campaign.final,
        Metric(maximize=True, margin=campaign.margin, unit="points", name="accuracy", step=None),
        under_test=list(UNDER_TEST),
        baselines=list(BASELINES),
        defaults={arm: {h: CENTRES[h] for h in HYPERPARAMETERS} for arm in UNDER_TEST},
        early=campaign.early,
        early_epoch=3,
        early_reference="adam",
        final_reference="sgdm",
    )


@dataclass
class Tally:
    """Error rates of one cell over many simulated campaigns."""

    cell: Cell
    covered: list[bool] = field(default_factory=list)  # ratio interval holds the truth
    decisive: list[bool] = field(default_factory=list)  # robustness claim decided (family)
    decisive_alone: list[bool] = field(default_factory=list)  # decided at 95% alone
    supported: list[bool] = field(default_factory=list)  # robustness claim supported
    dynamics_supported: list[bool] = field(default_factory=list)  # at -margin: an error
    dynamics_supported_alone: list[bool] = field(default_factory=list)
    tuning_wrong: list[bool] = field(default_factory=list)  # true gain 0: "not supported"
    family_any: list[bool] = field(default_factory=list)  # report with a decisive claim
    reversed: list[bool] = field(default_factory=list)  # two nights decide opposite ways
    estimates: list[float] = field(default_factory=list)  # ratio point estimates

    def add(self, report: dict, previous: dict | None) -> None:
        truth = self.cell.ratio
        for v in report["verdicts"]:
            if "ratio" in v:
                lo, hi = v["ratio"]["ci"]
                self.covered.append(lo <= truth <= hi)
                self.estimates.append(v["ratio"]["value"])
            self.decisive.append(v["outcome"] != "inconclusive")
            self.decisive_alone.append(v.get("outcome_alone", v["outcome"]) != "inconclusive")
            self.supported.append(v["outcome"] == "supported")
        for d in report["dynamics"]:
            self.dynamics_supported.append(d["outcome"] == "supported")
            self.dynamics_supported_alone.append(d.get("outcome_alone") == "supported")
        for t in report["tuning"]:
            self.tuning_wrong.append(t["outcome"] == "not supported")
        claims = report["verdicts"] + report["dynamics"]
        self.family_any.append(any(c["outcome"] != "inconclusive" for c in claims))
        if previous is not None:
            pairs = zip(previous["verdicts"] + previous["dynamics"], claims, strict=True)
            for a, b in pairs:
                self.reversed.append({a["outcome"], b["outcome"]} == {"supported", "not supported"})

    @staticmethod
    def rate(values: list[bool]) -> float:
        return float(np.mean(values)) if values else float("nan")


def measure(cell: Cell, campaigns: int, seed: int = 0) -> Tally:
    """Simulate ``campaigns`` campaigns of ``cell`` and tally the verdicts' errors."""
    rng = np.random.default_rng([seed, int(cell.ratio * 100), cell.seeds, int(cell.noise * 10)])
    tally = Tally(cell)
    previous = None
    for k in range(campaigns):
        report = judge(simulate(cell, rng))
        tally.add(report, previous if k % 2 else None)
        previous = report
    return tally
