"""A setup error (no dataset files, no such device) is not a crash: the campaign's trials stay
queued, the worker says why in one line, and `--until-idle` exits non-zero. Real worker
processes on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from boundsweep.studies.campaign import CampaignSpec
from boundsweep.studies.storage import campaign_progress, create_campaign, open_storage
from boundsweep.workers._setup import SETUP_ERROR_EXIT, device_problem

MNIST = CampaignSpec.model_validate(
    {
        "name": "no-mnist-here",
        "task": "mnist_mlp",
        "seeds": [0, 1],
        "budget": {"epochs": 1, "max_steps": 2},
        "arms": [{"optimizer": "sgdm", "space": {"lr": {"grid": [0.01, 0.1]}}}],
    }
)
DIGITS = MNIST.model_copy(update={"name": "digits-fine", "task": "digits_mlp"})


def _worker(url: str, data_dir: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNDSWEEP_")}
    env.update(BOUNDSWEEP_DATA_DIR=str(data_dir), BOUNDSWEEP_DOWNLOAD="0", OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "boundsweep.service.cli", "worker", "--storage", url,
         "--until-idle", "--poll-interval", "0.2", *options],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _counts(url: str, name: str) -> dict[str, int]:
    [arm] = campaign_progress(open_storage(url), name)
    return {k: getattr(arm, k) for k in ("total", "waiting", "running", "complete", "fail")}


def test_missing_data_leaves_the_campaign_queued_and_the_others_run(
    storage_url: str, tmp_path: Path
) -> None:
    storage = open_storage(storage_url)
    create_campaign(storage, MNIST)
    create_campaign(storage, DIGITS)
    empty = tmp_path / "data"
    empty.mkdir()
    done = _worker(storage_url, empty)
    assert done.returncode == SETUP_ERROR_EXIT, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "cannot run its trials" in line]
    assert len(lines) == 1, done.stderr[-3000:]
    assert "no-mnist-here" in lines[0] and "MNIST" in lines[0] and str(empty) in lines[0]
    assert _counts(storage_url, MNIST.name) == {
        "total": 4, "waiting": 4, "running": 0, "complete": 0, "fail": 0,
    }  # fmt: skip
    # The campaign it could run, it ran.
    assert _counts(storage_url, DIGITS.name)["complete"] == 4


def test_a_device_this_machine_lacks_claims_nothing(storage_url: str, tmp_path: Path) -> None:
    # On a GPU machine, ask for a GPU it does not have.
    device = "cuda:99" if device_problem("cuda") is None else "cuda"
    create_campaign(open_storage(storage_url), DIGITS)
    done = _worker(storage_url, tmp_path, "--device", device)
    assert done.returncode == SETUP_ERROR_EXIT
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if "worker not started" in line]
    assert f"--device {device}" in line and "cpu" in line
    assert _counts(storage_url, DIGITS.name)["waiting"] == 4


def test_device_problems_name_the_choices() -> None:
    assert device_problem("cpu") is None
    assert "cuda:N" in (device_problem("tpu") or "")


@pytest.mark.parametrize(
    "message",
    ["Torch not compiled with CUDA enabled", "CUDA error: invalid device ordinal"],
)
def test_device_errors_raised_in_training_are_setup_errors(message: str) -> None:
    from boundsweep.workers._setup import setup_problem

    assert setup_problem(RuntimeError(message)) is not None
    assert setup_problem(RuntimeError("shape mismatch")) is None
