"""BatchedOptimizer: K stacked models step as K registry optimizers would, model by model."""

from __future__ import annotations

import shutil

import pytest
import torch
from boundsweep.optimizers import REGISTRY, BatchedOptimizer, _batched_kernel, build_optimizer
from boundsweep.optimizers._batched import kernel_matches_torch

# Three models per optimizer with different values of every hyperparameter it has.
_HPARAMS: dict[str, list[dict[str, float]]] = {
    "sgdm": [
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.03, "momentum": 0.0, "weight_decay": 1e-3},
        {"lr": 0.5, "momentum": 0.5},
    ],
    "adagrad": [{"lr": 0.01}, {"lr": 0.1, "eps": 1e-6, "weight_decay": 1e-2}, {"lr": 0.003}],
}
for _name in ("adam", "amsgrad", "adamw"):
    _HPARAMS[_name] = [
        {"lr": 1e-3},
        {"lr": 3e-2, "beta1": 0.5, "beta2": 0.99, "eps": 1e-6, "weight_decay": 1e-2},
        {"lr": 1e-2, "beta1": 0.0, "beta2": 0.9},
    ]
for _name in ("adabound", "amsbound", "adaboundw"):
    _HPARAMS[_name] = [
        {"lr": 1e-3},
        {"lr": 3e-2, "final_lr": 0.01, "gamma": 0.1, "beta1": 0.5, "weight_decay": 1e-2},
        {"lr": 1e-2, "final_lr": 1.0, "gamma": 1e-5, "beta2": 0.9, "eps": 1e-6},
    ]

IMPLS = ["reference", "alone", "auto"]
SHAPES = [(5, 7), (11,), (600, 600)]  # the last (x 3 models) takes the kernel's threads


def _problem(models: int, dtype: torch.dtype, seed: int = 0) -> tuple[list[torch.Tensor], ...]:
    g = torch.Generator().manual_seed(seed)
    starts = [torch.randn(models, *shape, generator=g, dtype=dtype) for shape in SHAPES]
    grads = [
        [torch.randn(models, *shape, generator=g, dtype=dtype) for shape in SHAPES]
        for _ in range(6)
    ]
    return starts, grads


def _run_one_by_one(name: str, starts, grads) -> list[list[torch.Tensor]]:
    """Each model alone with the registry's optimizer (what train() builds)."""
    results = []
    for k, hparams in enumerate(_HPARAMS[name]):
        params = [s[k].clone().requires_grad_() for s in starts]
        optimizer = build_optimizer(name, params, hparams)
        for step_grads in grads:
            for p, grad in zip(params, step_grads, strict=True):
                p.grad = grad[k].clone()
            optimizer.step()
        results.append([p.detach() for p in params])
    return results


def _run_batched(name: str, starts, grads, impl: str) -> list[torch.Tensor]:
    params = [s.clone().requires_grad_() for s in starts]
    optimizer = BatchedOptimizer(name, params, _HPARAMS[name], impl=impl)
    for step_grads in grads:
        for p, grad in zip(params, step_grads, strict=True):
            p.grad = grad.clone()
        optimizer.step()
    return [p.detach() for p in params]


def test_auto_takes_the_kernel_exactly_where_it_matches_torchs_kernels() -> None:
    """The kernel where torch's kernels are AVX-512 or AVX2 and a compiler builds it; each
    model's own optimizer (exact too) under torch's DEFAULT kernels or without a compiler:
    tests/test_every_cpu.py runs this under each."""
    capability = torch.backends.cpu.get_cpu_capability()
    compiler = bool(shutil.which("cc") or shutil.which("gcc"))
    expected = capability in ("AVX512", "AVX2") and compiler
    assert kernel_matches_torch() == expected, (capability, _batched_kernel.unavailable_reason())
    assert kernel_matches_torch("DEFAULT") is False
    param = torch.zeros(2, 3, requires_grad=True)
    optimizer = BatchedOptimizer("adam", [param], [{}, {"lr": 0.1}])
    param.grad = torch.ones(2, 3)
    optimizer.step()
    assert optimizer.impl == ("kernel" if expected else "alone")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", list(REGISTRY))
