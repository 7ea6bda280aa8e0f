"""The stacked MLP's loss: torch's own log-softmax, gradient and mean NLL, bit for bit, by the
batched kernel where it matches torch's CPU kernels and by those kernels themselves elsewhere.

tests/test_every_cpu.py runs this module under each CPU capability torch can take here
(AVX-512, AVX2, DEFAULT) and without a C compiler, so every path is checked on one machine.
"""

from __future__ import annotations

import shutil

import pytest
import torch
from boundsweep.studies._training import _batched_loss
from boundsweep.studies._training._batched_mlp import StackedMLP
from torch.nn import functional as F


def test_the_kernel_runs_exactly_where_torchs_kernels_are_avx512_or_avx2() -> None:
    capability = torch.backends.cpu.get_cpu_capability()
    expected = capability in ("AVX512", "AVX2") and bool(shutil.which("cc") or shutil.which("gcc"))
    assert _batched_loss.available() == expected, (capability, _batched_loss._unavailable)
    if not expected:  # StackedMLP then calls torch's kernels (checked below all the same)
        assert _batched_loss._unavailable


def _stacked_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What StackedMLP computes for these logits: the kernel where it runs, else torch's."""
    mlp = StackedMLP([], [])
    if mlp._fast_loss(logits):
        logp, grad = torch.empty_like(logits), torch.empty_like(logits)
        share = _batched_loss.share_of(labels.shape[-1])
        _batched_loss.log_softmax_nll_grad(logits, labels, share, logp, grad)
        losses = _batched_loss.nll_means(logp, labels, torch.empty(len(labels)))
        return logp, grad, losses
    assert not _batched_loss.available() or logits.shape[-1] > _batched_loss.MAX_CLASSES
    logp, grad = _batched_loss.reference(logits, labels)
    return logp, grad, torch.stack([F.nll_loss(logp[k], labels[k]) for k in range(len(labels))])


def _alone(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each model alone, as train() computes it: autograd through F.cross_entropy."""
    logps, grads, losses = [], [], []
    for k in range(len(labels)):
        x = logits[k].clone().requires_grad_()
        loss = F.cross_entropy(x, labels[k])
        loss.backward()
        logps.append(torch.log_softmax(x.detach(), -1))
        grads.append(x.grad)
        losses.append(loss.detach())
    return torch.stack(logps), torch.stack(grads), torch.stack(losses)


@pytest.mark.parametrize("classes", [2, 7, 8, 10, 15])
@pytest.mark.parametrize("scale", [1e-4, 1.0, 40.0, 1e4])
def test_random_rows_bit_for_bit(classes: int, scale: float) -> None:
    generator = torch.Generator().manual_seed(classes)
    for models, batch in ((1, 1), (3, 17), (27, 100), (9, 32), (2, 301)):  # partial blocks too
        logits = torch.randn(models, batch, classes, generator=generator) * scale
        labels = torch.randint(0, classes, (models, batch), generator=generator)
        expected = _alone(logits, labels)
        for got, want in zip(_stacked_loss(logits, labels), expected, strict=True):
            assert torch.equal(got, want), (models, batch)
        # torch's kernels themselves (the fallback) give the same, whatever runs above
        logp, grad = _batched_loss.reference(logits, labels)
        assert torch.equal(logp, expected[0]) and torch.equal(grad, expected[1])


def test_extreme_rows_as_torch_gives_them() -> None:
    rows = torch.tensor(
        [
            [0.0] * 10,  # ties everywhere
            [-0.0, 0.0] * 5,  # signed zeros
            [3e38, -3e38] + [0.0] * 8,  # near float32's range
            [float("-inf")] + [1.0] * 9,  # an impossible class
            [1e-38] * 10,  # subnormal-scale
            [float("nan")] + [0.0] * 9,  # a diverged model's row
            [float("inf")] + [0.0] * 9,
            [0.0] * 8 + [float("nan"), 0.0],  # a NaN in AVX2's tail
        ]
    ).unsqueeze(0)
    labels = torch.tensor([[0, 1, 1, 2, 9, 3, 0, 8]])
    for got, want in zip(_stacked_loss(rows, labels), _alone(rows, labels), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)
