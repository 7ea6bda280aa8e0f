"""The stacked MLP's cross-entropy on the CPU: log-softmax and its gradient, 16 or 8 rows at a time.

``StackedMLP.loss_and_grads`` needs, for each of the K x B rows of logits, the log-softmax
(for the loss) and the gradient of the mean cross-entropy through it. torch's CPU kernels
for a row of 10 classes (the MLP tasks' width) work one row at a time on one vector (AVX-512:
16 floats, partly filled) or on one and a tail (AVX2: 8 floats): a third of a batched step
went there, the same per model as alone.

This kernel computes exactly what those kernels compute, each row across 16 (AVX-512) or 8
(AVX2) rows at once (lane r is row r), with the very functions they call: torch's own SLEEF
``expf16_u10``/``logf16_u10`` or ``expf8_u10``/``logf8_u10``, looked up in ``libtorch_cpu``
at load time, and the same operations in the same order, with contraction off:

- ``max``: ``vec::reduce_all`` of ``vec::maximum`` (a NaN propagated as it does): left to
  right over a partial vector (AVX-512; AVX2 under 8 classes), else folded into the 8 lanes
  of one vector, the tail into the first lanes, then across lanes as torch's shuffles do;
- ``sum``: the same reduction of ``exp(x_j - max)``;
- ``logp_j = (x_j - max) - log(sum)``;
- the gradient of ``nll_loss``'s mean: ``g_j = -1/B`` at the label, 0 elsewhere; then
  ``_log_softmax_backward_data``'s ``g_j - exp(logp_j) * (g_0 + g_1 + ...)``, the multiply
  and subtract as one fused multiply-add (as torch's build compiles that line).

So each model's loss and gradients stay its ``train()`` ones bit for bit. It is used only
where torch's CPU kernels are the AVX-512 or AVX2 ones (``torch.backends.cpu.
get_cpu_capability()``, which ``ATEN_CPU_CAPABILITY`` can lower), on a tested torch release
(``optimizers._torch_range``), for rows of at most ``MAX_CLASSES``, and only after it has
given torch's own results on a few thousand random rows when it loads (a torch built another
way would differ, and then is used instead). Anywhere else (torch's ``DEFAULT`` kernels, ARM,
no C compiler) ``StackedMLP`` calls torch's kernels themselves (``reference``): exact too.
The tests compare both on random and extreme rows and whole runs against ``train()``, and
``tests/test_every_cpu.py`` runs them under each capability.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["MAX_CLASSES", "available", "log_softmax_nll_grad", "nll_means", "reference", "share_of"]

_log = logging.getLogger(__name__)

MAX_CLASSES = 15
"""The widest row the kernel takes: under an AVX-512 vector (16 floats), whose rows torch
reduces as one partial vector, and under two AVX2 vectors (one and a tail)."""

_SOURCE = r"""
#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* Which widths this build has: 16 (AVX-512) and 8 (AVX2), as bits 1 and 2. */
int compiled(void) {
    int widths = 0;
#ifdef __AVX512F__
    widths |= 1;
#endif
#if defined(__AVX2__) && defined(__FMA__)
    widths |= 2;
#endif
    return widths;
}

static int width = 0;
static void *vexp = 0, *vlog = 0;

void set_functions(int lanes, void *exp_fn, void *log_fn) {
    width = lanes;
    vexp = exp_fn;
    vlog = log_fn;
}

#ifdef __AVX512F__
typedef __m512 (*vec16_fn)(__m512);

/* vec::maximum: the larger, or NaN where either is NaN. */
static inline __m512 maximum16(__m512 a, __m512 b) {
    __m512 max = _mm512_max_ps(a, b);
    __mmask16 nan = _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q);
    return _mm512_castsi512_ps(_mm512_mask_set1_epi32(_mm512_castps_si512(max), nan, 0x7FC00000));
}

/* rows x classes logits h (row-major), labels y; writes logp and the gradient of the mean
   cross-entropy (share = -1/B at the label) through log-softmax, both row-major. A row
   shorter than 16 is one partial vector to torch: every reduction runs left to right. */
