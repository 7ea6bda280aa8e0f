"""The batched cross-entropy kernel gives torch's own log-softmax, gradient and mean NLL."""

from __future__ import annotations

import shutil

import pytest
import torch
from boundsweep.studies._training import _batched_loss
from torch.nn import functional as F


def test_it_runs_exactly_where_torchs_kernels_are_the_avx512_ones() -> None:
    expected = torch.backends.cpu.get_cpu_capability() == "AVX512" and bool(
        shutil.which("cc") or shutil.which("gcc")
    )
    assert _batched_loss.available() == expected, _batched_loss._unavailable
    if not expected:  # StackedMLP then calls torch's kernels (the training tests cover it)
        assert _batched_loss._unavailable


def _outputs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    logp, grad = torch.empty_like(logits), torch.empty_like(logits)
    share = _batched_loss.share_of(labels.shape[-1])
    _batched_loss.log_softmax_nll_grad(logits, labels, share, logp, grad)
    losses = _batched_loss.nll_means(logp, labels, torch.empty(len(labels)))
    return logp, grad, losses


def _expected(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    logp, grad = _batched_loss.reference(logits, labels)
    losses = torch.stack([F.nll_loss(logp[k], labels[k]) for k in range(len(labels))])
    return logp, grad, losses


@pytest.mark.parametrize("classes", [2, 10, 15])
@pytest.mark.parametrize("scale", [1e-4, 1.0, 40.0, 1e4])
def test_random_rows_bit_for_bit(classes: int, scale: float) -> None:
    if not _batched_loss.available():
        pytest.fail(f"kernel unavailable here: {_batched_loss._unavailable}")
    generator = torch.Generator().manual_seed(classes)
    for models, batch in ((1, 1), (3, 17), (27, 100), (9, 32), (2, 301)):  # 16-row tails too
        logits = torch.randn(models, batch, classes, generator=generator) * scale
        labels = torch.randint(0, classes, (models, batch), generator=generator)
        for got, want in zip(_outputs(logits, labels), _expected(logits, labels), strict=True):
            assert torch.equal(got, want), (models, batch)


def test_extreme_rows_as_torch_gives_them() -> None:
    if not _batched_loss.available():
        pytest.fail(f"kernel unavailable here: {_batched_loss._unavailable}")
    rows = torch.tensor(
        [
            [0.0] * 10,  # ties everywhere
            [-0.0, 0.0] * 5,  # signed zeros
            [3e38, -3e38] + [0.0] * 8,  # near float32's range
            [float("-inf")] + [1.0] * 9,  # an impossible class
            [1e-38] * 10,  # subnormal-scale
            [float("nan")] + [0.0] * 9,  # a diverged model's row
            [float("inf")] + [0.0] * 9,
        ]
    ).unsqueeze(0)
    labels = torch.tensor([[0, 1, 1, 2, 9, 3, 0]])
    for got, want in zip(_outputs(rows, labels), _expected(rows, labels), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)
