"""The stacked MLP's forward and backward written out, for ``train_batched`` on the CPU.

``vmap`` over ``functional_call`` turns each of the K models' ``Linear`` layers into a batched
matrix product plus a broadcast bias add, and autograd then records and replays every one of
them with its own temporaries. For the MLP tasks (``Linear``/``ReLU`` stacks, the
``batchable`` ones) the whole step is a handful of batched products, so it is written here
once: ``baddbmm`` with the bias folded in forward, ``bmm`` into preallocated gradients
backward, and the mean cross-entropy's gradient in closed form. Each op is the one autograd
would run for a single model, in the same order (``softmax / B`` with ``1 / B`` taken off at
the label, as ``log_softmax``'s backward of ``nll_loss``'s gives; ReLU's mask where the
output is positive), so every model gets its ``train()`` gradient to float32 rounding (the
tests hold it to that, model by model). CUDA keeps ``vmap`` under bf16 autocast, as
``train()`` runs there.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


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
        for param in (*weights, *biases):
            param.grad = torch.zeros_like(param)

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
        logp = _log_softmax(h)
        target = y.unsqueeze(2)
        picked = logp.gather(2, target)
        # nll_loss's mean: the sum over the batch, divided by its size.
        losses = picked.squeeze(2).sum(1).neg_().div_(y.shape[1])
        # d loss / d logits = softmax / B, less 1 / B at the label.
        share = torch.tensor(1.0 / y.shape[1], dtype=h.dtype)
        grad = logp.exp_().mul_(share)
        grad.scatter_add_(2, target, (-share).expand_as(picked))
        for i in range(last, -1, -1):
            w = self.weights[i]
            torch.bmm(grad.transpose(1, 2), inputs[i], out=w.grad)
            torch.sum(grad, 1, out=self.biases[i].grad)
            if i > 0:
                # ReLU's backward, as autograd runs it: the gradient where its output > 0.
                grad = torch.ops.aten.threshold_backward(torch.bmm(grad, w), inputs[i], 0.0)
        return losses


def _log_softmax(logits: Tensor) -> Tensor:
    """``log_softmax`` over the last dimension, as ``aten`` computes it (less the maximum,
    less the log of the sum of exponentials), in whole-tensor ops: over ten classes torch's
    own kernel works row by row and takes 4-5x longer on K stacked batches."""
    shifted = logits - logits.amax(2, keepdim=True)
    return shifted.sub_(shifted.exp().sum(2, keepdim=True).log_())
