"""``make gpu-check`` cannot run here (no GPU): its dry run on CPU keeps every part working,
and without CUDA the real run refuses in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def test_dry_run_on_cpu_fills_every_section_and_writes_its_folder(tmp_path: Path) -> None:
    out = tmp_path / "check"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--out", str(out)]
        + ["--tasks", "mnist_mlp,ptb_lstm1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    rows = json.loads((out / "results.json").read_text())
    by_section: dict[str, list[dict]] = {}
    for row in rows:
        by_section.setdefault(row["section"], []).append(row)
    assert set(by_section) == {"equality", "optimizer step", "tasks", "workers"}
    # 3 variants x 2 dtypes x (foreach, fused, triton, auto), every one within rounding and
    # with both bounds clipping.
    equality = by_section["equality"]
    assert len(equality) == 24 and all(r["ok"] for r in equality)
    assert sum("triton vs" in r["what"] for r in equality) == 6
    assert all(" 0 low" not in r["result"] and " 0 high" not in r["result"] for r in equality)
    assert [r["what"] for r in by_section["tasks"]] == ["mnist_mlp", "ptb_lstm1"]
    assert all(r["ok"] and "steps/s" in r["result"] for r in by_section["tasks"])
    (workers,) = by_section["workers"]
    assert workers["ok"] and workers["result"].startswith("2/2 trials COMPLETE once each")
    assert any("AdaBound(auto)" in r["what"] for r in by_section["optimizer step"])
    table = (out / "table.txt").read_text()
    assert table.splitlines()[1] in result.stdout  # the printed table is the one written
    log = (out / "log.txt").read_text()
    assert "equality: adaboundw done" in log and "workers: exit codes [0, 0]" in log
    # The datasets it wrote are in their real formats (what the tasks just read).
    assert (out / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    assert (out / "data" / "ptb" / "ptb.train.txt").is_file()


def test_without_cuda_the_real_run_says_so_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "never")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},  # no GPU, even on a GPU machine
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("gpu-check: no CUDA")
    assert not (tmp_path / "never").exists()


def test_unknown_task_is_refused_naming_the_valid_ones() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--tasks", "imagenet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "--tasks: unknown imagenet; valid: cifar10_resnet34" in result.stderr
