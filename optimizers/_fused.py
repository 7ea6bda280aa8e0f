"""The fused AdaBound step on CPU: one hand-written C loop per tensor, one pass over memory.

The element-wise update (weight decay, both moments, AMSBound's maximum, the clipped step and
the parameter update) is done in a single pass, as ``torch.optim.Adam(fused=True)`` does, so a
step reads and writes each state tensor once instead of once per op. The C source below is
compiled with the system C compiler the first time a process needs it (about a second) and
cached on disk keyed by the source, the flags and the CPU, so later processes only load it
(milliseconds). It uses OpenMP through the same ``libgomp`` torch has loaded, so it shares
torch's threads instead of starting a second pool.

Only CPU tensors of float32/float64 with contiguous memory are taken; ``supports()`` says so
and the caller falls back to the per-tensor loop (CPU) or foreach (elsewhere) for anything else.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["available", "fused_adabound", "supports", "warm_up"]

_log = logging.getLogger(__name__)

RANGE_SOURCE = r"""
/* The loop over one contiguous range. Kept in its own function with restrict pointers and
   scalars by value: inside an OpenMP-outlined body gcc gives up vectorizing it (6x slower). */
#define ADABOUND_RANGE(NAME, T, SQRT, AMS)                                                  \
static inline void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v,   \
                        T *restrict vmax, int64_t n, T beta1, T one_minus_beta1, T beta2,   \
                        T one_minus_beta2, T step_size, T lower, T upper, T eps,            \
                        T weight_decay, T decay, int coupled, int decays) {                 \
    for (int64_t i = 0; i < n; ++i) {                                                       \
        T param = p[i];                                                                     \
        T grad = g[i];                                                                      \
        if (decays) param = param * decay;                                                  \
        if (coupled) grad = grad + weight_decay * param;                                    \
        T exp_avg = m[i] * beta1 + one_minus_beta1 * grad;                                  \
        T exp_avg_sq = v[i] * beta2 + one_minus_beta2 * grad * grad;                        \
        m[i] = exp_avg;                                                                     \
        v[i] = exp_avg_sq;                                                                  \
        if (AMS) {                                                                          \
            T running_max = vmax[i] > exp_avg_sq ? vmax[i] : exp_avg_sq;                    \
            vmax[i] = running_max;                                                          \
            exp_avg_sq = running_max;                                                       \
        }                                                                                   \
        T step = step_size / (SQRT(exp_avg_sq) + eps);                                      \
        step = step < lower ? lower : step;                                                 \
        step = step > upper ? upper : step;                                                 \
        p[i] = param - step * exp_avg;                                                      \
    }                                                                                       \
}
"""
"""The bounded update over one contiguous range: ``ADABOUND_RANGE(NAME, T, SQRT, AMS)``
defines it. The batched kernel (``_batched_kernel``) compiles this very text, so a model
stepped there rounds exactly as it does here."""

_SOURCE = (
    r"""
#include <math.h>
#include <stdint.h>
#include <omp.h>
"""
    + RANGE_SOURCE
    + r"""
/* Each scalar is rounded to T where the reference's torch ops round it. Threads take equal
   contiguous chunks (multiples of 64 elements, so every chunk starts cache-line aligned). */
#define ADABOUND_KERNEL(NAME, RANGE, T)                                                     \
void NAME(T *p, const T *g, T *m, T *v, T *vmax, int64_t n, double beta1, double beta2,    \
          double step_size, double lower, double upper, double eps, double weight_decay,    \
          double decay, int decoupled, int nthreads) {                                     \
    const int coupled = !decoupled && weight_decay != 0.0;                                  \
    const int decays = decoupled && weight_decay != 0.0;                                    \
    if (n < 65536) nthreads = 1;                                                            \
    _Pragma("omp parallel num_threads(nthreads) if(nthreads > 1)")                          \
    {                                                                                       \
        int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();             \
        int64_t chunk = ((n + threads - 1) / threads + 63) / 64 * 64;                       \
        int64_t begin = thread * chunk;                                                     \
        int64_t end = begin + chunk < n ? begin + chunk : n;                                \
        if (begin < end)                                                                    \
            RANGE(p + begin, g + begin, m + begin, v + begin, vmax ? vmax + begin : 0,      \
                  end - begin, (T)beta1, (T)(1.0 - beta1), (T)beta2, (T)(1.0 - beta2),      \
                  (T)step_size, (T)lower, (T)upper, (T)eps, (T)weight_decay, (T)decay,      \
                  coupled, decays);                                                         \
    }                                                                                       \
}

