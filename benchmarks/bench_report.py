"""Time the robustness report of a finished paper-robustness-sized campaign on mnist1d_mlp.

Builds a synthetic campaign in a fresh SQLite file (2 bounded arms over 5 final_lr x 4 gamma,
3 baselines over 7 learning rates, 5 seeds: 305 trials with 10-epoch curves), then times
`analyze_campaign` + `render_html` and, as the baseline in the same process, one plain
`study.get_trials` per arm study. Goal: report < 3 s.

    python benchmarks/bench_report.py [STORAGE_URL CAMPAIGN]

With a storage URL and a campaign name it also times that (real, finished) campaign.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
from boundsweep.studies.robustness import analyze_campaign, render_html  # noqa: E402
from boundsweep.studies.robustness._synthetic import build_synthetic_campaign  # noqa: E402
from boundsweep.studies.storage import arm_studies  # noqa: E402

REPEATS = 3


def _time(storage: optuna.storages.RDBStorage, campaign: str, label: str) -> None:
    names = [arm.study_name for arm in arm_studies(storage, campaign)]

    def read_trials() -> None:
        for name in names:
            optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)

    render_html(analyze_campaign(storage, campaign))  # first call pays imports (sklearn) once
    base, analyze, render = [], [], []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        read_trials()
        t1 = time.perf_counter()
        data = analyze_campaign(storage, campaign)
        t2 = time.perf_counter()
        page = render_html(data)
        t3 = time.perf_counter()
        base.append(t1 - t0)
        analyze.append(t2 - t1)
        render.append(t3 - t2)
    b, a, r = (statistics.median(x) for x in (base, analyze, render))
    n_trials = sum(arm["n_trials"] for arm in data["arms"])
    print(
        f"== {label}: {campaign}: {len(names)} arm studies, {n_trials} trials, html {len(page) / 1024:.0f} KiB"
    )
    print(f"baseline get_trials (all arms): {b * 1000:8.1f} ms")
    print(f"analyze_campaign:               {a * 1000:8.1f} ms")
    print(f"render_html:                    {r * 1000:8.1f} ms")
    print(f"report total:                   {(a + r) * 1000:8.1f} ms  (goal < 3000 ms)")
    print(f"ratio report / get_trials:      {(a + r) / b:8.1f}x")


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        build_synthetic_campaign(
            url, "paper-robustness-bench", final_lr_matters=False, seeds=[0, 1, 2, 3, 4], epochs=10
        )
        _time(optuna.storages.RDBStorage(url), "paper-robustness-bench", "synthetic (SQLite)")
    if len(sys.argv) == 3:
        _time(optuna.storages.RDBStorage(sys.argv[1]), sys.argv[2], "given campaign")


if __name__ == "__main__":
    main()
