"""Batched trials: trials per hour against one by one, the equivalence, and a real campaign.

Everything is measured in this one process, as ratios against one-by-one training measured
right beside it (timings on a shared machine are noisy; repeat and read ranges).

0. **Optimizer step.** ``BatchedOptimizer``'s step (its C kernel and its torch reference) for
   every optimizer over 27 stacked ``mnist_mlp`` models, against ``Adam(fused=True)`` stepping
   the very same tensors (the same bytes), round-robin.
1. **Training loop.** Trials per hour of ``train_batched`` for K = 1, 9, 27, 81 against
   ``train()`` one trial at a time (K = 1 one by one is the baseline), on ``mnist1d_mlp`` and
   ``digits_mlp`` at their default budgets and on the paper's ``mnist_mlp`` over MNIST-format
   idx files written here (random pixels; ``--mnist-train`` images, ``--mnist-epochs``
   epochs, since its default 100 epochs per trial do not fit a benchmark), on the CPU and,
   when one is present, on CUDA (the same run prints both; without one it says so).
   **Threads.** What one torch thread per trial (the worker's setting for batchable tasks)
   costs against torch's default threads, one by one and batched (K = 27).
2. **Equivalence.** For every optimizer, 9 configurations (3 lrs x 3 seeds) trained batched
   and one by one over the full default budget of ``mnist1d_mlp`` and ``digits_mlp``: the
   final validation accuracy's difference (mean over the 9 and the largest), and the largest
   per-epoch difference of the curves.
3. **Campaign.** The ``paper-robustness`` preset (``--width`` x ``--width`` grids, 3 seeds)
   on ``mnist1d_mlp`` and ``digits_mlp`` through the real worker and storage (SQLite files):
   ``--workers`` worker processes (the cores shared out as the demo does) one by one
   (``--batch-trials 1``), then batched (automatic): trials per hour over the campaign's span
   and the report's verdict lines side by side.

    python benchmarks/bench_batched.py [--ks 1,9,27,81] [--parts step,loop,threads,ceiling,equivalence,campaign]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import torch
from boundsweep.optimizers import REGISTRY, BatchedOptimizer
from boundsweep.studies.campaign import preset
from boundsweep.studies.robustness import analyze_campaign, summary_lines
from boundsweep.studies.storage import create_campaign, open_storage
from boundsweep.studies.tasks import Budget, trainable, write_mnist
from boundsweep.studies.training import TrainResult, train, train_batched

SMALL_TASKS = ("mnist1d_mlp", "digits_mlp")
THREADS = os.cpu_count() or 1


def write_data(root: Path, n_train: int, n_test: int) -> None:
    """MNIST's four idx files (random pixels at its real image size)."""
    rng = np.random.default_rng(0)
    write_mnist(
        root,
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )


