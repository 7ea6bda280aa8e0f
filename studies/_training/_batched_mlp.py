"""The stacked MLP's forward and backward written out, for ``train_batched`` on the CPU.

``vmap`` over ``functional_call`` turns each of the K models' ``Linear`` layers into a batched
matrix product plus a broadcast bias add, and autograd then records and replays every one of
them with its own temporaries: half of a step went there. For the MLP tasks (``Linear``/
``ReLU`` stacks, the ``batchable`` ones) the whole step is a handful of batched products, so it
is written here once: ``baddbmm`` with the bias folded in forward, ``bmm`` into preallocated
gradients backward. Every op is the kernel autograd runs for one model alone (``addmm``'s
batched twin, ``log_softmax``, ``nll_loss``, ``log_softmax``'s backward, ReLU's
``threshold_backward``), so each model's loss and gradients equal its ``train()`` ones bit for
bit (measured on the three MLP tasks; the tests check it). CUDA keeps ``vmap`` under bf16
autocast, as ``train()`` runs there.
"""

from __future__ import annotations

import torch
from boundsweep.studies._training import _batched_loss
from torch import Tensor, nn
from torch.nn import functional as F


class StackedMLP:
    """Forward, loss and gradients of K stacked ``Linear``/``ReLU`` models, without autograd.

    Args:
        weights: Each layer's stacked weight, ``[K, out, in]``, in order.
        biases: Each layer's stacked bias, ``[K, out]``.

    The gradients are written into each parameter's ``.grad`` (allocated once here), where
    ``BatchedOptimizer.step`` reads them.
    """

    def __init__(self, weights: list[Tensor], biases: list[Tensor]) -> None:
        self.weights, self.biases = weights, biases
        self._loss_out: tuple[Tensor, Tensor, Tensor] | None = None
        for param in (*weights, *biases):
            param.grad = torch.zeros_like(param)

    def _fast_loss(self, h: Tensor) -> bool:
        return (
            h.dtype == torch.float32
            and h.device.type == "cpu"
            and h.shape[-1] <= _batched_loss.MAX_CLASSES
            and _batched_loss.available()
        )

    def _loss_buffers(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The log-softmax's, its gradient's and the losses' tensors for logits shaped
        ``h``, kept."""
        if self._loss_out is None or self._loss_out[0].shape != h.shape:
            self._loss_out = (torch.empty_like(h), torch.empty_like(h), h.new_empty(len(h)))
        return self._loss_out

    @classmethod
    def of(cls, skeleton: nn.Module, params: dict[str, Tensor]) -> StackedMLP | None:
        """The stacked form of ``skeleton``'s parameters if it is a plain MLP, else ``None``.

        A plain MLP: an ``nn.Sequential`` of ``Linear`` layers with biases, a ``ReLU``
        (not in place) after each but the last, and nothing else.
        """
        if not isinstance(skeleton, nn.Sequential) or len(skeleton) % 2 != 1:
            return None
        weights, biases = [], []
        for index, layer in enumerate(skeleton):
            if index % 2 == 1:
                if type(layer) is not nn.ReLU or layer.inplace:
                    return None
                continue
            if type(layer) is not nn.Linear or layer.bias is None:
                return None
            weights.append(params[f"{index}.weight"])
            biases.append(params[f"{index}.bias"])
        if len(weights) + len(biases) != len(params):
            return None
        return cls(weights, biases)

    @torch.no_grad()
    def logits(self, x: Tensor) -> Tensor:
        """Every model's logits on the same inputs ``x`` (``[N, in]``): ``[K, N, classes]``."""
        h = x.expand(self.weights[0].shape[0], *x.shape)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            if i < len(self.weights) - 1:
                h.clamp_min_(0)
        return h

    @torch.no_grad()
    def loss_and_grads(self, x: Tensor, y: Tensor) -> Tensor:
        """Each model's mean cross-entropy on its own batch; its gradients into ``.grad``.

        Args:
            x: ``[K, B, in]``: model ``k``'s batch is ``x[k]``.
            y: ``[K, B]`` labels.

        Returns:
            The K losses, ``[K]``.
        """
        inputs = [x]
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            if i < last:
                h.clamp_min_(0)
                inputs.append(h)
        # The loss and its gradient as the very kernels autograd runs for one model compute
        # them (log_softmax, nll_loss's mean, log_softmax's backward), bit for bit: those
        # kernels, or _batched_loss's, which computes what they do 16 (AVX-512) or 8 (AVX2) rows
        # at a time.
        if self._fast_loss(h):
            logp, grad, losses = self._loss_buffers(h)
            _batched_loss.log_softmax_nll_grad(h, y, _batched_loss.share_of(y.shape[1]), logp, grad)
            _batched_loss.nll_means(logp, y, losses)
        else:
            logp, grad = _batched_loss.reference(h, y)
            losses = torch.stack([F.nll_loss(logp[k], y[k]) for k in range(len(y))])
        for i in range(last, -1, -1):
            w = self.weights[i]
            torch.bmm(grad.transpose(1, 2), inputs[i], out=w.grad)
            torch.sum(grad, 1, out=self.biases[i].grad)
            if i > 0:
                # ReLU's backward, as autograd runs it: the gradient where its output > 0.
                grad = torch.ops.aten.threshold_backward(torch.bmm(grad, w), inputs[i], 0.0)
        return losses
