"""Step time of AdaBound / AMSBound per implementation against torch's Adam, same process.

Prints, for the parameters of a CIFAR ResNet-34 (~21M) and a 784-1000-10 MLP, the median
time of one ``optimizer.step()`` and its ratio to ``torch.optim.Adam(fused=True)`` and
``Adam(foreach=True)`` measured in this process (round-robin, median of per-round ratios),
plus each optimizer's first step (state allocation) and the fused kernel's build and load
cost. Run on CUDA too where a GPU is present.

    python benchmarks/bench_optimizers.py [--repeats 20] [--models resnet34,mlp] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from boundsweep.optimizers import AdaBound, AMSBound, _fused
from torch.optim import Optimizer


def resnet34_shapes(num_classes: int = 10) -> list[tuple[int, ...]]:
    """Parameter shapes of the CIFAR ResNet-34 of the paper (BasicBlock, [3, 4, 6, 3])."""
    shapes: list[tuple[int, ...]] = [(64, 3, 3, 3), (64,), (64,)]
    in_planes = 64
    for planes, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for block in range(blocks):
            block_stride = stride if block == 0 else 1
            shapes += [(planes, in_planes, 3, 3), (planes,), (planes,)]
            shapes += [(planes, planes, 3, 3), (planes,), (planes,)]
            if block_stride != 1 or in_planes != planes:
                shapes += [(planes, in_planes, 1, 1), (planes,), (planes,)]
            in_planes = planes
    return [*shapes, (num_classes, 512), (num_classes,)]


def mlp_shapes() -> list[tuple[int, ...]]:
    """Parameter shapes of the paper's 784-1000-10 MLP."""
    return [(1000, 784), (1000,), (10, 1000), (10,)]


def _params(shapes: list[tuple[int, ...]], device: str) -> list[torch.nn.Parameter]:
    generator = torch.Generator().manual_seed(0)
    params = []
    for shape in shapes:
        param = torch.nn.Parameter(torch.randn(shape, generator=generator).to(device) * 0.05)
        param.grad = torch.randn(shape, generator=generator).to(device) * 1e-3
        params.append(param)
    return params


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_interleaved(
    makers: dict[str, Callable[[list[torch.nn.Parameter]], Optimizer]],
    shapes: list[tuple[int, ...]],
    device: str,
    repeats: int,
) -> dict[str, tuple[float, float, float, float]]:
    """Time every optimizer round-robin on one shared set of parameters and gradients.

    Interleaving makes every optimizer see the same machine load (the machine is shared), and
    each step's ratio is taken against the baselines' steps of the same round.

    Returns:
        name -> (first-step s, median step s, median ratio to Adam(fused=True), median ratio
        to Adam(foreach=True)).
    """
    params = _params(shapes, device)
    optimizers: dict[str, Optimizer] = {}
    first: dict[str, float] = {}
    for name, make in makers.items():
        optimizers[name] = make(params)
        _sync(device)
        start = time.perf_counter()
        optimizers[name].step()  # allocates the state; the fused kernel is already loaded
        _sync(device)
        first[name] = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(repeats):
        for name, optimizer in optimizers.items():
            _sync(device)
            start = time.perf_counter()
            optimizer.step()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    fused, foreach = times["Adam(fused=True)"], times["Adam(foreach=True)"]
    return {
        name: (
            first[name],
            statistics.median(steps),
            statistics.median(s / b for s, b in zip(steps, fused, strict=True)),
            statistics.median(s / b for s, b in zip(steps, foreach, strict=True)),
        )
        for name, steps in times.items()
    }


def candidates(device: str) -> dict[str, Callable[[list[torch.nn.Parameter]], Optimizer]]:
    """Every optimizer configuration to time, baselines first."""
    makers: dict[str, Callable[[list[torch.nn.Parameter]], Optimizer]] = {
        "Adam(fused=True)": lambda p: torch.optim.Adam(p, fused=True),
        "Adam(foreach=True)": lambda p: torch.optim.Adam(p, foreach=True),
    }
    # On CUDA "fused" is the Triton kernel; on CPU "triton" would run it under Triton's
    # interpreter, which is for tests, not timing.
    impls = ["auto", "fused", "foreach", "single_tensor"]
    if device != "cpu":
        impls[1] = "triton"
    for name, cls in [("AdaBound", AdaBound), ("AMSBound", AMSBound)]:
        for impl in impls:
            makers[f"{name}({impl})"] = lambda p, cls=cls, impl=impl: cls(p, impl=impl)
    return makers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per optimizer")
    parser.add_argument("--models", default="resnet34,mlp", help="comma-separated")
    parser.add_argument("--device", action="append", help="cpu and/or cuda (default: all)")
    args = parser.parse_args(argv)
    devices = args.device or ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    models = {"resnet34": resnet34_shapes(), "mlp": mlp_shapes()}

    # The kernel cache may already hold the build; time the cold build in a fresh process.
    kernel_load = _fused.warm_up()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; fused kernel: "
        f"{'ready' if _fused.available() else _fused.unavailable_reason()} "
        f"(load in this process {kernel_load * 1e3:.1f} ms)"
    )
    cold = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, tempfile, boundsweep.optimizers._fused as f; "
            "os.environ['BOUNDSWEEP_KERNEL_CACHE'] = tempfile.mkdtemp(); print(f.warm_up())",
        ],
        capture_output=True,
        text=True,
    )
    if cold.returncode == 0:
        print(f"fused kernel cold build (empty cache, fresh process): {float(cold.stdout):.2f} s")

    for device in devices:
        for model in args.models.split(","):
            shapes = models[model]
            count = sum(torch.Size(s).numel() for s in shapes)
            print(
                f"\n== {model} ({len(shapes)} tensors, {count / 1e6:.2f}M params) on {device}, "
                f"median of {args.repeats} interleaved rounds"
            )
            print(
                f"{'optimizer':<28}{'step ms':>10}{'/ Adam fused':>14}{'/ Adam foreach':>16}"
                f"{'first step ms':>16}"
            )
            results = time_interleaved(candidates(device), shapes, device, args.repeats)
            for name, (first, step, to_fused, to_foreach) in results.items():
                print(
                    f"{name:<28}{step * 1e3:>10.2f}{to_fused:>14.2f}{to_foreach:>16.2f}"
                    f"{first * 1e3:>16.1f}"
                )


if __name__ == "__main__":
    main()