ADABOUND_RANGE(adabound_range_f32, float, sqrtf, 0)
ADABOUND_RANGE(amsbound_range_f32, float, sqrtf, 1)
ADABOUND_RANGE(adabound_range_f64, double, sqrt, 0)
ADABOUND_RANGE(amsbound_range_f64, double, sqrt, 1)
ADABOUND_KERNEL(adabound_f32, adabound_range_f32, float)
ADABOUND_KERNEL(amsbound_f32, amsbound_range_f32, float)
ADABOUND_KERNEL(adabound_f64, adabound_range_f64, double)
ADABOUND_KERNEL(amsbound_f64, amsbound_range_f64, double)
"""
)

_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fopenmp", "-shared", "-fPIC"]
_KERNELS = {
    (torch.float32, False): "adabound_f32",
    (torch.float32, True): "amsbound_f32",
    (torch.float64, False): "adabound_f64",
    (torch.float64, True): "amsbound_f64",
}

_library: ctypes.CDLL | None = None
_unavailable: str | None = None  # why the kernel cannot be built, once we know


def _cache_dir() -> Path:
    root = os.environ.get("BOUNDSWEEP_KERNEL_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "boundsweep" / "kernels"


def _cpu_signature() -> str:
    # -march=native code must not be reused on a machine with other instruction sets.
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        flags = ""
    return platform.machine() + flags


def _build(compiler: str, source_text: str = _SOURCE, stem: str = "adabound") -> Path:
    """The shared library of ``source_text`` (the batched kernel's too), built once per machine."""
    key = hashlib.sha256(
        "\0".join([source_text, compiler, *_FLAGS, _cpu_signature()]).encode()
    ).hexdigest()[:16]
    target = _cache_dir() / f"{stem}_{key}.so"
    if target.exists():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        # A read-only home (some containers): build per machine under the temp dir instead.
        target = Path(tempfile.gettempdir()) / "boundsweep-kernels" / target.name
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        source = Path(tmp) / f"{stem}.c"
        source.write_text(source_text)
        built = Path(tmp) / f"{stem}.so"
        subprocess.run(
            [compiler, *_FLAGS, "-o", str(built), str(source)],
            check=True,
            capture_output=True,
            text=True,
        )
        # Atomic, so concurrent workers building at once never load a half-written file.
        os.replace(built, target)
    return target


class KernelUnavailable(Exception):
    """A kernel cannot be built or loaded here; the message says why in one line."""


def compile_library(source_text: str = _SOURCE, stem: str = "adabound") -> ctypes.CDLL:
    """``source_text`` built with the system C compiler (once per machine) and loaded: the one
    way every C kernel here is compiled.

    Raises:
        KernelUnavailable: No compiler on ``PATH`` (or ``$CC``), or the build failed.
    """
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise KernelUnavailable("no C compiler (cc/gcc) on PATH")
    try:
        return ctypes.CDLL(str(_build(compiler, source_text, stem)))
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        raise KernelUnavailable(f"building the kernel failed: {detail.strip()[:500]}") from None


def _load() -> ctypes.CDLL | None:
    global _library, _unavailable
    if _library is not None or _unavailable is not None:
        return _library
    try:
        library = compile_library()
    except KernelUnavailable as error:
        _unavailable = str(error)
    else:
        for name in _KERNELS.values():
            kernel = getattr(library, name)
            kernel.restype = None
            kernel.argtypes = (
                [ctypes.c_void_p] * 5
                + [ctypes.c_int64]
                + [ctypes.c_double] * 8
                + [ctypes.c_int, ctypes.c_int]
            )
        _library = library
    if _unavailable is not None:
        _log.warning("fused AdaBound unavailable, using the per-tensor loop: %s", _unavailable)
    return _library


def available() -> bool:
    """Whether the fused kernel can run in this process (building it on first call)."""
    return _load() is not None


def unavailable_reason() -> str | None:
    """Why the fused kernel cannot run, or ``None`` if it can (or was not tried yet)."""
    return _unavailable


def warm_up() -> float:
    """Build (first time on this machine) or load the fused kernel now, not on the first step.

    Call it once per process (e.g. at a worker's start) so that no step pays it. Returns the
    seconds it took.
    """
    start = time.perf_counter()
    _load()
    return time.perf_counter() - start


def supports(tensor_lists: list[list[Tensor]]) -> bool:
    """Whether every tensor is a contiguous float32/float64 CPU tensor of one dtype."""
    first = tensor_lists[0][0]
    if first.device.type != "cpu" or first.dtype not in (torch.float32, torch.float64):
        return False
    return all(
        t.device.type == "cpu" and t.dtype == first.dtype and t.is_contiguous()
        for tensors in tensor_lists
        for t in tensors
    )


def fused_adabound(
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
    """The update of ``_single_tensor_adabound``, one fused C loop per tensor."""
    library = _load()
    if library is None:
        raise RuntimeError(f"The fused AdaBound kernel is unavailable: {_unavailable}")
    if not params:
        return
    kernel = getattr(library, _KERNELS[(params[0].dtype, max_exp_avg_sqs is not None)])
    threads = torch.get_num_threads()
    for i, param in enumerate(params):
        count = param.numel()
        if count == 0:
            continue
        kernel(
            param.data_ptr(),
            grads[i].data_ptr(),
            exp_avgs[i].data_ptr(),
            exp_avg_sqs[i].data_ptr(),
            max_exp_avg_sqs[i].data_ptr() if max_exp_avg_sqs is not None else None,
            count,
            beta1,
            beta2,
            scalars.step_size,
            scalars.lower,
            scalars.upper,
            eps,
            weight_decay,
            scalars.decay,
            int(decoupled_weight_decay),
            threads,
        )
