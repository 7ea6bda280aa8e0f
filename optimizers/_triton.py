"""The fused AdaBound step on CUDA: one Triton kernel launch per bucket of tensors.

A launch covers every tensor of a bucket (same device, dtype and step count: one param group's
parameters, as a rule), so a ResNet-34 step is one launch, not 110; each element of param,
grad and both moments (and AMSBound's maximum) is read and written once, as in
``torch.optim.Adam(fused=True)``. Each program takes one ``BLOCK`` of one tensor; a small
int64 table on the device says which tensor and where (``_Table``). The table depends only on
the tensors' addresses and sizes, which stay the same from step to step (the state tensors are
updated in place and the caching allocator hands ``backward()`` the same grad blocks), so it is
built once and reused: a step allocates nothing and copies nothing to the device.

The per-step scalars (bias corrections, bounds, decay) come from ``adabound()`` as Python
floats computed in float64 from the Python-int step count, exactly as every other
implementation gets them; they go to the kernel as float64 arguments and are rounded to the
tensor dtype inside it, where the reference's torch ops round them. Nothing is read back from
the device (no ``.item()``, no synchronisation).

On CPU tensors the same kernel runs under Triton's interpreter (numpy, one program at a time):
far too slow to train with, it is how the suite checks the kernel against the reference on a
machine without a GPU. ``auto`` takes this implementation only for CUDA tensors.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["available", "supports", "triton_adabound", "unavailable_reason"]

#: Elements per program: a multiple of every vector width, large enough that a program's
#: table look-ups are negligible, small enough that a ResNet's many small tensors waste
#: little of their last block. The interpreter runs the very same launch.
BLOCK = 4096
#: Tables kept per process (one per distinct set of addresses: an optimizer's param group).
TABLE_CACHE_SIZE = 64
_DTYPES = (torch.float32, torch.float64)
_ROWS = 5  # param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq


def _adabound_kernel(
    base,
    table,
    tensors,
    chunks,
    beta1,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    step_size,
    lower,
    upper,
    eps,
    weight_decay,
    decay,
    COUPLED: tl.constexpr,  # noqa: N803 (Triton's convention for compile-time constants)
    DECAYS: tl.constexpr,  # noqa: N803
    AMSBOUND: tl.constexpr,  # noqa: N803
    VEC: tl.constexpr,  # noqa: N803
    BLOCK: tl.constexpr,  # noqa: N803
):
    # The table (int64): rows of element offsets from `base` for param, grad, exp_avg,
    # exp_avg_sq and max_exp_avg_sq (`tensors` entries each), then each tensor's numel, then
    # each chunk's tensor index, then each chunk's first element.
    chunk = tl.program_id(0)
    index = tl.load(table + 6 * tensors + chunk)
    start = tl.load(table + 6 * tensors + chunks + chunk)
    numel = tl.load(table + 5 * tensors + index)
    dtype = base.dtype.element_ty
    # Every offset is a multiple of VEC elements (checked on the host), so a whole block is
    # read and written 16 bytes at a time; only a tensor's last block needs a mask, and a
    # mask whose length is not a multiple of VEC would forbid that, so the body is compiled
    # twice: without a mask for whole blocks, with one for the last.
    whole = start + BLOCK <= numel
    for MASKED in tl.static_range(2):  # noqa: N806
        if whole != MASKED:
            within = start + tl.arange(0, BLOCK)
            mask = within < numel if MASKED else None
            p_at = base + tl.max_contiguous(
                tl.multiple_of(tl.load(table + index) + within, VEC), BLOCK
            )
            g_at = base + tl.max_contiguous(
                tl.multiple_of(tl.load(table + tensors + index) + within, VEC), BLOCK
            )
            m_at = base + tl.max_contiguous(
                tl.multiple_of(tl.load(table + 2 * tensors + index) + within, VEC), BLOCK
            )
            v_at = base + tl.max_contiguous(
                tl.multiple_of(tl.load(table + 3 * tensors + index) + within, VEC), BLOCK
            )
            param = tl.load(p_at, mask=mask)
            grad = tl.load(g_at, mask=mask)
            # tl.full rounds each float64 scalar to the tensor dtype once, as torch's ops do.
            if DECAYS:
                param = param * tl.full((), decay, dtype)
            if COUPLED:
                grad = grad + tl.full((), weight_decay, dtype) * param
            exp_avg = tl.load(m_at, mask=mask) * tl.full((), beta1, dtype) + (
                tl.full((), one_minus_beta1, dtype) * grad
            )
            exp_avg_sq = tl.load(v_at, mask=mask) * tl.full((), beta2, dtype) + (
                tl.full((), one_minus_beta2, dtype) * grad * grad
            )
            tl.store(m_at, exp_avg, mask=mask)
            tl.store(v_at, exp_avg_sq, mask=mask)
            if AMSBOUND:
                max_at = base + tl.max_contiguous(
                    tl.multiple_of(tl.load(table + 4 * tensors + index) + within, VEC), BLOCK
                )
                exp_avg_sq = tl.maximum(
                    tl.load(max_at, mask=mask), exp_avg_sq, propagate_nan=tl.PropagateNan.ALL
                )
                tl.store(max_at, exp_avg_sq, mask=mask)
            # IEEE-rounded sqrt and division: Triton's float32 defaults are approximate ones
            # (its float64 sqrt and division are rounded to nearest already).
            if dtype == tl.float32:
                denom = tl.sqrt_rn(exp_avg_sq) + tl.full((), eps, dtype)
                step = tl.div_rn(tl.full(denom.shape, step_size, dtype), denom)
            else:
                denom = tl.sqrt(exp_avg_sq) + tl.full((), eps, dtype)
                step = tl.full(denom.shape, step_size, dtype) / denom
            step = tl.maximum(step, tl.full((), lower, dtype), propagate_nan=tl.PropagateNan.ALL)
            step = tl.minimum(step, tl.full((), upper, dtype), propagate_nan=tl.PropagateNan.ALL)
            tl.store(p_at, param - step * exp_avg, mask=mask)


try:
    import triton
    import triton.language as tl
except ImportError as error:  # triton ships with torch's Linux x86-64 wheels only
    triton = tl = None  # type: ignore[assignment]
    _UNAVAILABLE: str | None = f"triton is not importable: {error}"
else:
    _UNAVAILABLE = None
    # The scalars are float64 arguments (a Python float would be passed as float32).
    _adabound_kernel.__annotations__.update(
        {
            name: tl.float64
            for name in (
                "beta1",
                "one_minus_beta1",
                "beta2",
                "one_minus_beta2",
                "step_size",
                "lower",
                "upper",
                "eps",
                "weight_decay",
                "decay",
            )
        }
    )


def available() -> bool:
    """Whether Triton is importable here (the kernel compiles on a CUDA device's first step)."""
    return _UNAVAILABLE is None


def unavailable_reason() -> str | None:
    """Why the Triton kernel cannot run, or ``None`` if it can."""
    return _UNAVAILABLE


@functools.cache
def _compiled(interpreted: bool) -> Any:
    """The kernel compiled for the GPU, or wrapped for Triton's CPU interpreter."""
    if interpreted:
        from triton.runtime.interpreter import InterpretedFunction

        return InterpretedFunction(_adabound_kernel, do_not_specialize=["tensors", "chunks"])
    return triton.jit(_adabound_kernel, do_not_specialize=["tensors", "chunks"])


def supports(tensor_lists: list[list[Tensor]]) -> bool:
    """Whether the kernel can take these tensors: float32/float64 on CUDA (or CPU, under the
    interpreter), dense (contiguous or channels_last) with every grad and state tensor laid
    out as its parameter, so one flat index walks them all in step.

    Called every step, so it checks only what can differ: a bucket holds one device and dtype
    (``adabound()`` groups the parameters so), autograd gives each grad its parameter's device
    and dtype, and the optimizer its state; a layout (strides) can still differ.
    """
    first = tensor_lists[0][0]
    if first.device.type not in ("cuda", "cpu") or first.dtype not in _DTYPES:
        return False
    others = tensor_lists[1:]
    for i, param in enumerate(tensor_lists[0]):
        if not param.is_contiguous() and not (
            param.dim() == 4 and param.is_contiguous(memory_format=torch.channels_last)
        ):
            return False
        stride = param.stride()
        for tensors in others:
            if tensors[i].stride() != stride:
                return False
    return True


@dataclass(frozen=True)
class _Table:
    """Where each program works: the int64 table on the device, which tensor the offsets are
    counted from (row, index: the one at the lowest address, so every offset is >= 0; kept by
    position, not by reference, so the cache holds no tensor alive), the launch size and the
    vector width every offset allows."""

    table: Tensor
    base: tuple[int, int]
    tensors: int
    chunks: int
    vec: int


_tables: OrderedDict[tuple, _Table] = OrderedDict()


def _build_table(rows: list[list[Tensor]], addresses: list[int], block: int) -> _Table:
    element_size = rows[0][0].element_size()
    lowest = min(range(len(addresses)), key=addresses.__getitem__)
    base_at = divmod(lowest, len(rows[0]))
    base = rows[base_at[0]][base_at[1]]
    offsets = [address - base.data_ptr() for address in addresses]
    aligned = all(offset % 16 == 0 for offset in offsets) and base.data_ptr() % 16 == 0
    numels = [param.numel() for param in rows[0]]
    chunk_tensor: list[int] = []
    chunk_start: list[int] = []
    for index, numel in enumerate(numels):
        for start in range(0, numel, block):
            chunk_tensor.append(index)
            chunk_start.append(start)
    tensors = len(numels)
    padding = [0] * (tensors * (_ROWS - len(rows)))  # no max_exp_avg_sq row for AdaBound
    values = [o // element_size for o in offsets] + padding + numels + chunk_tensor + chunk_start
    table = torch.tensor(values, dtype=torch.int64).to(base.device)
    return _Table(table, base_at, tensors, len(chunk_tensor), 16 // element_size if aligned else 1)


def _table(rows: list[list[Tensor]], block: int) -> _Table:
    """The cached table for these tensors, built on the first step that sees their addresses."""
    addresses = [t.data_ptr() for tensors in rows for t in tensors]
    key = (
        rows[0][0].device,
        rows[0][0].dtype,
        block,
        tuple(addresses),
        *map(Tensor.numel, rows[0]),
    )
    found = _tables.get(key)
    if found is not None:
        _tables.move_to_end(key)
        return found
    built = _build_table(rows, addresses, block)
    _tables[key] = built
    if len(_tables) > TABLE_CACHE_SIZE:
        _tables.popitem(last=False)
    return built


def triton_adabound(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor] | None,
    scalars: Any,
    *,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
) -> None:
    """The update of ``_single_tensor_adabound`` in one Triton launch over all the tensors."""
    if _UNAVAILABLE is not None:
        raise RuntimeError(f"The Triton AdaBound kernel is unavailable: {_UNAVAILABLE}")
    rows = [params, grads, exp_avgs, exp_avg_sqs]
    if max_exp_avg_sqs is not None:
        rows.append(max_exp_avg_sqs)
    kept = [i for i, param in enumerate(params) if param.numel() > 0]
    if not kept:
        return
    if len(kept) < len(params):
        rows = [[tensors[i] for i in kept] for tensors in rows]
    where = _table(rows, BLOCK)
    _compiled(params[0].device.type == "cpu")[(where.chunks,)](
        rows[where.base[0]][where.base[1]],
        where.table,
        where.tensors,
        where.chunks,
        beta1,
        1.0 - beta1,
        beta2,
        1.0 - beta2,
        scalars.step_size,
        scalars.lower,
        scalars.upper,
        eps,
        weight_decay,
        scalars.decay,
        COUPLED=not decoupled_weight_decay and weight_decay != 0.0,
        DECAYS=decoupled_weight_decay and weight_decay != 0.0,
        AMSBOUND=max_exp_avg_sqs is not None,
        VEC=where.vec,
        BLOCK=BLOCK,
    )
