"""AdaBound, AMSBound and AdaBoundW as ``torch.optim.Optimizer`` subclasses."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from boundsweep.optimizers._functional import adabound, resolve_impl
from torch import Tensor
from torch.optim import Optimizer

__all__ = ["AMSBound", "AdaBound", "AdaBoundW"]


def _check(name: str, value: Any, ok: bool, rule: str) -> None:
    if not ok:
        raise ValueError(f"Invalid {name}: {value!r} (must be {rule})")


def _validate(group: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first invalid hyperparameter of a param group."""
    for name in ("lr", "final_lr", "gamma", "eps", "weight_decay"):
        value = group[name]
        _check(
            name,
            value,
            isinstance(value, int | float) and not isinstance(value, bool),
            "a real number",
        )
        _check(name, value, math.isfinite(value), "finite")
    _check("lr", group["lr"], group["lr"] >= 0.0, ">= 0")
    _check("final_lr", group["final_lr"], group["final_lr"] >= 0.0, ">= 0")
    # gamma = 0 would make the upper bound final_lr * (1 + 1/0): the bound never converges;
    # gamma >= 1 closes the bounds within the first step (the registry refuses it too).
    _check("gamma", group["gamma"], 0.0 < group["gamma"] < 1.0, "in (0, 1)")
    _check("eps", group["eps"], group["eps"] >= 0.0, ">= 0")
    _check("weight_decay", group["weight_decay"], group["weight_decay"] >= 0.0, ">= 0")
    betas = group["betas"]
    _check("betas", betas, isinstance(betas, tuple | list) and len(betas) == 2, "a pair")
    for index, beta in enumerate(betas):
        _check(
            f"beta parameter at index {index}",
            beta,
            isinstance(beta, int | float) and 0.0 <= beta < 1.0,
            "in [0, 1)",
        )
    if "base_lr" in group:
        _check("base_lr", group["base_lr"], group["base_lr"] >= 0.0, ">= 0")