__attribute__((optimize("fp-contract=off")))
static void rows16(const float *h, const int64_t *y, int64_t rows, int64_t classes,
                   float share, float *logp, float *grad) {
    const vec16_fn exp16 = (vec16_fn)vexp, log16 = (vec16_fn)vlog;
    float x[16 * 16], out[16 * 16], g[16 * 16];
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        int64_t n = rows - r0 < 16 ? rows - r0 : 16;
        memset(x, 0, sizeof(x));
        for (int64_t r = 0; r < n; ++r)
            for (int64_t j = 0; j < classes; ++j) x[j * 16 + r] = h[(r0 + r) * classes + j];
        __m512 m = _mm512_loadu_ps(x);
        for (int64_t j = 1; j < classes; ++j) m = maximum16(m, _mm512_loadu_ps(x + j * 16));
        __m512 sum = exp16(_mm512_sub_ps(_mm512_loadu_ps(x), m));
        for (int64_t j = 1; j < classes; ++j)
            sum = _mm512_add_ps(sum, exp16(_mm512_sub_ps(_mm512_loadu_ps(x + j * 16), m)));
        __m512 log_sum = log16(sum);
        for (int64_t j = 0; j < classes; ++j)
            _mm512_storeu_ps(out + j * 16,
                             _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + j * 16), m), log_sum));
        /* the nll gradient rows and their sums, left to right */
        memset(g, 0, sizeof(g));
        for (int64_t r = 0; r < n; ++r)
            if (y[r0 + r] >= 0 && y[r0 + r] < classes) g[y[r0 + r] * 16 + r] = share;
        __m512 gsum = _mm512_loadu_ps(g);
        for (int64_t j = 1; j < classes; ++j) gsum = _mm512_add_ps(gsum, _mm512_loadu_ps(g + j * 16));
        for (int64_t j = 0; j < classes; ++j) {
            __m512 e = exp16(_mm512_loadu_ps(out + j * 16));
            _mm512_storeu_ps(g + j * 16, _mm512_fnmadd_ps(e, gsum, _mm512_loadu_ps(g + j * 16)));
        }
        for (int64_t r = 0; r < n; ++r)
            for (int64_t j = 0; j < classes; ++j) {
                logp[(r0 + r) * classes + j] = out[j * 16 + r];
                grad[(r0 + r) * classes + j] = g[j * 16 + r];
            }
    }
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
typedef __m256 (*vec8_fn)(__m256);

/* AVX2's vec::maximum: the larger, or all ones (a NaN) where either is NaN. */
static inline __m256 maximum8(__m256 a, __m256 b) {
    return _mm256_or_ps(_mm256_max_ps(a, b), _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
}

static inline __m256 add8(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }

/* vec::reduce_all over one row of `classes` values (lane r of v[j] is row r's value j), in
   torch's order for 8-float vectors: a row shorter than 8 is one partial vector reduced left
   to right; a longer one is folded into 8 accumulators (the tail into the first ones), then
   reduced across them as vec_reduce_all's shuffles do (lanes i and i+4, then i and i+2, then
   0 and 1). */
#define REDUCE8(NAME, OP)                                                                    \
static inline __m256 NAME(const __m256 *v, int64_t classes) {                                \
    if (classes < 8) {                                                                       \
        __m256 acc = v[0];                                                                   \
        for (int64_t j = 1; j < classes; ++j) acc = OP(acc, v[j]);                           \
        return acc;                                                                          \
    }                                                                                        \
    __m256 acc[8];                                                                           \
    for (int j = 0; j < 8; ++j) acc[j] = v[j];                                               \
    for (int64_t j = 8; j < classes; ++j) acc[j % 8] = OP(acc[j % 8], v[j]);                 \
    __m256 t0 = OP(acc[0], acc[4]), t1 = OP(acc[1], acc[5]);                                 \
    __m256 t2 = OP(acc[2], acc[6]), t3 = OP(acc[3], acc[7]);                                 \
    return OP(OP(t0, t2), OP(t1, t3));                                                       \
}
REDUCE8(max_of8, maximum8)
REDUCE8(sum_of8, add8)

/* As rows16, for torch's AVX2 kernels: 8 rows at a time, up to 15 classes. */
__attribute__((optimize("fp-contract=off")))
static void rows8(const float *h, const int64_t *y, int64_t rows, int64_t classes,
                  float share, float *logp, float *grad) {
    const vec8_fn exp8 = (vec8_fn)vexp, log8 = (vec8_fn)vlog;
    float x[16 * 8], out[16 * 8], g[16 * 8];
    __m256 v[16];
    for (int64_t r0 = 0; r0 < rows; r0 += 8) {
        int64_t n = rows - r0 < 8 ? rows - r0 : 8;
        memset(x, 0, sizeof(x));
        for (int64_t r = 0; r < n; ++r)
            for (int64_t j = 0; j < classes; ++j) x[j * 8 + r] = h[(r0 + r) * classes + j];
        for (int64_t j = 0; j < classes; ++j) v[j] = _mm256_loadu_ps(x + j * 8);
        __m256 m = max_of8(v, classes);
        for (int64_t j = 0; j < classes; ++j) v[j] = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j * 8), m));
        __m256 log_sum = log8(sum_of8(v, classes));
        for (int64_t j = 0; j < classes; ++j)
            _mm256_storeu_ps(out + j * 8,
                             _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j * 8), m), log_sum));
        memset(g, 0, sizeof(g));
        for (int64_t r = 0; r < n; ++r)
            if (y[r0 + r] >= 0 && y[r0 + r] < classes) g[y[r0 + r] * 8 + r] = share;
        for (int64_t j = 0; j < classes; ++j) v[j] = _mm256_loadu_ps(g + j * 8);
        __m256 gsum = sum_of8(v, classes);
        for (int64_t j = 0; j < classes; ++j) {
            __m256 e = exp8(_mm256_loadu_ps(out + j * 8));
            _mm256_storeu_ps(g + j * 8, _mm256_fnmadd_ps(e, gsum, v[j]));
        }
        for (int64_t r = 0; r < n; ++r)
            for (int64_t j = 0; j < classes; ++j) {
                logp[(r0 + r) * classes + j] = out[j * 8 + r];
                grad[(r0 + r) * classes + j] = g[j * 8 + r];
            }
    }
}
#endif

