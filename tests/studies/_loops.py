"""Own loops for the loop-shape tests (``Task.code`` names them)."""

from __future__ import annotations

import torch


def nan_at_two(ctx) -> float:
    for epoch in range(1, ctx.epochs + 1):
        ctx.report(epoch, 1.0 if epoch < 2 else float("nan"))
    return 1.0


def param_groups(ctx) -> float:
    """Fine-tuning style: a frozen-ish body at a tenth of the trial's lr, a head at its lr."""
    body, head = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    opt = ctx.make_optimizer(
        [{"params": body.parameters(), "lr": ctx.hparams["lr"] / 10}, {"params": head.parameters()}]
    )
    lrs = [group["lr"] for group in opt.param_groups]
    ctx.report(1, lrs[1], body_lr=lrs[0])
    return lrs[1]
