"""One optimizer step for K models at once, each with its own hyperparameters.

Batched trials (``studies.training.train_batched``) train K configurations of one arm as one
model whose every parameter has a leading model dimension: ``weight[k]`` is model ``k``'s.
``BatchedOptimizer`` steps all of them in one pass per tensor, with each model's
hyperparameters (``lr``, ``final_lr``, ``gamma``, ``beta1``, ``beta2``, ``eps``,
``weight_decay``, ``momentum``) held as float64 tensors of shape ``[K]``, so that model ``k``
moves exactly as the registry's optimizer would move it alone:

    sgdm      b = μ b + (g + λ θ);                     θ = θ - α b           (torch SGD)
    adam      m, v as Adam; d = √v / √(1-β2^t) + ε;     θ = θ - α/(1-β1^t) · m / d
    amsgrad   adam with v̂ = max(v̂, v) in d
    adamw     adam with θ = θ (1 - α λ) first instead of g + λ θ
    adagrad   s = s + g²;                               θ = θ - α g / (√s + ε)
    adabound, amsbound, adaboundw: as ``optimizers._functional`` (clipped step, its bounds)

The per-step scalars (bias corrections, bounds) are computed for all K models at once in
float64, as the single-model optimizers compute theirs. On CPU the element-wise update is one
C loop over each stacked tensor (``_batched_kernel``), which rounds where the single-model
kernels round: ``_fused``'s own bounded loop, and torch's fused SGD/Adam/AdamW op by op, with
the few elements torch's kernels leave to their scalar tail handed to those very kernels
(``_torch_tails``). So on CPU each model steps bit for bit as it would alone. That holds
where torch's CPU kernels are the AVX-512 or AVX2 ones on a tested torch release
(``kernel_matches_torch``); anywhere else on the CPU (torch's ``DEFAULT`` kernels, no C
compiler, another torch) each model is stepped by its own registry optimizer over its slices
(``"alone"``): the same bits, K small steps instead of one pass. On other devices the
reference below does it with broadcast torch ops, to float32 rounding (the tests hold each
to its standard, model by model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from boundsweep.optimizers import _batched_kernel, _torch_range
from boundsweep.optimizers._batched_kernel import KernelPlan
from boundsweep.optimizers._registry import REGISTRY
from torch import Tensor

__all__ = ["ALGORITHMS", "IMPLS", "BatchedOptimizer", "kernel_matches_torch"]

IMPLS = ("auto", "kernel", "alone", "reference")

Algorithm = Literal["bounded", "adam", "sgdm", "adagrad"]

#: How each registry optimizer steps: its family, AMS-style maximum, decoupled weight decay.
ALGORITHMS: dict[str, tuple[Algorithm, bool, bool]] = {
    "sgdm": ("sgdm", False, False),
    "adam": ("adam", False, False),
    "amsgrad": ("adam", True, False),
    "adamw": ("adam", False, True),
    "adagrad": ("adagrad", False, False),
    "adabound": ("bounded", False, False),
    "amsbound": ("bounded", True, False),
    "adaboundw": ("bounded", False, True),
}

# The per-model scalars handed to the kernel, in its order (see _batched_kernel).
_SCALARS = 10

# The width of torch's CPU vectors (``at::vec::Vectorized``) by its CPU capability.
_TORCH_VECTOR_BYTES = {"AVX512": 64, "AVX2": 32}


def kernel_matches_torch(capability: str | None = None) -> bool:
    """Whether the C kernel steps each model as its torch optimizer would, bit for bit, under
    torch's CPU ``capability`` (this process's by default): it builds here, torch is a tested
    release, and torch's kernels are the AVX-512 or AVX2 ones (whose vector width and fused
    multiply-adds the kernel follows; torch's ``DEFAULT`` kernels round without them)."""
    capability = torch.backends.cpu.get_cpu_capability() if capability is None else capability
    return (
        capability in _TORCH_VECTOR_BYTES
        and _torch_range.untested_reason() is None
        and _batched_kernel.available()
    )