void log_softmax_nll_grad(const float *h, const int64_t *y, int64_t rows, int64_t classes,
                          float share, float *logp, float *grad) {
#ifdef __AVX512F__
    if (width == 16) rows16(h, y, rows, classes, share, logp, grad);
#endif
#if defined(__AVX2__) && defined(__FMA__)
    if (width == 8) rows8(h, y, rows, classes, share, logp, grad);
#endif
}

/* Each model's mean NLL of its batch rows, summed as nll_loss's CPU kernel sums (float
   partial sums over 8 levels of 16, carried up at every 16th row, then added in order). */
void nll_mean(const float *logp, const int64_t *y, int64_t models, int64_t batch,
              int64_t classes, float *losses) {
    int power = 4;
    int64_t bits = 0;
    while (((int64_t)1 << bits) < batch) ++bits;  /* ceil(log2(batch)) */
    if (bits / 8 > power) power = (int)(bits / 8);
    const int64_t mask = ((int64_t)1 << power) - 1;
    for (int64_t k = 0; k < models; ++k) {
        float partial[8] = {0};
        for (int64_t b = 0; b < batch; ++b) {
            const int64_t row = k * batch + b;
            partial[0] -= logp[row * classes + y[row]];
            for (int j = 0; j + 1 < 8; ++j) {
                if ((b & (mask << (j * power))) != 0) break;
                partial[j + 1] += partial[j];
                partial[j] = 0;
            }
        }
        float total = 0;
        for (int j = 0; j < 8; ++j) total += partial[j];
        losses[k] = total / (float)batch;
    }
}
"""

# torch's CPU capability -> its vectors' floats, this build's bit for them, torch's own SLEEF
# exp and log of that width (what ``Vectorized<float>::exp``/``log`` call).
_WIDTHS = {
    "AVX512": (16, 1, ("Sleef_expf16_u10", "Sleef_logf16_u10")),
    "AVX2": (8, 2, ("Sleef_expf8_u10", "Sleef_logf8_u10")),
}

_library: ctypes.CDLL | None = None
_unavailable: str | None = None


def _load() -> ctypes.CDLL | None:
    global _library, _unavailable
    if _library is not None or _unavailable is not None:
        return _library
    from boundsweep.optimizers import _fused, _torch_range

    try:
        untested = _torch_range.untested_reason()
        if untested is not None:
            raise _fused.KernelUnavailable(untested)
        capability = torch.backends.cpu.get_cpu_capability()
        if capability not in _WIDTHS:
            raise _fused.KernelUnavailable(f"torch's CPU kernels are {capability}")
        lanes, bit, names = _WIDTHS[capability]
        library = _fused.compile_library(_SOURCE, "batched_loss")
        if not library.compiled() & bit:
            raise _fused.KernelUnavailable(f"the C compiler does not target {capability} here")
        torch_cpu = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        functions = [ctypes.cast(getattr(torch_cpu, name), ctypes.c_void_p).value for name in names]
    except (_fused.KernelUnavailable, OSError, AttributeError) as error:
        _unavailable = str(error)
    else:
        library.set_functions.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        library.set_functions(lanes, *functions)
        kernel = library.log_softmax_nll_grad
        kernel.restype = None
        kernel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                           ctypes.c_float, ctypes.c_void_p, ctypes.c_void_p]  # fmt: skip
        library.nll_mean.restype = None
        library.nll_mean.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                     ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]  # fmt: skip
        _library = library
        if not _agrees_with_torch():
            _library = None
            _unavailable = "it does not give torch's results bit for bit here"
    if _unavailable is not None and _torch_range.untested_reason() is None:
        # (an untested torch is said once, by _torch_range, for the whole batched path)
        _log.info("batched loss kernel not used, torch's kernels instead: %s", _unavailable)
    return _library


def reference(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """What torch's kernels give (log-softmax, and the mean NLL's gradient through it): the
    kernels autograd runs for ``F.cross_entropy``."""
    logp = torch.log_softmax(logits, -1)
    nll_grad = torch.zeros_like(logp)
    share = torch.tensor(-1.0 / labels.shape[-1], dtype=logits.dtype)
    nll_grad.scatter_(-1, labels.unsqueeze(-1), share.expand(*labels.shape, 1))
    grad = torch.ops.aten._log_softmax_backward_data(nll_grad, logp, logp.dim() - 1, logp.dtype)
    return logp, grad


def _agrees_with_torch() -> bool:
    generator = torch.Generator().manual_seed(0)
    for classes, scale in ((10, 1.0), (10, 30.0), (3, 1e-3), (15, 5.0)):
        logits = torch.randn(7, 37, classes, generator=generator) * scale
        labels = torch.randint(0, classes, (7, 37), generator=generator)
        logp, grad = torch.empty_like(logits), torch.empty_like(logits)
        log_softmax_nll_grad(logits, labels, share_of(37), logp, grad)
        expected = reference(logits, labels)
        if not (torch.equal(logp, expected[0]) and torch.equal(grad, expected[1])):
            return False
        losses = nll_means(logp, labels, torch.empty(7))
        expected_losses = torch.stack([F.nll_loss(logp[k], labels[k]) for k in range(7)])
        if not torch.equal(losses, expected_losses):
            return False
    return True


def nll_means(logp: Tensor, labels: Tensor, out: Tensor) -> Tensor:
    """Each model's ``F.nll_loss(logp[k], labels[k])`` (the mean), summed in the order that
    kernel sums, into ``out`` (``[K]`` float32).

    Args:
        logp: ``[K, B, classes]`` float32, contiguous (a log-softmax).
        labels: ``[K, B]`` int64, contiguous, each in range.
        out: ``[K]`` float32, contiguous.
    """
    library = _library if _library is not None else _load()
    if library is None:
        raise RuntimeError(f"The batched loss kernel is unavailable: {_unavailable}")
    models, batch, classes = logp.shape
    assert logp.dtype == torch.float32 and logp.is_contiguous() and labels.is_contiguous()
    assert labels.dtype == torch.int64 and labels.shape == (models, batch)
    assert out.dtype == torch.float32 and out.shape == (models,) and out.is_contiguous()
    library.nll_mean(logp.data_ptr(), labels.data_ptr(), models, batch, classes, out.data_ptr())
    return out


def share_of(batch: int) -> float:
    """The mean NLL's gradient at each label of a ``batch``-row mean, as float32."""
    return float(torch.tensor(-1.0 / batch, dtype=torch.float32))


