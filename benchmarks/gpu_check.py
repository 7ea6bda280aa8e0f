"""``make gpu-check``: the CUDA path in one call, one table, a few minutes on one GPU.

What it checks and measures, each as rows of one table:

* equality: every implementation of AdaBound, AMSBound and AdaBoundW against the reference
  (``single_tensor``) on the device, float32 and float64, 60 steps with weight decay, a StepLR
  schedule, a channels_last conv weight and clipping at both bounds;
* optimizer step: AdaBound and AMSBound against ``torch.optim.Adam(fused=True)`` on the
  parameters of the paper's ResNet-34 and MLP (``bench_optimizers``, interleaved rounds);
* tasks: training steps per second of every paper task on files in the datasets' real formats
  written here, as the tasks train (bf16 autocast, channels_last for the CNNs) and the same
  model in plain float32 eager, with the peak GPU memory of each;
* workers: ``boundsweep worker --gpus ...`` with two processes on a tiny campaign, exact
  (every planned trial COMPLETE exactly once).

The full log, the table and a JSON of every figure go under the folder it names (default
``gpu-check-<UTC time>/``). Without CUDA it says so in one line and exits 2; ``--device cpu``
is a dry run of every part at toy sizes (the suite runs it, so the script cannot rot).
Exit status 1 if any row failed.

    python benchmarks/gpu_check.py [--device cuda|cpu] [--out DIR] [--tasks a,b]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from bench_optimizers import mlp_shapes, resnet34_shapes, time_interleaved
from boundsweep.optimizers import AdaBound, AdaBoundW, AMSBound, build_optimizer, current_bounds
from boundsweep.optimizers._functional import _pick
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
PAPER_TASKS = (
    "cifar10_resnet34",
    "cifar10_densenet121",
    "ptb_lstm1",
    "ptb_lstm2",
    "ptb_lstm3",
    "mnist_mlp",
)
VARIANTS: dict[str, tuple[type, dict[str, float]]] = {
    "adabound": (AdaBound, {"weight_decay": 5e-4}),
    "amsbound": (AMSBound, {"weight_decay": 5e-4}),
    "adaboundw": (AdaBoundW, {"weight_decay": 1e-2}),
}
#: The goal of issue 14: the default AdaBound step at most this many Adam(fused=True) steps.
STEP_GOAL = 1.3


@dataclass(frozen=True)
class Sizes:
    """How big each part runs: the real check on CUDA, toy sizes for the CPU dry run."""

    width: int  # the equality model's Linear(width, width)
    equality_steps: int
    repeats: int  # interleaved optimizer-step rounds
    warmup_steps: int
    task_steps: int
    ptb_vocabulary: int
    worker_trials: int
    gamma: float  # the bounds' speed: both must clip within equality_steps
    step_models: tuple[str, ...]  # parameter sets the optimizer step is timed on


CUDA_SIZES = Sizes(300, 60, 50, 3, 20, 10_000, 4, 0.1, ("resnet34", "mlp"))
CPU_SIZES = Sizes(20, 6, 2, 1, 1, 50, 2, 0.9, ("mlp",))


@dataclass
class Row:
    section: str
    what: str
    result: str
    ok: bool | None  # None: a figure with no pass/fail


class Log:
    """Prints and keeps every line, so the folder holds the whole run."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("w")

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- equality --------------------------------------------------------------------------------


