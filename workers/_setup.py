"""Setup errors: what fails every trial of a campaign on this worker the same way.

Missing dataset files, or a device this machine does not have, are not a trial's crash: a
retry fails identically, and treating them as crashes burnt whole campaigns (every trial FAIL
within seconds, three tracebacks each). The worker instead gives the trial back untouched
(it stays queued for a worker that can run it), stops claiming that campaign's trials, and
says in one line why and what to do; ``--until-idle`` then exits non-zero.
"""

from __future__ import annotations

from boundsweep.studies.tasks import MissingDataError

__all__ = ["SETUP_ERROR_EXIT", "device_problem", "setup_problem"]

SETUP_ERROR_EXIT = 3
"""Exit status of a worker that could not run some campaign's trials (or any, on its device)."""

# What torch says when a CUDA or MPS device is asked for on a machine without one.
_DEVICE_MESSAGES = (
    "Torch not compiled with CUDA enabled",
    "Found no NVIDIA driver",
    "no CUDA-capable device",
    "invalid device ordinal",
    "CUDA driver version is insufficient",
    "MPS backend is not available",
)


def device_problem(device: str) -> str | None:
    """Why ``device`` cannot train on this machine, or None when it can."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        return f"--device {device!r} is not a torch device ({exc}); use cpu, cuda or cuda:N"
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            return f"--device {device}: this machine has no CUDA GPU; use --device cpu"
        if parsed.index is not None and parsed.index >= count:
            return f"--device {device}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}"
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        return f"--device {device}: MPS is not available here; use --device cpu"
    return None


def setup_problem(exc: BaseException) -> str | None:
    """The message of ``exc`` if it is a setup error (see above), else None."""
    if isinstance(exc, MissingDataError):
        return str(exc)
    if isinstance(exc, RuntimeError | AssertionError) and any(
        text in str(exc) for text in _DEVICE_MESSAGES
    ):
        return f"the device is unavailable: {exc}"
    return None