def available() -> bool:
    """Whether the kernel runs here: torch's AVX-512 or AVX2 CPU kernels, a C compiler that
    targets them, a tested torch release (``optimizers._torch_range``)."""
    return _load() is not None


def log_softmax_nll_grad(
    logits: Tensor, labels: Tensor, share: float, logp: Tensor, grad: Tensor
) -> None:
    """``logp = log_softmax(logits, -1)`` and ``grad``, the gradient of the mean NLL of
    ``labels`` (``share`` = -1/B) with respect to ``logits``, into the given tensors.

    Args:
        logits: ``[..., classes]`` float32, contiguous, ``classes <= MAX_CLASSES``.
        labels: The matching ``[...]`` int64 class indices (each in range).
        share: The mean's gradient at each label, as a float32 (``-1/B``).
        logp, grad: Outputs shaped as ``logits``, contiguous.
    """
    library = _library if _library is not None else _load()
    if library is None:
        raise RuntimeError(f"The batched loss kernel is unavailable: {_unavailable}")
    classes = logits.shape[-1]
    assert logits.dtype == torch.float32 and logits.is_contiguous() and classes <= MAX_CLASSES
    assert labels.dtype == torch.int64 and labels.is_contiguous()
    assert labels.numel() * classes == logits.numel()
    assert logp.is_contiguous() and grad.is_contiguous()
    library.log_softmax_nll_grad(
        logits.data_ptr(), labels.data_ptr(), labels.numel(), classes, share,
        logp.data_ptr(), grad.data_ptr(),
    )  # fmt: skip
