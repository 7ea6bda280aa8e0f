"""Calibration of the verdicts on simulated campaigns with a known answer.

    python benchmarks/bench_verdicts.py [CAMPAIGNS_PER_CELL]   (default 300)

Each cell simulates campaigns shaped like the width-5 paper-robustness preset
(benchmarks/_verdict_sim.py: 2 arms under test over 5 x 5 final_lr x gamma, 3 baselines over
5 learning rates, a shared seed effect, seed noise 1-2 points or heavy-tailed, a sensitive
task with baseline spreads 25-30 points or a low-sensitivity one with 5-6) whose true
robustness ratio is 0, 0.25, 0.5 or 1, with both dynamics claims exactly at their margin and
the defaults at the best value (true tuning gain 0). It judges each through the public
``campaign_verdicts`` (Holm over the report's 12 claims) and prints, per cell:

- cover: share of ratio intervals (95%) that hold the true ratio;
- decisive / alone: robustness claims decided, with and without the family-wise control
  (at ratio 0.5 every decision is an error);
- supported: robustness claims supported (power at 0.25, an error at 0.5 and 1);
- dyn sup: dynamics claims "supported" although the truth is exactly -margin (an error);
- FW: reports with any decisive robustness or dynamics claim (at ratio 0.5: all 8 at their
  threshold, so any is an error);
- flip: claims two independent campaigns decide in opposite directions;
- est: median ratio estimate.

Goals (issue 20): cover >= 0.93 with 5 seeds and >= 0.90 with 3 (noise 1-2); decisive at
ratio 0.5 <= 5%; dyn sup <= 5%; FW at ratio 0.5 <= 10%; supported at 0.25 with 5 seeds >= 80%.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._verdict_sim import Tally, cells, measure  # noqa: E402

COLUMNS = "cover decisive alone supported dyn-sup FW flip est"


def _row(t: Tally) -> str:
    fw = f"{t.rate(t.family_any):6.3f}" if t.cell.ratio == 0.5 else "     -"
    est = f"{np.median(t.estimates):6.3f}" if t.estimates else "     -"
    return (
        f"{t.cell.label():40s} {t.rate(t.covered):6.3f} {t.rate(t.decisive):6.3f} "
        f"{t.rate(t.decisive_alone):6.3f} {t.rate(t.supported):6.3f} "
        f"{t.rate(t.dynamics_supported):6.3f} {fw} {t.rate(t.reversed):6.3f} {est}"
    )


def _goals(tallies: list[Tally]) -> list[str]:
    out = []

    def check(label: str, value: float, ok: bool) -> None:
        out.append(f"{'PASS' if ok else 'MISS'}  {label}: {value:.3f}")

    normal = [t for t in tallies if t.cell.tails == "normal" and t.cell.task == "sensitive"]
    for n, goal in ((5, 0.93), (3, 0.90)):
        worst = min(t.rate(t.covered) for t in normal if t.cell.seeds == n)
        check(f"coverage, {n} seeds, noise 1-2 (worst cell) >= {goal}", worst, worst >= goal)
    at = [t for t in tallies if t.cell.ratio == 0.5]
    worst = max(t.rate(t.decisive) for t in at)
    check("decisive at the threshold (worst cell) <= 0.05", worst, worst <= 0.05)
    worst = max(t.rate(t.dynamics_supported) for t in tallies)
    check("dynamics supported at -margin (worst cell) <= 0.05", worst, worst <= 0.05)
    worst = max(t.rate(t.family_any) for t in at)
    check("reports with a decisive claim, all at threshold (worst) <= 0.10", worst, worst <= 0.10)
    power = [t for t in normal if t.cell.ratio == 0.25 and t.cell.seeds == 5]
    worst = min(t.rate(t.supported) for t in power)
    check("power: ratio 0.25, 5 seeds, noise 1-2 (worst cell) >= 0.80", worst, worst >= 0.80)
    return out


def main(campaigns: int) -> None:
    print(f"{campaigns} campaigns per cell; columns: {COLUMNS}")
    started = time.perf_counter()
    tallies = []
    for cell in cells():
        tallies.append(measure(cell, campaigns))
        print(_row(tallies[-1]), flush=True)
    print("\n".join(_goals(tallies)))
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