def configurations(optimizer: str, k: int) -> list[tuple[dict[str, float], int]]:
    """``k`` configurations of one arm: a 3-value lr grid around the default, times seeds."""
    base = REGISTRY[optimizer].hyperparams["lr"].default
    lrs = [base / 3, base, base * 3]
    return [({"lr": lrs[i % 3]}, i // 3) for i in range(k)]


def step_section(device: str, models: int, repeats: int) -> None:
    """The batched step against one ``Adam(fused=True)`` step over the same bytes."""
    print(
        f"\n== optimizer step on {device}: {models} stacked mnist_mlp models "
        f"({models} x 203,530 params), median ms and ratio to Adam(fused=True) on the same tensors"
    )
    shapes = [(256, 784), (256,), (10, 256), (10,)]
    params = [torch.randn(models, *shape, device=device) for shape in shapes]
    grads = [torch.randn_like(p) for p in params]
    steppers: dict[str, object] = {}
    fused = [p.clone().requires_grad_() for p in params]
    adam = torch.optim.Adam(fused, lr=1e-3, fused=True)
    steppers["Adam(fused=True)"] = (fused, adam.step)
    for name in REGISTRY:
        for impl in ("kernel", "reference") if device == "cpu" else ("reference",):
            tensors = [p.clone().requires_grad_() for p in params]
            runs = configurations(name, models)
            batched = BatchedOptimizer(name, tensors, [h for h, _ in runs], impl=impl)
            steppers[f"{name} batched {impl}"] = (tensors, batched.step)
    times: dict[str, list[float]] = {label: [] for label in steppers}
    for tensors, stepper in steppers.values():  # state allocated before timing
        for t, g in zip(tensors, grads, strict=True):
            t.grad = g
        stepper()
    for _ in range(repeats):
        for label, (_, stepper) in steppers.items():  # round-robin: the same load for all
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(5):
                stepper()
            if device == "cuda":
                torch.cuda.synchronize()
            times[label].append((time.perf_counter() - start) / 5 * 1e3)
    base = statistics.median(times["Adam(fused=True)"])
    for label, values in times.items():
        median = statistics.median(values)
        print(f"  {label:32} {median:8.2f} ms  {median / base:5.2f}x")


def loop_section(
    device: str,
    ks: list[int],
    repeats: int,
    data_dir: Path,
    mnist_epochs: int,
    tasks: tuple[str, ...] = (*SMALL_TASKS, "mnist_mlp"),
) -> None:
    print(f"\n== training loop on {device}: trials per hour, ratio against one by one")
    budgets = {name: Budget() for name in SMALL_TASKS}
    budgets["mnist_mlp"] = Budget(epochs=mnist_epochs)
    budgets = {name: budget for name, budget in budgets.items() if name in tasks}
    print(f"{'task':12} {'K':>4} {'s/batch':>10} {'trials/h':>10} {'ratio (range)':>16}")
    for task, budget in budgets.items():
        runs = configurations("adabound", max(ks))
        # Warm: data loaded and moved, kernels built, before anything is timed.
        train(task, "adabound", *runs[0], Budget(epochs=1, max_steps=2), device, data_dir=data_dir)
        train_batched(task, "adabound", runs[:2], Budget(epochs=1, max_steps=2), device,
                      data_dir=data_dir)  # fmt: skip
        print_row = f"{task:12} {{k:>4}} {{seconds:10.2f}} {{rate:10.0f}} {{ratio:>16}}"
        for k in ks:
            alone_rates, rates, ratios = [], [], []
            for _ in range(repeats):
                # Each batch right after its own one-by-one baseline: the same minute's load.
                start = time.perf_counter()
                for hparams, seed in runs[:2]:
                    train(task, "adabound", hparams, seed, budget, device, data_dir=data_dir)
                alone_rates.append(2 / (time.perf_counter() - start) * 3600)
                start = time.perf_counter()
                train_batched(task, "adabound", runs[:k], budget, device, data_dir=data_dir)
                rates.append(k / (time.perf_counter() - start) * 3600)
                ratios.append(rates[-1] / alone_rates[-1])
            alone, rate = statistics.median(alone_rates), statistics.median(rates)
            if k == ks[0]:
                print(print_row.format(k="1*", seconds=3600 / alone, rate=alone, ratio="1 (base)"))
            spread = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
            print(print_row.format(k=k, seconds=k * 3600 / rate, rate=rate, ratio=spread))
    print("(1* = train() one trial at a time; K = train_batched with K trials at once; each")
    print(" ratio is against the one-by-one rate measured just before it)")


def threads_section(repeats: int, k: int) -> None:
    """What one torch thread per trial costs (the worker's setting for batchable tasks,
    ``workers._run.trial_threads``) against torch's default threads, one by one and batched,
    interleaved so that each pair sees the same minute's load."""
    print(
        f"\n== threads: a trial on 1 torch thread against {THREADS} (torch's default here), "
        f"one by one and batched (K = {k}); seconds per trial, median of {repeats}"
    )
    print(f"{'task':12} {'mode':11} {f'{THREADS} threads':>10} {'1 thread':>10} {'cost':>7}")
    for task in SMALL_TASKS:
        runs = configurations("adam", k)
        train(task, "adam", *runs[0], Budget(epochs=1, max_steps=2))  # data loaded, warm
        for mode in ("one by one", "batched"):
            times: dict[int, list[float]] = {THREADS: [], 1: []}
            for _ in range(repeats):
                for threads in (THREADS, 1):
                    torch.set_num_threads(threads)
                    start = time.perf_counter()
                    if mode == "one by one":
                        train(task, "adam", *runs[0], Budget())
                        trials = 1
                    else:
                        train_batched(task, "adam", runs, Budget())
                        trials = k
                    times[threads].append((time.perf_counter() - start) / trials)
            torch.set_num_threads(THREADS)
            many, one = statistics.median(times[THREADS]), statistics.median(times[1])
            print(f"{task:12} {mode:11} {many:10.3f} {one:10.3f} {one / many:6.2f}x")


def _identical(batched: TrainResult, alone: TrainResult) -> bool:
    """The same run bit for bit: every weight, every epoch's metrics (a diverged run: the
    same step)."""
    if "diverged" in (batched.status, alone.status):
        return (batched.status, batched.steps) == (alone.status, alone.steps)
    assert batched.parameters is not None and alone.parameters is not None
    return all(
        torch.equal(batched.parameters[name], value) for name, value in alone.parameters.items()
    ) and [(e.train_loss, e.val_metric, e.test_metric) for e in batched.epochs] == [
        (e.train_loss, e.val_metric, e.test_metric) for e in alone.epochs
    ]


def ceiling_section(models: int, repeats: int) -> None:
    """How far batching can go here: one model's whole step against a batched model's matrix
    products alone.

    A one-by-one step is the forward and backward pass, the optimizer and the loop's Python;
    a batched step still has to do every model's arithmetic. So the batched loop can be at
    most (one-by-one seconds per step) / (batched forward + backward seconds per model and
    step) times faster, one thread each, whatever else is made free.
    """
    from boundsweep.studies._training._batched_mlp import StackedMLP
    from torch.func import stack_module_state

    print(
        f"\n== ceiling on cpu, one torch thread: one-by-one step vs {models} stacked models' "
        "forward + backward alone"
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for task in SMALL_TASKS:
            spec = trainable(task)
            data = spec.load_data(None)
            train(task, "adam", {}, 0, Budget(epochs=1))  # warm
            start = time.perf_counter()
            result = train(task, "adam", {}, 0)
            one_step = (time.perf_counter() - start) / result.steps
            stacked = [spec.build_model(data) for _ in range(models)]
            params, _ = stack_module_state(stacked)
            mlp = StackedMLP.of(stacked[0], params)
            assert mlp is not None
            x = torch.randn(models, spec.batch_size, data.train_x.shape[1])
            y = torch.randint(0, data.num_classes, (models, spec.batch_size))
            mlp.loss_and_grads(x, y)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(50):
                    mlp.loss_and_grads(x, y)
                times.append((time.perf_counter() - start) / 50 / models)
            per_model = statistics.median(times)
            widths = [m.in_features for m in stacked[0] if isinstance(m, torch.nn.Linear)]
            widths.append(data.num_classes)
            flops = (
                6 * spec.batch_size * sum(a * b for a, b in zip(widths, widths[1:], strict=False))
            )
            print(
                f"{task:12} one by one {one_step * 1e3:6.3f} ms/step "
                f"({flops / one_step / 1e9:5.1f} GFLOP/s of its products); batched products "
                f"{per_model * 1e3:6.3f} ms/model-step ({flops / per_model / 1e9:5.1f} GFLOP/s): "
                f"at most {one_step / per_model:4.1f}x"
            )
    finally:
        torch.set_num_threads(threads)


def equivalence_section(device: str) -> None:
    print(
        f"\n== equivalence on {device}, full default budget, 9 configurations per optimizer, "
        "one torch thread (as a CPU worker runs)"
    )
    print(
        f"{'task':12} {'optimizer':10} {'mean Δ final':>13} {'max |Δ| final':>14} "
        f"{'max |Δ| curve':>14} {'diverged b/a':>13} {'identical':>10}  "
        "(accuracy points, batched - one by one)"
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for task in SMALL_TASKS:
            for optimizer in REGISTRY:
                _equivalence_row(task, optimizer, device)
    finally:
        torch.set_num_threads(threads)


def _equivalence_row(task: str, optimizer: str, device: str) -> None:
    runs = configurations(optimizer, 9)
    batched = train_batched(task, optimizer, runs, device=device, keep_parameters=True)
    alone = [train(task, optimizer, h, s, device=device, keep_parameters=True) for h, s in runs]
    deltas = [100 * (b.val_metric - a.val_metric) for b, a in zip(batched, alone, strict=True)]
    curve = max(
        (
            abs(100 * (rb.val_metric - ra.val_metric))
            for b, a in zip(batched, alone, strict=True)
            for rb, ra in zip(b.epochs, a.epochs, strict=False)
        ),
        default=0.0,
    )
    diverged = (
        f"{sum(r.status == 'diverged' for r in batched)}/"
        f"{sum(r.status == 'diverged' for r in alone)}"
    )
    same = sum(_identical(b, a) for b, a in zip(batched, alone, strict=True))
    print(
        f"{task:12} {optimizer:10} {statistics.mean(deltas):+13.2f} "
        f"{max(abs(d) for d in deltas):14.2f} {curve:14.2f} {diverged:>13} "
        f"{f'{same}/{len(runs)}':>10}"
    )


def _verdicts(storage, name: str) -> list[str]:
    report = analyze_campaign(storage, name)
    return [line for line in summary_lines(report) if " — " in line]


def _outcome(line: str) -> str:
    return line.rsplit(" — ", 1)[1].rstrip(".")


def _results(url: str) -> dict[tuple[str, tuple[tuple[str, object], ...]], tuple]:
    """Every completed trial's value and curve, by arm and grid point (seed included)."""
    results = {}
    for summary in optuna.get_all_study_summaries(url):
        study = optuna.load_study(study_name=summary.study_name, storage=url)
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
            key = (summary.study_name, tuple(sorted(t.params.items())))
            results[key] = (t.value, tuple(sorted(t.intermediate_values.items())))
    return results


def _run_workers(
    url: str, workers: int, batch_trials: int | None, default_threads: bool = False
) -> float:
    """``workers`` real worker processes until the queue is empty; the campaign's span (s).

    The span is first trial start to last trial completion, read back from the storage, so
    the processes' start-up (importing torch) is left out on both sides.
    """
    env = dict(os.environ)
    if not default_threads:  # else torch's own choice, as a worker started by hand has
        env["OMP_NUM_THREADS"] = str(max(1, THREADS // workers))
    command = [sys.executable, "-m", "boundsweep.workers", "--storage", url, "--until-idle"]
    command += ["--poll-interval", "0.2"]
    if batch_trials is not None:
        command += ["--batch-trials", str(batch_trials)]
    logs = [Path(url.removeprefix("sqlite:///") + f".worker{i}.log") for i in range(workers)]
    processes = []
    for log in logs:
        with log.open("w") as out:  # a file, not a pipe: a full pipe would stall the worker
            processes.append(
                subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
            )
    for process, log in zip(processes, logs, strict=True):
        if process.wait() != 0:
            raise SystemExit(f"worker failed: {log.read_text()[-2000:]}")
    trials = [
        t
        for study in optuna.get_all_study_summaries(url)
        for t in optuna.load_study(study_name=study.study_name, storage=url).trials
    ]
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    return (last - first).total_seconds()


def campaign_section(
    width: int,
    root: Path,
    repeats: int,
    workers: int,
    tasks: tuple[str, ...] = SMALL_TASKS,
    seeds: int = 3,
    epochs: int | None = None,
    default_threads: bool = False,
) -> None:
    threads = "torch's default" if default_threads else max(1, THREADS // workers)
    print(
        f"\n== campaign: paper-robustness width {width}, {seeds} seeds, {workers} worker "
        f"processes ({threads} torch threads each), real worker + SQLite storage"
    )
    for task in tasks:
        lines: dict[str, list[str]] = {}
        rates: dict[str, list[float]] = {"one by one": [], "batched": []}
        results: dict[str, dict] = {}
        for repeat in range(repeats):
            for mode, batch_trials in (("one by one", 1), ("batched", None)):
                url = f"sqlite:///{root / f'{task}-{batch_trials or 0}-{repeat}.db'}"
                storage = open_storage(url)
                overrides: dict = {"seeds": list(range(seeds))}
                if epochs is not None:
                    overrides["budget"] = {"epochs": epochs}
                spec = preset(
                    "paper-robustness", grid_width=width, task=task, name="bench", **overrides
                )
                create_campaign(storage, spec)
                span = _run_workers(url, workers, batch_trials, default_threads)
                total = sum(arm.planned_trials(spec.seeds) for arm in spec.arms)
                rates[mode].append(total / span * 3600)
                lines[mode] = _verdicts(storage, "bench")
                results[mode] = _results(url)
        one, batched = rates["one by one"], rates["batched"]
        ratios = [b / a for b, a in zip(batched, one, strict=True)]
        print(
            f"{task}: {total} trials; one by one {statistics.median(one):.0f} trials/h, "
            f"batched {statistics.median(batched):.0f} trials/h: ratio "
            f"{statistics.median(ratios):.2f} (each repeat: "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + ")"
        )
        one_results, batched_results = results["one by one"], results["batched"]
        same_trials = sum(batched_results.get(key) == value for key, value in one_results.items())
        print(
            f"  trials (last repeat): {same_trials} of {len(one_results)} with the very same "
            "value and per-epoch curve in both runs"
        )
        pairs = list(zip(lines["one by one"], lines["batched"], strict=True))
        same = sum(_outcome(a) == _outcome(b) for a, b in pairs)
        print(f"  verdicts (last repeat): {same} of {len(pairs)} the same")
        for a, b in pairs:
            mark = "=" if _outcome(a) == _outcome(b) else "≠"
            print(f"  {mark} {a.split(':', 1)[0]}: {_outcome(a)} | batched: {_outcome(b)}")


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ks", default="1,9,27,81", help="batch sizes (default 1,9,27,81)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--mnist-train", type=int, default=12_000)
    parser.add_argument("--mnist-epochs", type=int, default=1)
    parser.add_argument("--width", type=int, default=3, help="campaign grid width (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="campaign worker processes")
    parser.add_argument("--campaign-tasks", default=",".join(SMALL_TASKS))
    parser.add_argument("--campaign-seeds", type=int, default=3, help="seeds per configuration")
    parser.add_argument("--campaign-epochs", type=int, default=None, help="default: the task's")
    parser.add_argument(
        "--default-threads",
        action="store_true",
        help="campaign workers keep torch's default threads (a worker started by hand) "
        "instead of cores / workers",
    )
    parser.add_argument("--loop-tasks", default=",".join((*SMALL_TASKS, "mnist_mlp")))
    parser.add_argument("--parts", default="step,loop,threads,ceiling,equivalence,campaign")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    parts = set(args.parts.split(","))
    from boundsweep.optimizers._batched import kernel_matches_torch
    from boundsweep.studies._training import _batched_loss

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()} (ATEN_CPU_CAPABILITY="
        f"{os.environ.get('ATEN_CPU_CAPABILITY', 'unset')}): batched optimizer "
        f"{'kernel' if kernel_matches_torch() else 'each model alone'}, loss "
        f"{'kernel' if _batched_loss.available() else 'torch kernels'}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_data(root, args.mnist_train, max(1000, args.mnist_train // 6))
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        if "cuda" not in devices:
            print("CUDA absent: CPU figures only")
        for device in devices:
            if "step" in parts:
                step_section(device, 27, 5 * args.repeats)
            if "loop" in parts:
                loop_tasks = tuple(args.loop_tasks.split(","))
                loop_section(device, ks, args.repeats, root, args.mnist_epochs, loop_tasks)
            if "threads" in parts and device == "cpu":
                threads_section(args.repeats, 27)
            if "ceiling" in parts and device == "cpu":
                ceiling_section(27, 5 * args.repeats)
            if "equivalence" in parts:
                equivalence_section(device)
        if "campaign" in parts:
            tasks = tuple(args.campaign_tasks.split(","))
            campaign_section(
                args.width, root, args.repeats, args.workers, tasks, args.campaign_seeds,
                args.campaign_epochs, args.default_threads,
            )  # fmt: skip


if __name__ == "__main__":
    main()