class BatchedOptimizer:
    """Registry optimizer ``optimizer`` over K stacked models, one hyperparameter set each.

    Args:
        optimizer: A key of ``optimizers.REGISTRY`` (all of them are supported).
        params: The stacked parameters: each tensor's first dimension is the K models.
        hparams: One mapping of registry hyperparameters per model (defaults fill the rest),
            each validated as the registry validates a single model's.
        impl: ``"auto"``: on the CPU the C kernel where it matches torch's kernels
            (``kernel_matches_torch``), else ``"alone"``; the reference on other devices.
            ``"kernel"``, ``"alone"`` (each model stepped by its own registry optimizer over
            its slices: exact anywhere, slower) or ``"reference"``.

    Attributes:
        lr: Each model's current learning rate (float64, ``[K]``); a schedule multiplies it.
        base_lr: Each model's lr at construction: AdaBound's ``final_lr`` follows
            ``lr / base_lr`` as the single-model optimizer's does.
        steps: Steps taken (every model steps together).
    """

    def __init__(
        self,
        optimizer: str,
        params: Sequence[Tensor],
        hparams: Sequence[Mapping[str, float]],
        *,
        impl: str = "auto",
    ) -> None:
        if optimizer not in ALGORITHMS:
            raise ValueError(f"Unknown optimizer {optimizer!r} (valid: {', '.join(ALGORITHMS)})")
        if impl not in IMPLS:
            raise ValueError(f"Invalid impl: {impl!r} (valid: {', '.join(IMPLS)})")
        if not hparams:
            raise ValueError("hparams: need at least one model's hyperparameters")
        entry = REGISTRY[optimizer]
        values = [entry.validate(h) for h in hparams]
        self.models = len(values)
        self.params = list(params)
        for p in self.params:
            if p.dim() == 0 or p.shape[0] != self.models:
                raise ValueError(
                    f"params: every tensor needs a leading model dimension of {self.models}, "
                    f"got shape {tuple(p.shape)}"
                )
        self.optimizer = optimizer
        self.algorithm, self.ams, self.decoupled = ALGORITHMS[optimizer]
        self.hparams = {
            name: torch.tensor([v[name] for v in values], dtype=torch.float64)
            for name in entry.hyperparams
        }
        self.lr = self.hparams["lr"].clone()
        self.base_lr = self.hparams["lr"].clone()
        self.steps = 0
        self.impl = impl
        self._values = values
        self._alone: list[tuple[list[Tensor], torch.optim.Optimizer]] | None = None
        self.state: list[dict[str, Tensor]] = [{} for _ in self.params]
        self._plans: dict[int, KernelPlan | None] = {}
        self._tail_calls: tuple[list[float], list[Tensor | None], list] | None = None
        self._step_tensor = torch.zeros(())

    # --- the scalars of one step, for every model at once ----------------------------------

    def _scalars(self, step: int) -> Tensor:
        """``[K, 10]`` float64: each model's scalars of step ``step``, in the kernel's order."""
        h, lr, t = self.hparams, self.lr, float(step)
        zero = torch.zeros_like(lr)
        wd = h.get("weight_decay", zero)
        coupled = zero if self.decoupled else wd
        decay = 1.0 - lr * wd if self.decoupled else torch.ones_like(lr)
        if self.algorithm == "sgdm":
            columns = [h["momentum"], lr, coupled]
        elif self.algorithm == "adagrad":
            columns = [lr, h["eps"], coupled]
        else:
            beta1, beta2 = h["beta1"], h["beta2"]
            bias_correction1 = 1.0 - beta1**t
            bias_correction2 = 1.0 - beta2**t
            if self.algorithm == "adam":
                step_size = lr / bias_correction1
                columns = [
                    beta1,
                    beta2,
                    step_size,
                    bias_correction2.sqrt(),
                    h["eps"],
                    coupled,
                    decay,
                ]
            else:
                step_size = lr * bias_correction2.sqrt() / bias_correction1
                lower, upper = self._bounds(step)
                # _fused's flags: coupled decay (λ in the gradient), decoupled decay (θ x decay)
                has_decay = (wd != 0.0).to(lr.dtype)
                flags = [
                    zero if self.decoupled else has_decay,
                    has_decay if self.decoupled else zero,
                ]
                columns = [beta1, beta2, step_size, lower, upper, h["eps"], coupled, decay, *flags]
        columns += [zero] * (_SCALARS - len(columns))
        return torch.stack(columns, dim=1).contiguous()

    def _bounds(self, step: int) -> tuple[Tensor, Tensor]:
        """``bound_at(scaled_final_lr(final_lr, lr, base_lr), gamma, step)`` for every model:
        the same float64 operations in the same order, so the very same values."""
        final_lr, gamma, t = self.hparams["final_lr"], self.hparams["gamma"], float(step)
        scaled = torch.where(self.base_lr == 0.0, 0.0, final_lr * self.lr / self.base_lr)
        lower = scaled * (1.0 - 1.0 / (gamma * t + 1.0))
        upper = scaled * (1.0 + 1.0 / (gamma * t))
        return lower, upper

    def bounds(self) -> tuple[list[float], list[float]] | None:
        """Each model's (lower, upper) step-size bound at the current step, as
        ``optimizers.current_bounds`` gives a single model's; ``None`` for unbounded ones."""
        if self.algorithm != "bounded":
            return None
        lower, upper = self._bounds(max(self.steps, 1))
        return lower.tolist(), upper.tolist()

    # --- the step --------------------------------------------------------------------------

    def _buffers(self, index: int, param: Tensor) -> list[Tensor]:
        """The state tensors of one parameter, created on its first step."""
        state = self.state[index]
        names = {
            "sgdm": ["momentum_buffer"],
            "adagrad": ["sum"],
            "adam": ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if self.ams else []),
            "bounded": ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if self.ams else []),
        }[self.algorithm]
        for name in names:
            if name not in state:
                state[name] = torch.zeros_like(param, memory_format=torch.contiguous_format)
        return [state[name] for name in names]

    @torch.no_grad()
    def step(self) -> None:
        """Step every model once (a parameter without a gradient is left as it is)."""
        if self.impl == "auto":
            self.impl = self._choose()
        self.steps += 1
        if self.impl == "alone":
            self._step_alone()
            return
        scalars = self._scalars(self.steps)
        device_scalars: dict[torch.device, Tensor] = {}
        tails: list[tuple[Tensor, list[Tensor], int]] = []
        for index, param in enumerate(self.params):
            grad = param.grad
            if grad is None:
                continue
            plan = self._plans[index] if index in self._plans else self._plan(index)
            if plan is not None and plan.takes(grad):
                plan.run(grad, scalars)
                if plan.body < plan.n:
                    tails.append((param, plan.buffers, plan.body))
                continue
            buffers = self._buffers(index, param)
            if param.device not in device_scalars:
                device_scalars[param.device] = scalars.to(param.device)
            self._reference(param, grad, buffers, device_scalars[param.device])
        if tails:
            self._torch_tails(tails)

    def _choose(self) -> str:
        """What ``"auto"`` means for these parameters, chosen at the first step."""
        if any(p.device.type != "cpu" for p in self.params):
            return "reference"
        return "kernel" if kernel_matches_torch() else "alone"

    def _step_alone(self) -> None:
        """Each model stepped by its own registry optimizer, over views of its slice of every
        stacked parameter and gradient: what ``train()`` runs for it, so the same bits on any
        CPU and any torch (K optimizer steps instead of one pass). A frozen model (lr 0) is
        not stepped."""
        from boundsweep.optimizers._factories import build_optimizer

        if self._alone is None:
            self._alone = []
            for k, hparams in enumerate(self._values):
                views = [p.detach()[k] for p in self.params]
                self._alone.append((views, build_optimizer(self.optimizer, views, hparams)))
        for k, lr in enumerate(self.lr.tolist()):
            if lr == 0.0:
                continue
            views, optimizer = self._alone[k]
            for view, param in zip(views, self.params, strict=True):
                view.grad = None if param.grad is None else param.grad[k]
            for group in optimizer.param_groups:
                group["lr"] = lr  # a schedule's (MultiStepLR sets it so alone)
            optimizer.step()

    def _plan(self, index: int) -> KernelPlan | None:
        """Parameter ``index``'s kernel call, worked out on its first step and kept (its
        state tensors never move); ``None`` where the reference steps it."""
        param = self.params[index]
        buffers = self._buffers(index, param)
        plan = None
        if self._kernel_takes(param, buffers):
            plan = KernelPlan(self.algorithm, self.ams, param, buffers, self._vector_body(param))
        self._plans[index] = plan
        return plan

    def _vector_body(self, param: Tensor) -> int:
        """How many leading elements of each model's slice the C kernel updates.

        All of them, but for the optimizers that are torch's own when alone (SGD, Adam,
        AdamW, run by torch's fused CPU kernels): those kernels update a tensor in vectors of
        the CPU's width and its last ``numel % width`` elements in a scalar loop that rounds
        differently, so the kernel here stops at that tail and ``_torch_tails`` hands each
        model's tail to the very same torch kernel. Where the width is not known, torch takes
        the whole slice.
        """
        n = param[0].numel()
        if self.algorithm not in ("adam", "sgdm"):
            return n
        width = _TORCH_VECTOR_BYTES.get(torch.backends.cpu.get_cpu_capability())
        if width is None:
            return 0
        lanes = width // param.element_size()
        return n - n % lanes

    def _torch_tails(self, tails: list[tuple[Tensor, list[Tensor], int]]) -> None:
        """Each model's tail elements through torch's fused kernel, with its hyperparameters
        (one call per distinct set: a grid arm has a few, not K).

        The calls' tensor lists are built once and kept while the models' learning rates (a
        schedule, a frozen model) and the gradient tensors stay the same.
        """
        lrs, grads = self.lr.tolist(), [param.grad for param, _, _ in tails]
        cached = self._tail_calls
        if (
            cached is None
            or cached[0] != lrs
            or len(cached[1]) != len(grads)
            or any(a is not b for a, b in zip(cached[1], grads, strict=True))
        ):
            cached = self._tail_calls = (lrs, grads, self._tail_groups(tails, lrs))
        self._step_tensor.fill_(float(self.steps))
        for h, lr, views in cached[2]:
            params, grads = views[0], views[1]
            if self.algorithm == "sgdm":
                torch._fused_sgd_(
                    params, grads, views[2] if h["momentum"] != 0.0 else [],
                    weight_decay=h["weight_decay"],
                    momentum=h["momentum"], lr=lr, dampening=0.0, nesterov=False,
                    maximize=False, is_first_step=self.steps == 1,
                )  # fmt: skip
                continue
            fused = torch._fused_adamw_ if self.decoupled else torch._fused_adam_
            fused(
                params, grads, views[2], views[3], views[4] if self.ams else [],
                [self._step_tensor] * len(params), lr=lr, beta1=h["beta1"],
                beta2=h["beta2"], weight_decay=h["weight_decay"], eps=h["eps"],
                amsgrad=self.ams, maximize=False,
            )  # fmt: skip

    def _tail_groups(
        self, tails: list[tuple[Tensor, list[Tensor], int]], lrs: list[float]
    ) -> list[tuple[dict[str, float], float, list[list[Tensor]]]]:
        """(hyperparameters, lr, [params, grads, *states] tail views) per distinct set of
        the models' current ``lrs`` and other hyperparameters."""
        columns = {name: values.tolist() for name, values in self.hparams.items() if name != "lr"}
        groups: dict[tuple[float, ...], list[int]] = {}
        for model, lr in enumerate(lrs):
            if lr != 0.0:  # a frozen model (or lr 0) does not move
                key = (lr, *(column[model] for column in columns.values()))
                groups.setdefault(key, []).append(model)
        calls = []
        for models in groups.values():
            views: list[list[Tensor]] = [[], [], [], [], []]
            for param, buffers, body in tails:
                for model in models:
                    for j, tensor in enumerate([param, param.grad, *buffers]):
                        views[j].append(tensor[model].view(-1)[body:])
            h = {name: column[models[0]] for name, column in columns.items()}
            calls.append((h, lrs[models[0]], views))
        return calls

    def _kernel_takes(self, param: Tensor, buffers: list[Tensor]) -> bool:
        if self.impl == "reference":
            return False
        if not _batched_kernel.available():
            raise RuntimeError(
                f"The batched kernel is unavailable: {_batched_kernel.unavailable_reason()}"
            )
        return _batched_kernel.supports([param, param.grad, *buffers])

    def _reference(self, param: Tensor, grad: Tensor, buffers: list[Tensor], s: Tensor) -> None:
        """The readable update: each model's scalar broadcast over its slice, one op a line."""
        shape = (self.models,) + (1,) * (param.dim() - 1)

        def column(j: int) -> Tensor:
            return s[:, j].to(param.dtype).view(shape)

        if self.algorithm == "sgdm":
            (buf,) = buffers
            grad = grad + column(2) * param
            buf.mul_(column(0)).add_(grad)
            param.sub_(column(1) * buf)
            return
        if self.algorithm == "adagrad":
            (total,) = buffers
            grad = grad + column(2) * param
            total.addcmul_(grad, grad)
            param.sub_(column(0) * grad / (total.sqrt() + column(1)))
            return
        exp_avg, exp_avg_sq = buffers[0], buffers[1]
        coupled_at = 5 if self.algorithm == "adam" else 6
        if self.decoupled:
            param.mul_(column(coupled_at + 1))
        else:
            grad = grad + column(coupled_at) * param
        beta1, beta2 = column(0), column(1)
        exp_avg.mul_(beta1).add_((1.0 - s[:, 0]).to(param.dtype).view(shape) * grad)
        exp_avg_sq.mul_(beta2).add_((1.0 - s[:, 1]).to(param.dtype).view(shape) * grad * grad)
        second = exp_avg_sq
        if self.ams:
            torch.maximum(buffers[2], exp_avg_sq, out=buffers[2])
            second = buffers[2]
        if self.algorithm == "adam":
            denom = second.sqrt() / column(3) + column(4)
            param.sub_(column(2) * exp_avg / denom)
            return
        step = (column(2) / (second.sqrt() + column(5))).clamp_(column(3), column(4))
        param.sub_(step * exp_avg)

    # --- models that stop ------------------------------------------------------------------

    @torch.no_grad()
    def freeze(self, model: int) -> None:
        """Stop model ``model`` for good: its parameters and state become 0 and its lr 0.

        A diverged model must not poison the others: zeroed, it computes finite values (its
        slice of every batched op is its own), and with lr 0 none of the updates above move
        it (each step is a multiple of the lr).
        """
        self.lr[model] = 0.0
        for index, param in enumerate(self.params):
            param[model] = 0.0
            for buffer in self.state[index].values():
                buffer[model] = 0.0

    def scale_lr(self, factor: float) -> None:
        """Multiply every model's lr by ``factor`` (a ``MultiStepLR`` milestone)."""
        self.lr = torch.tensor([lr * factor for lr in self.lr.tolist()], dtype=torch.float64)
