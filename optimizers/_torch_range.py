"""The torch versions the batched path's exactness was tested with.

Batched trials equal their one-by-one runs bit for bit because the C kernels here round
where torch's own CPU kernels round, and because the few elements torch leaves to a scalar
tail go through torch's private fused ops (``torch._fused_adam_``, ``_fused_adamw_``,
``_fused_sgd_``). Neither is a promise torch makes: another release may round elsewhere or
change those ops. So the kernels run only on the torch releases listed here (the ones
``pyproject.toml`` accepts); on any other, the batched path logs one line and steps each
model with its own torch optimizer and loss (``BatchedOptimizer``'s ``"alone"``), which is
exact whatever torch does, only slower.
"""

from __future__ import annotations

import logging
import re

import torch

__all__ = ["TESTED", "is_tested", "untested_reason"]

_log = logging.getLogger(__name__)

TESTED = ((2, 14),)
"""(major, minor) releases of torch the batched kernels were checked against, bit for bit
(the tests under ``tests/studies`` and ``tests/optimizers``); ``pyproject.toml`` says the same."""

_warned = False


def is_tested(version: str) -> bool:
    """Whether torch ``version`` (e.g. ``"2.14.1+cu130"``) is of a tested release."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return match is not None and (int(match[1]), int(match[2])) in TESTED


def untested_reason(version: str | None = None) -> str | None:
    """Why the batched kernels must not run on torch ``version`` (this process's torch by
    default), or ``None`` where they may. Logs it once per process."""
    global _warned
    version = torch.__version__ if version is None else version
    if is_tested(version):
        return None
    tested = ", ".join(f"{major}.{minor}" for major, minor in TESTED)
    reason = (
        f"torch {version} is not a tested release ({tested}): batched trials step each model "
        "with its own torch optimizer and loss (exact, slower)"
    )
    if not _warned:
        _warned = True
        _log.warning("%s", reason)
    return reason