class AdaBound(Optimizer):
    r"""AdaBound (Luo et al., ICLR 2019): Adam whose per-parameter step size is clipped to a
    dynamic bound converging to ``final_lr``; AMSBound with ``amsbound=True``.

    .. code-block:: text

        input: lr (α), betas (β1, β2), final_lr, gamma (γ), eps (ε), weight_decay (λ),
               base_lr (α at construction, kept in the param group)
        m_0 = 0, v_0 = 0, v̂_0 = 0
        for t = 1, 2, ...:
            g_t = ∇f(θ_{t-1})
            if λ != 0:
                coupled (AdaBound): g_t = g_t + λ θ_{t-1}
                decoupled (AdaBoundW): θ_{t-1} = θ_{t-1} (1 - α λ)
            m_t = β1 m_{t-1} + (1 - β1) g_t
            v_t = β2 v_{t-1} + (1 - β2) g_t²
            d_t = v_t                    (AdaBound)
            v̂_t = max(v̂_{t-1}, v_t); d_t = v̂_t    (AMSBound)
            fl = final_lr · α / base_lr            (follows lr schedulers)
            η_l = fl (1 - 1 / (γ t + 1));  η_u = fl (1 + 1 / (γ t))
            η_t = clip(α √(1 - β2^t) / (1 - β1^t) / (√d_t + ε), η_l, η_u)   element-wise
            θ_t = θ_{t-1} - η_t ⊙ m_t

    Unlike the authors' package, the base lr lives in each param group (key ``base_lr``), so
    it travels in ``state_dict()``: loading a state dict into an optimizer constructed with
    another lr continues the very same trajectory, and deepcopy, pickle and
    ``add_param_group`` work.

    Args:
        params: Parameters or param groups to optimize.
        lr: Adam's learning rate α.
        betas: Coefficients of the running averages of the gradient and its square.
        final_lr: The SGD learning rate both bounds converge to.
        gamma: The convergence speed of the bounds.
        eps: Added to the denominator for numerical stability.
        weight_decay: L2 penalty λ (coupled: added to the gradient).
        amsbound: Use the running maximum of the second moment (AMSBound).
        decoupled_weight_decay: Decay the weights directly (AdaBoundW) instead of through
            the gradient.
        impl: ``"auto"`` (default), ``"single_tensor"``, ``"foreach"``, ``"fused"`` or
            ``"triton"``; ``None`` reads ``$BOUNDSWEEP_OPTIMIZER_IMPL``. ``auto`` and
            ``fused`` take the device's fused kernel (C on CPU, Triton on CUDA) where it can
            run, else the per-tensor loop (CPU) or foreach (CUDA); ``triton`` is the Triton
            kernel on any device (on CPU under Triton's interpreter: for tests). All give the
            reference's result.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        final_lr: float = 0.1,
        gamma: float = 1e-3,
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsbound: bool = False,
        *,
        decoupled_weight_decay: bool = False,
        impl: str | None = None,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas) if isinstance(betas, list) else betas,
            "final_lr": final_lr,
            "gamma": gamma,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsbound": bool(amsbound),
            "decoupled_weight_decay": bool(decoupled_weight_decay),
        }
        _validate(defaults)
        self._impl = resolve_impl(impl)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group; its ``base_lr`` is its ``lr`` unless given."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group.setdefault("base_lr", group["lr"])
        _validate(group)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_impl"] = self._impl
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        # load_state_dict() comes through here too: resolve (read the environment) only for a
        # pickle that carries no implementation.
        if "_impl" not in self.__dict__:
            self._impl = resolve_impl(None)
        for group in self.param_groups:
            group.setdefault("amsbound", False)
            group.setdefault("decoupled_weight_decay", False)
            # A schedulers' initial_lr, if any, is the lr the bounds were built around.
            group.setdefault("base_lr", group.get("initial_lr", group["lr"]))

    @property
    def impl(self) -> str:
        """The implementation asked for (``auto`` picks per step)."""
        return self._impl

    def _init_group(self, group: dict[str, Any]) -> tuple[list[Tensor], ...]:
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = [], [], [], [], [], []
        for param in group["params"]:
            if param.grad is None:
                continue
            if param.grad.is_sparse:
                raise RuntimeError(
                    f"{type(self).__name__} does not support sparse gradients "
                    f"(got one for a parameter of shape {tuple(param.shape)}); "
                    "use dense gradients or torch.optim.SparseAdam"
                )
            if torch.is_complex(param):
                raise RuntimeError(f"{type(self).__name__} does not support complex parameters")
            state = self.state[param]
            if len(state) == 0:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            if group["amsbound"] and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = torch.zeros_like(
                    param, memory_format=torch.preserve_format
                )
            state["step"] += 1
            steps.append(state["step"])
            params.append(param)
            grads.append(param.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if group["amsbound"]:
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
        return params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimization step.

        Args:
            closure: Re-evaluates the model and returns the loss (optional).
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = self._init_group(group)
            if not params:
                continue
            beta1, beta2 = group["betas"]
            adabound(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                max_exp_avg_sqs if group["amsbound"] else None,
                steps,
                lr=group["lr"],
                base_lr=group["base_lr"],
                final_lr=group["final_lr"],
                gamma=group["gamma"],
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                decoupled_weight_decay=group["decoupled_weight_decay"],
                impl=self._impl,
            )
        return loss


class AMSBound(AdaBound):
    """AMSBound: AdaBound with the running maximum of the second moment (``amsbound=True``)."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        final_lr: float = 0.1,
        gamma: float = 1e-3,
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsbound: bool = True,
        *,
        impl: str | None = None,
    ) -> None:
        super().__init__(params, lr, betas, final_lr, gamma, eps, weight_decay, amsbound, impl=impl)


class AdaBoundW(AdaBound):
    """AdaBound with decoupled weight decay (Loshchilov & Hutter's AdamW rule).

    Each step first shrinks the weights, ``θ ← θ (1 - lr · weight_decay)``, then applies the
    clipped AdaBound update computed from the gradient alone. This is ``torch.optim.AdamW``'s
    rule, so ``weight_decay`` means the same in both and an AdamW-vs-AdaBoundW comparison
    varies only the bound. The decay follows the current ``lr`` (and so the lr schedule, the
    ``η_t`` of Loshchilov & Hutter). The authors' AdaBoundW instead subtracts
    ``weight_decay · θ`` unscaled by any lr, so their ``weight_decay=5e-4`` is ours
    ``5e-4 / lr``.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        final_lr: float = 0.1,
        gamma: float = 1e-3,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsbound: bool = False,
        *,
        impl: str | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            final_lr,
            gamma,
            eps,
            weight_decay,
            amsbound,
            decoupled_weight_decay=True,
            impl=impl,
        )
