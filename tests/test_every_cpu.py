"""The batched path is exact on every CPU: its exactness tests, rerun here in subprocesses with
torch forced to each CPU capability it can take on this machine and without a C compiler.

torch picks its CPU kernels once per process (``ATEN_CPU_CAPABILITY`` can lower the choice):
AVX-512 here, AVX2 on many CI machines, DEFAULT on others (ARM, old x86). The batched loss
and optimizer kernels follow torch's AVX-512 and AVX2 kernels bit for bit; elsewhere, and
without a C compiler, the batched path calls torch's own kernels and optimizers instead. The
tests they run assert, under whatever capability they find, that the matching path was taken
and that each model's loss, gradients and steps equal its run alone, bit for bit; nothing is
skipped as "unavailable here". On a machine without AVX2 the ``avx2`` run is torch's DEFAULT
again, which the same assertions cover.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The exactness tests of each path, a few seconds per run: the loss kernel or its fallback on
# random and extreme rows; the optimizer's choice and its steps for every optimizer; whole
# batched runs against train() for one optimizer of each kernel family.
TARGETS = [
    "tests/studies/test_batched_loss.py::test_the_kernel_runs_exactly_where_torchs_kernels_are_avx512_or_avx2",
    "tests/studies/test_batched_loss.py::test_random_rows_bit_for_bit[1.0-10]",
    "tests/studies/test_batched_loss.py::test_random_rows_bit_for_bit[40.0-15]",
    "tests/studies/test_batched_loss.py::test_random_rows_bit_for_bit[0.0001-7]",
    "tests/studies/test_batched_loss.py::test_extreme_rows_as_torch_gives_them",
    "tests/optimizers/test_batched.py::test_auto_takes_the_kernel_exactly_where_it_matches_torchs_kernels",
    *(
        f"tests/optimizers/test_batched.py::test_batched_step_equals_each_model_alone[{name}-auto]"
        for name in ("sgdm", "adagrad", "amsgrad", "adaboundw")
    ),
    "tests/studies/test_batched_training.py::test_batched_runs_are_the_same_runs_one_by_one_bit_for_bit[mnist1d_mlp-adagrad]",
    "tests/studies/test_batched_training.py::test_batched_runs_are_the_same_runs_one_by_one_bit_for_bit[mnist1d_mlp-adam]",
    "tests/studies/test_batched_training.py::test_batched_runs_are_the_same_runs_one_by_one_bit_for_bit[digits_mlp-sgdm]",
    "tests/studies/test_batched_training.py::test_batched_runs_are_the_same_runs_one_by_one_bit_for_bit[digits_mlp-amsbound]",
]


def _without_compiler(tmp_path: Path) -> dict[str, str]:
    """PATH with no ``cc``/``gcc``: a folder of links to everything else on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            name = entry.name
            if name in ("cc", "gcc", "c99", "clang") or name.startswith(("gcc-", "x86_64-")):
                continue
            if not (bin_dir / name).exists():
                (bin_dir / name).symlink_to(entry.path)
    return {"PATH": str(bin_dir), "CC": ""}


@pytest.mark.parametrize("forced", ["avx2", "default", "no-compiler"])
def test_the_exactness_tests_pass_under_each_capability(forced: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "CC")}
    if forced == "no-compiler":
        env.update(_without_compiler(tmp_path))
        check = "import shutil; assert not (shutil.which('cc') or shutil.which('gcc'))"
    else:
        env["ATEN_CPU_CAPABILITY"] = forced
        check = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    probe = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert probe.returncode == 0, probe.stderr
    if forced == "default":
        assert probe.stdout.strip() == "DEFAULT"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *TARGETS],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert run.returncode == 0, f"under {forced}:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    assert " passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-2000:]