def _equality_run(
    cls: type, extra: dict[str, float], impl: str, dtype: torch.dtype, sizes: Sizes, device
) -> tuple[list[torch.Tensor], dict[str, int], str]:
    """Train a small MLP and a channels_last conv with one implementation; return the final
    weights, the elements clipped at each bound (raw step outside it) and what auto picked."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    w = sizes.width
    mlp = torch.nn.Sequential(torch.nn.Linear(w, w), torch.nn.Tanh(), torch.nn.Linear(w, 1))
    conv = torch.nn.Conv2d(3, 8, 3)
    mlp, conv = mlp.to(device, dtype), conv.to(device, dtype)
    conv = conv.to(memory_format=torch.channels_last)
    params = [*mlp.parameters(), *conv.parameters()]
    optimizer = cls(params, lr=0.01, final_lr=0.1, gamma=sizes.gamma, **extra, impl=impl)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=20, gamma=0.3)
    clipped = {"lower": 0, "upper": 0}

    def count(opt: Any, *_: Any) -> None:
        group = opt.param_groups[0]
        lower, upper = current_bounds(opt)
        beta1, beta2 = group["betas"]
        for p in group["params"]:
            state = opt.state[p]
            t = state["step"]
            v = state.get("max_exp_avg_sq", state["exp_avg_sq"])
            raw = group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t) / (v.sqrt() + 1e-8)
            clipped["lower"] += int((raw < lower).sum())
            clipped["upper"] += int((raw > upper).sum())

    if impl == "single_tensor":
        optimizer.register_step_post_hook(count)
    for _ in range(sizes.equality_steps):
        x = torch.randn(32, w, generator=generator, dtype=dtype).to(device)
        y = torch.randn(32, 1, generator=generator, dtype=dtype).to(device)
        image = torch.randn(2, 3, 6, 6, generator=generator, dtype=dtype).to(device)
        optimizer.zero_grad()
        image = image.contiguous(memory_format=torch.channels_last)
        (F.mse_loss(mlp(x), y) + conv(image).square().mean()).backward()
        optimizer.step()
        scheduler.step()
    picked = _pick("auto", [params, [p.grad for p in params]])
    return [p.detach().clone() for p in params], clipped, picked


def check_equality(device: torch.device, sizes: Sizes, log: Log) -> Iterator[Row]:
    # On CPU "triton" is the interpreter: too slow for float64 at 60 steps, fine at toy size.
    impls = ["foreach", "fused", "triton", "auto"]
    for variant, (cls, extra) in VARIANTS.items():
        for dtype, tolerance in ((torch.float32, (1e-4, 1e-5)), (torch.float64, (1e-12, 1e-12))):
            reference, clipped, picked = _equality_run(
                cls, extra, "single_tensor", dtype, sizes, device
            )
            both = clipped["lower"] > 0 and clipped["upper"] > 0
            for impl in impls:
                got, _, _ = _equality_run(cls, extra, impl, dtype, sizes, device)
                flat_got = torch.cat([g.flatten() for g in got])
                flat_want = torch.cat([r.flatten() for r in reference])
                error = (flat_got - flat_want).abs()
                large = flat_want.abs() > 1e-3
                rel = (error[large] / flat_want.abs()[large]).max().item() if large.any() else 0.0
                rtol, atol = tolerance
                ok = bool(torch.allclose(flat_got, flat_want, rtol=rtol, atol=atol)) and both
                name = f"{impl} (= {picked})" if impl == "auto" else impl
                yield Row(
                    "equality",
                    f"{variant} {str(dtype)[6:]} {name} vs single_tensor",
                    f"max abs {error.max().item():.2g}, rel {rel:.2g}; clipped "
                    f"{clipped['lower']} low / {clipped['upper']} high",
                    ok,
                )
        log(f"equality: {variant} done")


# --- optimizer step --------------------------------------------------------------------------


def check_step_time(device: torch.device, sizes: Sizes, log: Log) -> Iterator[Row]:
    kernel = "triton" if device.type == "cuda" else "fused"
    makers: dict[str, Callable[[list[torch.nn.Parameter]], Any]] = {
        "Adam(fused=True)": lambda p: torch.optim.Adam(p, fused=True),
        "Adam(foreach=True)": lambda p: torch.optim.Adam(p, foreach=True),
        "AdaBound(auto)": lambda p: AdaBound(p, impl="auto"),
        f"AdaBound({kernel})": lambda p: AdaBound(p, impl=kernel),
        "AdaBound(foreach)": lambda p: AdaBound(p, impl="foreach"),
        "AMSBound(auto)": lambda p: AMSBound(p, impl="auto"),
        "AMSBound(foreach)": lambda p: AMSBound(p, impl="foreach"),
    }
    shapes_of = {"resnet34": resnet34_shapes, "mlp": mlp_shapes}
    for model in sizes.step_models:
        results = time_interleaved(makers, shapes_of[model](), device.type, sizes.repeats)
        for name, (first, median, to_fused, _) in results.items():
            if name == "Adam(fused=True)":
                continue
            goal = name == "AdaBound(auto)" and device.type == "cuda"
            yield Row(
                "optimizer step",
                f"{model}: {name}",
                f"{median * 1e3:.3f} ms = {to_fused:.2f}x Adam(fused) "
                f"({results['Adam(fused=True)'][1] * 1e3:.3f} ms); first step {first * 1e3:.0f} ms",
                (to_fused <= STEP_GOAL) if goal else None,
            )
        log(f"optimizer step: {model} done")


# --- tasks -----------------------------------------------------------------------------------


def write_task_data(root: Path, sizes: Sizes) -> Path:
    """Enough images and tokens for every timed step to be a full batch of one epoch."""
    from boundsweep.studies.tasks import write_random_datasets

    steps = sizes.warmup_steps + sizes.task_steps + 1
    images = 128 * steps
    # PTB: 20 streams x 70 tokens a step, 9 tokens a sentence (8 words and the end mark).
    sentences = 20 * 70 * steps // 9 + 20
    return write_random_datasets(
        root,
        mnist=(images, 256),
        cifar=(images, 256),
        ptb_sentences=(sentences, 60, 60),
        ptb_vocabulary=sizes.ptb_vocabulary,
    )


def _fp32_eager_steps(spec: Any, model: Any, opt: Any, data: Any, generator: Any, limit: int):
    """The same model and data path with no autocast and the default memory format."""
    from boundsweep.studies._training._classification import training_batches
    from boundsweep.studies._training._language import _windows, batchify
    from boundsweep.studies._training._steps import optimizer_step

    model.train()
    losses = []
    if spec.bptt is not None:
        state = None
        for step, (inputs, targets) in enumerate(
            _windows(batchify(data.train, spec.batch_size), spec.bptt)
        ):
            if step >= limit:
                break
            state = None if state is None else [(h.detach(), c.detach()) for h, c in state]
            logits, state = model(inputs, state)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            optimizer_step(loss, model, opt, spec.grad_clip)
            losses.append(loss.detach())
    else:
        for step, (x, y) in enumerate(training_batches(spec, data, generator)):
            if step >= limit:
                break
            loss = F.cross_entropy(model(x), y)
            optimizer_step(loss, model, opt, spec.grad_clip)
            losses.append(loss.detach())
    return bool(torch.isfinite(torch.stack(losses)).all())


def _task_steps(spec: Any, data: Any, device: torch.device, mixed: bool, sizes: Sizes):
    """(steps per second, peak MiB, finite) of one task in one mode."""
    from boundsweep.studies._training._classification import train_classifier_epoch
    from boundsweep.studies._training._hparams import resolve_hparams
    from boundsweep.studies._training._language import batchify, train_language_epoch
    from boundsweep.studies._training._loop import seed_everything

    generator = seed_everything(0, device)
    channels_last = mixed and spec.channels_last and device.type == "cuda"
    model = spec.build_model(data).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer("adabound", model.parameters(), resolve_hparams(spec, "adabound", {}))

    def run(limit: int) -> bool:
        if not mixed:
            return _fp32_eager_steps(spec, model, opt, data, generator, limit)
        if spec.bptt is not None:
            outcome = train_language_epoch(
                spec, model, opt, batchify(data.train, spec.batch_size), limit
            )
        else:
            outcome = train_classifier_epoch(
                spec, model, opt, data, generator, limit, channels_last
            )
        return not outcome.diverged and outcome.steps == limit

    run(sizes.warmup_steps)  # cuDNN/Triton first-use costs, the optimizer state
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    finite = run(sizes.task_steps)
    _sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else math.nan
    return sizes.task_steps / seconds, peak, finite


def check_tasks(
    device: torch.device, sizes: Sizes, data_dir: Path, tasks: list[str], log: Log
) -> Iterator[Row]:
    from boundsweep.studies.tasks import trainable

    for name in tasks:
        spec = trainable(name)
        try:
            data = spec.load_data(data_dir).to(device)
            mixed = _task_steps(spec, data, device, True, sizes)
            plain = _task_steps(spec, data, device, False, sizes)
        except Exception:
            log(traceback.format_exc())
            yield Row("tasks", name, "raised (see the log)", False)
            continue
        if device.type == "cuda":
            how = "bf16" + (" + channels_last" if spec.channels_last else "")
        else:
            how = "as trained (no autocast on CPU)"
        peaks = "n/a" if math.isnan(mixed[1]) else f"{mixed[1]:.0f} / {plain[1]:.0f} MiB"
        yield Row(
            "tasks",
            name,
            f"{mixed[0]:.1f} steps/s {how} vs {plain[0]:.1f} fp32 eager "
            f"({mixed[0] / plain[0]:.2f}x); peak {peaks}",
            mixed[2] and plain[2],
        )
        log(f"tasks: {name} done")


# --- workers ---------------------------------------------------------------------------------


def check_workers(
    device: torch.device, sizes: Sizes, data_dir: Path, out: Path, log: Log
) -> Iterator[Row]:
    import optuna
    from boundsweep.studies.campaign import CampaignSpec
    from boundsweep.studies.storage import campaign_progress, create_campaign, open_storage
    from optuna.trial import TrialState

    database = out / "worker-smoke.db"
    database.unlink(missing_ok=True)  # a rerun into the same folder starts from scratch
    url = f"sqlite:///{database}"
    spec = CampaignSpec.model_validate(
        {
            "name": "gpu-check",
            "task": "mnist_mlp",
            "seeds": [0],
            "budget": {"epochs": 1, "max_steps": 5},
            "arms": [
                {
                    "optimizer": "adabound",
                    "space": {
                        "final_lr": {"grid": [0.01 * 2**i for i in range(sizes.worker_trials)]}
                    },
                }
            ],
        }
    )
    storage = open_storage(url)
    create_campaign(storage, spec)
    command = [str(Path(sys.executable).parent / "boundsweep"), "worker", "--storage", url]
    command += ["--until-idle", "--poll-interval", "0.5", "--data-dir", str(data_dir)]
    if device.type == "cuda":
        # Two processes: one per GPU where there are two, else two on the one GPU.
        gpus = "all" if torch.cuda.device_count() >= 2 else "0,0"
        commands = [[*command, "--gpus", gpus]]
        how = f"--gpus {gpus}"
    else:
        commands = [[*command, "--device", "cpu"]] * 2
        how = "two --device cpu processes"
    with (out / "worker.log").open("w") as worker_log:
        processes = [
            subprocess.Popen(c, stdout=worker_log, stderr=subprocess.STDOUT, cwd=out)
            for c in commands
        ]
        try:
            codes = [p.wait(timeout=240) for p in processes]
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            codes = ["timeout"]
    trials = optuna.load_study(study_name="gpu-check/adabound", storage=storage).get_trials()
    states = Counter(t.state.name for t in trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    grid = sorted(t.params["final_lr"] for t in complete)
    planned = sorted(0.01 * 2**i for i in range(sizes.worker_trials))
    processes_seen = Counter(t.user_attrs.get("worker") for t in complete)
    devices = Counter(t.user_attrs.get("device") for t in complete)
    done = all(row.done and row.fail == 0 for row in campaign_progress(storage, "gpu-check"))
    ok = codes == [0] * len(codes) and grid == planned and len(trials) == len(planned) and done
    log(f"workers: exit codes {codes}, states {dict(states)}, devices {dict(devices)}")
    yield Row(
        "workers",
        f"boundsweep worker {how}",
        f"{len(complete)}/{len(planned)} trials COMPLETE once each ({dict(states)}), by "
        f"{len(processes_seen)} processes on {', '.join(map(str, devices))}; exit {codes}",
        ok,
    )


# --- the run ---------------------------------------------------------------------------------


def _table(rows: list[Row]) -> list[str]:
    width = max(len(r.what) for r in rows)
    mark = {True: "ok", False: "FAIL", None: ""}
    lines = [f"{'section':<15} {'what':<{width}}  {'':<4}  result"]
    lines += [f"{r.section:<15} {r.what:<{width}}  {mark[r.ok]:<4}  {r.result}" for r in rows]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", type=Path, default=None, help="folder for the log (created)")
    parser.add_argument("--tasks", default=",".join(PAPER_TASKS), help="comma-separated")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "gpu-check: no CUDA device here (torch.cuda.is_available() is False); nothing "
            "measured (--device cpu is the dry run)",
            file=sys.stderr,
        )
        return 2
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = sorted(set(tasks) - set(PAPER_TASKS))
    if unknown:
        parser.error(f"--tasks: unknown {', '.join(unknown)}; valid: {', '.join(PAPER_TASKS)}")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = (args.out or Path(f"gpu-check-{stamp}")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "log.txt")
    device = torch.device(args.device, 0) if args.device == "cuda" else torch.device("cpu")
    sizes = CUDA_SIZES if device.type == "cuda" else CPU_SIZES
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not importable"
    header = (
        f"gpu-check {stamp} on {name}: torch {torch.__version__}, triton {triton_version}; "
        f"log in {out}"
    )
    log(header)
    started = time.perf_counter()
    data_dir = write_task_data(out / "data", sizes)
    rows: list[Row] = []
    parts: list[tuple[str, Callable[[], Iterator[Row]]]] = [
        ("equality", lambda: check_equality(device, sizes, log)),
        ("optimizer step", lambda: check_step_time(device, sizes, log)),
        ("tasks", lambda: check_tasks(device, sizes, data_dir, tasks, log)),
        ("workers", lambda: check_workers(device, sizes, data_dir, out, log)),
    ]
    for section, part in parts:
        part_started = time.perf_counter()
        try:
            for row in part():
                rows.append(row)
                log(f"  {row.section}: {row.what}: {row.result}")
        except Exception:
            log(traceback.format_exc())
            rows.append(Row(section, "(the part itself)", "raised (see the log)", False))
        log(f"{section}: {time.perf_counter() - part_started:.1f} s")
    table = [header, *_table(rows), f"{time.perf_counter() - started:.0f} s in all"]
    log()
    for line in table:
        log(line)
    (out / "table.txt").write_text("\n".join(table) + "\n")
    (out / "results.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 1 if any(r.ok is False for r in rows) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
