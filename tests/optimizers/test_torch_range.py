"""The torch releases the batched kernels are tested with: pyproject.toml says the same, and
any other release falls back, with one line, to each model's own optimizer and loss (exact)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from boundsweep.optimizers._torch_range import TESTED, is_tested, untested_reason
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("version", "tested"),
    [
        ("2.14.1+cu130", True),
        ("2.14.0", True),
        ("2.14.2+cpu", True),
        ("2.15.0", False),
        ("2.13.1", False),
        ("2.4.1", False),
        ("3.14.0", False),
        ("2.140.0", False),
        ("2.15.0.dev20270101+cpu", False),
        ("nightly", False),
    ],
)
def test_a_version_is_tested_only_if_its_release_is_listed(version: str, tested: bool) -> None:
    assert is_tested(version) is tested
    reason = untested_reason(version)
    if tested:
        assert reason is None
    else:
        assert reason is not None and f"torch {version} is not a tested release" in reason
        assert "2.14" in reason and "exact" in reason


def test_pyproject_accepts_exactly_the_tested_releases() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (torch,) = [Requirement(r) for r in project["dependencies"] if r.startswith("torch")]
    for major, minor in TESTED:
        assert torch.specifier.contains(f"{major}.{minor}.0")
        assert torch.specifier.contains(f"{major}.{minor}.9")
        assert not torch.specifier.contains(f"{major}.{minor + 1}.0")
        assert not torch.specifier.contains(f"{major}.{minor - 1}.9")


_UNTESTED_TORCH = r"""
import logging, sys
import torch
torch.__version__ = "2.99.0"  # a release the kernels were never checked against
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
from boundsweep.optimizers import BatchedOptimizer
from boundsweep.studies._training import _batched_loss
from boundsweep.studies.tasks import Budget
from boundsweep.studies.training import train, train_batched

torch.set_num_threads(1)
runs = [({"lr": 0.01}, 1), ({"lr": 0.003, "weight_decay": 1e-3}, 2)]
budget = Budget(epochs=1, data_fraction=0.1)
batched = train_batched("digits_mlp", "adagrad", runs, budget, keep_parameters=True)
alone = [train("digits_mlp", "adagrad", h, s, budget, keep_parameters=True) for h, s in runs]
for b, a in zip(batched, alone, strict=True):
    assert b.val_metric == a.val_metric and b.epochs[-1].train_loss == a.epochs[-1].train_loss
    assert all(torch.equal(b.parameters[n], p) for n, p in a.parameters.items())
assert not _batched_loss.available()
param = torch.zeros(2, 3)
optimizer = BatchedOptimizer("adam", [param], [{}, {}])
param.grad = torch.ones(2, 3)
optimizer.step()
print("impl", optimizer.impl)
"""


def test_another_torch_release_falls_back_exactly_with_one_line() -> None:
    """The whole batched path on a torch that claims another release (the one stand-in here:
    a second torch cannot be installed beside this one): the kernels stay off, one warning
    says why, and each batched run is its one-by-one run bit for bit."""
    run = subprocess.run(
        [sys.executable, "-c", _UNTESTED_TORCH], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "impl alone" in run.stdout
    lines = [line for line in run.stderr.splitlines() if "not a tested release" in line]
    assert len(lines) == 1, run.stderr[-3000:]
    assert lines[0].startswith("WARNING ") and "torch 2.99.0" in lines[0]