def test_batched_step_equals_each_model_alone(name: str, impl: str) -> None:
    starts, grads = _problem(3, torch.float32)
    alone = _run_one_by_one(name, starts, grads)
    batched = _run_batched(name, starts, grads, impl)
    for k in range(3):
        for p_batched, p_alone in zip(batched, alone[k], strict=True):
            if impl != "reference":
                # The kernel rounds where the single-model kernels round (torch's fused SGD,
                # Adam and AdamW, including their scalar tails; _fused's bounded loop), and
                # "alone" runs them: the very same bits after six steps, whatever the size.
                assert torch.equal(p_batched[k], p_alone), (k, tuple(p_alone.shape))
            else:
                # The readable reference: the same ops, a few float32 ulps apart at most.
                torch.testing.assert_close(p_batched[k], p_alone, rtol=2e-6, atol=2e-6)
        moved = sum(float((p[k] - s[k]).abs().sum()) for p, s in zip(batched, starts, strict=True))
        assert moved > 0.0, f"model {k} of {name} did not move"


@pytest.mark.parametrize("name", list(REGISTRY))
def test_kernel_equals_reference_in_float64(name: str) -> None:
    # The kernel where it builds; without a compiler, the models' own optimizers instead.
    impl = "kernel" if _batched_kernel.available() else "alone"
    starts, grads = _problem(3, torch.float64, seed=1)
    kernel = _run_batched(name, starts, grads, impl)
    reference = _run_batched(name, starts, grads, "reference")
    for a, b in zip(kernel, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["adabound", "sgdm", "adam", "adagrad"])
def test_a_frozen_model_stays_put_and_the_others_move_as_alone(name: str) -> None:
    starts, grads = _problem(3, torch.float32, seed=2)
    alone = _run_one_by_one(name, starts, grads)
    params = [s.clone().requires_grad_() for s in starts]
    optimizer = BatchedOptimizer(name, params, _HPARAMS[name])
    for step, step_grads in enumerate(grads):
        for p, grad in zip(params, step_grads, strict=True):
            grad = grad.clone()
            if step == 2:
                grad[1] = float("nan")  # model 1 diverges at step 3 and steps on NaN...
            p.grad = grad
        optimizer.step()
        if step == 2:
            assert all(bool(p.detach()[1].isnan().any()) for p in params)
            optimizer.freeze(1)  # ...then is frozen, as train_batched does on seeing its loss
    for p in params:
        assert torch.count_nonzero(p.detach()[1]) == 0
    for k in (0, 2):
        for p, p_alone in zip(params, alone[k], strict=True):
            assert torch.equal(p.detach()[k], p_alone), k


def test_bounds_per_model_match_the_single_model_optimizer() -> None:
    from boundsweep.optimizers import current_bounds

    hparams = _HPARAMS["adabound"]
    param = torch.zeros(3, 4, requires_grad=True)
    optimizer = BatchedOptimizer("adabound", [param], hparams)
    singles = []
    for h in hparams:
        p = torch.zeros(4, requires_grad=True)
        singles.append((p, build_optimizer("adabound", [p], h)))
    for _ in range(3):
        param.grad = torch.ones(3, 4)
        optimizer.step()
        for p, single in singles:
            p.grad = torch.ones(4)
            single.step()
    lower, upper = optimizer.bounds()
    for k, (_, single) in enumerate(singles):
        assert (lower[k], upper[k]) == current_bounds(single)
    assert BatchedOptimizer("adam", [param], [{}] * 3).bounds() is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", [torch.zeros(2, 3)], [{}, {}]), "Unknown optimizer 'nope'"),
        (("adam", [torch.zeros(2, 3)], [{}, {"lr": -1.0}]), "Invalid lr"),
        (("adam", [torch.zeros(3, 3)], [{}, {}]), "leading model dimension of 2"),
        (("adam", [torch.zeros(2, 3)], []), "at least one model"),
        (("adam", [torch.zeros(2, 3)], [{}, {"momentum": 0.9}]), "Unknown hyperparameter"),
    ],
)
def test_bad_arguments_are_named(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BatchedOptimizer(*args)
