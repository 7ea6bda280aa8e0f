"""The AdaBound update as functions over lists of tensors, one per implementation.

``adabound()`` is what the optimizer classes call: it computes the step's scalars (bias
corrections, bounds) once per distinct step count in float64 and hands each bucket of tensors
to an implementation. ``_single_tensor_adabound`` is the readable reference; the others must
give its result (float64 to ~1e-12, float32 close).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass

import torch
from boundsweep.optimizers import _fused, _triton
from boundsweep.optimizers._bounds import bound_at, scaled_final_lr
from torch import Tensor

__all__ = ["IMPLEMENTATIONS", "StepScalars", "adabound", "resolve_impl"]

#: Valid values of the ``impl`` argument and of ``BOUNDSWEEP_OPTIMIZER_IMPL``.
IMPLEMENTATIONS = ("auto", "single_tensor", "foreach", "fused", "triton")
IMPL_ENV = "BOUNDSWEEP_OPTIMIZER_IMPL"


def resolve_impl(impl: str | None) -> str:
    """The implementation to use: ``impl``, else ``$BOUNDSWEEP_OPTIMIZER_IMPL``, else ``auto``.

    Raises:
        ValueError: The name is not one of ``IMPLEMENTATIONS``.
    """
    source = "impl"
    if impl is None:
        impl = os.environ.get(IMPL_ENV) or "auto"
        source = IMPL_ENV
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"Invalid {source}: {impl!r} (valid: {', '.join(IMPLEMENTATIONS)})")
    return impl


@dataclass(frozen=True)
class StepScalars:
    """The per-step scalars of the update, computed once in float64."""

    step_size: float  # lr * sqrt(1 - beta2^t) / (1 - beta1^t)
    lower: float
    upper: float
    decay: float  # 1 - lr * weight_decay for decoupled decay, else 1


def step_scalars(
    step: int,
    *,
    lr: float,
    base_lr: float,
    final_lr: float,
    gamma: float,
    beta1: float,
    beta2: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
) -> StepScalars:
    """The scalars of step ``step`` (1-based) of one param group."""
    bias_correction1 = 1.0 - beta1**step
    bias_correction2 = 1.0 - beta2**step
    step_size = lr * math.sqrt(bias_correction2) / bias_correction1
    lower, upper = bound_at(scaled_final_lr(final_lr, lr, base_lr), gamma, step)
    decay = 1.0 - lr * weight_decay if decoupled_weight_decay else 1.0
    return StepScalars(step_size, lower, upper, decay)


def _single_tensor_adabound(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor] | None,
    scalars: StepScalars,
    *,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
) -> None:
    """The reference: the paper's update, one tensor at a time, one op per line."""
    for i, param in enumerate(params):
        grad = grads[i]
        exp_avg = exp_avgs[i]
        exp_avg_sq = exp_avg_sqs[i]
        if weight_decay != 0.0:
            if decoupled_weight_decay:
                param.mul_(scalars.decay)
            else:
                grad = grad.add(param, alpha=weight_decay)
        exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        if max_exp_avg_sqs is not None:
            # AMSBound: the denominator uses the running maximum of the second moment.
            torch.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])
            denom = max_exp_avg_sqs[i].sqrt().add_(eps)
        else:
            denom = exp_avg_sq.sqrt().add_(eps)
        step = torch.full_like(denom, scalars.step_size).div_(denom)
        step.clamp_(scalars.lower, scalars.upper).mul_(exp_avg)
        param.sub_(step)


def _multi_tensor_adabound(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor] | None,
    scalars: StepScalars,
    *,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
) -> None:
    """The reference's ops on whole lists (``torch._foreach_*``): one kernel launch per op."""
    if weight_decay != 0.0:
        if decoupled_weight_decay:
            torch._foreach_mul_(params, scalars.decay)
        else:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_mul_(exp_avgs, beta1)
    torch._foreach_add_(exp_avgs, grads, alpha=1.0 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta2)
    if max_exp_avg_sqs is not None:
        torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)
        steps = torch._foreach_sqrt(max_exp_avg_sqs)
    else:
        steps = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_add_(steps, eps)
    # step_size / denom as 1 / denom * step_size: there is no scalar-by-list foreach division.
    torch._foreach_reciprocal_(steps)
    torch._foreach_mul_(steps, scalars.step_size)
    torch._foreach_clamp_min_(steps, scalars.lower)
    torch._foreach_clamp_max_(steps, scalars.upper)
    # θ - η ⊙ m in one pass instead of a multiply and a subtract.
    torch._foreach_addcmul_(params, steps, exp_avgs, value=-1.0)


_IMPL_FUNCTIONS = {
    "single_tensor": _single_tensor_adabound,
    "foreach": _multi_tensor_adabound,
    "fused": _fused.fused_adabound,
    "triton": _triton.triton_adabound,
}


def _pick(impl: str, tensors: list[list[Tensor]]) -> str:
    """The implementation for one bucket (same device, dtype and step count)."""
    if impl in ("single_tensor", "foreach"):
        return impl
    # A named kernel is taken even if it is unavailable (its call says why); "auto" only if
    # it is. Tensors a kernel cannot take (e.g. float16, a CPU channels_last weight) fall
    # back. "fused" is the device's fused kernel: the C loop on CPU, Triton on CUDA;
    # "triton" is Triton everywhere (on CPU under its interpreter: for tests, not training).
    on_cuda = tensors[0][0].device.type == "cuda"
    if impl == "triton" or on_cuda:
        if _triton.supports(tensors) and (impl != "auto" or _triton.available()):
            return "triton"
    elif _fused.supports(tensors) and (impl == "fused" or _fused.available()):
        return "fused"
    # On CPU the per-tensor loop beats foreach (better cache reuse, fewer temporaries:
    # benchmarks/bench_optimizers.py, as torch's own default); elsewhere foreach saves
    # kernel launches.
    return "single_tensor" if tensors[0][0].device.type == "cpu" else "foreach"


def adabound(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor] | None,
    state_steps: list[int],
    *,
    lr: float,
    base_lr: float,
    final_lr: float,
    gamma: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    impl: str = "auto",
) -> None:
    """One AdaBound / AMSBound / AdaBoundW step over the tensors of one param group.

    ``state_steps`` hold each tensor's step count *after* this step (1 on the first step).
    ``max_exp_avg_sqs`` is given for AMSBound and ``None`` for AdaBound.
    """
    buckets: dict[tuple[torch.device, torch.dtype, int], list[int]] = defaultdict(list)
    for i, param in enumerate(params):
        buckets[(param.device, param.dtype, state_steps[i])].append(i)
    for (_, _, step), index in buckets.items():
        scalars = step_scalars(
            step,
            lr=lr,
            base_lr=base_lr,
            final_lr=final_lr,
            gamma=gamma,
            beta1=beta1,
            beta2=beta2,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        bucket = [
            [params[i] for i in index],
            [grads[i] for i in index],
            [exp_avgs[i] for i in index],
            [exp_avg_sqs[i] for i in index],
        ]
        maxes = [max_exp_avg_sqs[i] for i in index] if max_exp_avg_sqs is not None else None
        implementation = _IMPL_FUNCTIONS[_pick(impl, bucket + ([maxes] if maxes else []))]
        implementation(
            *bucket,
            maxes,
            scalars,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
        )
