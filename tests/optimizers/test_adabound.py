"""AdaBound / AMSBound / AdaBoundW specifics: the paper's update, exactness of every
implementation, checkpoints, copies and param groups."""

from __future__ import annotations

import copy
import functools
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from boundsweep.optimizers import (
    IMPLEMENTATIONS,
    AdaBound,
    AdaBoundW,
    AMSBound,
    _fused,
    _triton,
    current_bounds,
)
from boundsweep.optimizers._bounds import bound_at
from boundsweep.optimizers._functional import _pick

from tests.optimizers.optimizer_infos import toy_problem, train_steps

VARIANTS = {
    "adabound": (AdaBound, {"weight_decay": 5e-4}),
    "amsbound": (AMSBound, {"weight_decay": 5e-4}),
    "adaboundw": (AdaBoundW, {"weight_decay": 1e-2}),
}


def _paper_step(
    theta,
    grads,
    *,
    lr,
    beta1,
    beta2,
    final_lr,
    gamma,
    eps,
    weight_decay,
    amsbound=False,
    decoupled=False,
):
    """The update of a scalar parameter written out from the paper, in plain Python floats."""
    m = v = v_max = 0.0
    for t, g in enumerate(grads, start=1):
        if decoupled:
            theta *= 1.0 - lr * weight_decay
        else:
            g = g + weight_decay * theta
        m = beta1 * m + (1.0 - beta1) * g
        v = beta2 * v + (1.0 - beta2) * g * g
        v_max = max(v_max, v)
        denom = math.sqrt(v_max if amsbound else v) + eps
        eta = lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t) / denom
        lower = final_lr * (1.0 - 1.0 / (gamma * t + 1.0))
        upper = final_lr * (1.0 + 1.0 / (gamma * t))
        theta -= min(max(eta, lower), upper) * m
    return theta


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_scalar_update_is_the_papers(variant: str, impl: str) -> None:
    cls, extra = VARIANTS[variant]
    grads = [0.3, -1.2, 0.05, 2.0, -0.7, 0.01, 0.4]
    # gamma large: the bounds close within a few steps, so both clips are exercised.
    hparams = {"lr": 0.01, "betas": (0.8, 0.9), "final_lr": 0.02, "gamma": 0.5, "eps": 1e-8}
    theta = torch.nn.Parameter(torch.tensor([1.5], dtype=torch.float64))
    optimizer = cls([theta], **hparams, **extra, impl=impl)
    for g in grads:
        theta.grad = torch.tensor([g], dtype=torch.float64)
        optimizer.step()
    expected = _paper_step(
        1.5,
        grads,
        lr=0.01,
        beta1=0.8,
        beta2=0.9,
        final_lr=0.02,
        gamma=0.5,
        eps=1e-8,
        weight_decay=extra["weight_decay"],
        amsbound=variant == "amsbound",
        decoupled=variant == "adaboundw",
    )
    assert theta.item() == pytest.approx(expected, rel=1e-13, abs=1e-15)


def _count_clipped(optimizer, counts: dict[str, int]) -> None:
    """Count the elements whose raw Adam step size was clipped at each bound this step."""
    group = optimizer.param_groups[0]
    lower, upper = current_bounds(optimizer)
    beta1, beta2 = group["betas"]
    for param in group["params"]:
        state = optimizer.state[param]
        t = state["step"]
        v = state.get("max_exp_avg_sq", state["exp_avg_sq"])
        raw = group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t) / (v.sqrt() + group["eps"])
        counts["lower"] += int((raw < lower).sum())
        counts["upper"] += int((raw > upper).sum())


def _run(cls, extra, impl: str, dtype: torch.dtype, steps: int = 60, counts=None, width=300):
    """A model with a ``width``²-element tensor (90k by default: multi-threaded in the fused
    kernel), trained ``steps`` steps on fresh random batches (so gradients never vanish) with
    a StepLR schedule and bounds that close fast enough to clip at both ends."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(width, width), torch.nn.Tanh(), torch.nn.Linear(width, 1)
    ).to(dtype)
    optimizer = cls(model.parameters(), lr=0.01, final_lr=0.1, gamma=0.1, **extra, impl=impl)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=20, gamma=0.3)
    if counts is not None:
        optimizer.register_step_post_hook(lambda opt, *_: _count_clipped(opt, counts))
    for _ in range(steps):
        inputs = torch.randn(32, width, generator=generator, dtype=dtype)
        targets = torch.randn(32, 1, generator=generator, dtype=dtype)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        optimizer.step()
        scheduler.step()
    return model


@functools.cache
def _reference(
    variant: str, dtype: torch.dtype, steps: int, width: int = 300
) -> tuple[list[torch.Tensor], dict]:
    """The reference implementation's final weights (computed once per session) and how many
    elements it clipped at each bound."""
    cls, extra = VARIANTS[variant]
    counts = {"lower": 0, "upper": 0}
    model = _run(cls, extra, "single_tensor", dtype, steps, counts=counts, width=width)
    return [p.detach().clone() for p in model.parameters()], counts


@pytest.mark.parametrize("impl", ["foreach", "fused", "auto"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_implementation_equals_reference_in_float64(variant: str, impl: str) -> None:
    cls, extra = VARIANTS[variant]
    reference, counts = _reference(variant, torch.float64, 60)
    model = _run(cls, extra, impl, torch.float64)
    for got, want in zip(model.parameters(), reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # The run must have clipped at both bounds, or it did not test the clip.
    assert counts["lower"] > 0 and counts["upper"] > 0, counts


@pytest.mark.parametrize("impl", ["foreach", "fused"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_implementation_close_to_reference_in_float32(variant: str, impl: str) -> None:
    cls, extra = VARIANTS[variant]
    reference, _ = _reference(variant, torch.float32, 30)
    model = _run(cls, extra, impl, torch.float32, steps=30)
    for got, want in zip(model.parameters(), reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


# 70² = 4900 elements: one whole block of the Triton kernel and a masked tail, beside
# tensors smaller than a block, all in one launch. The interpreter is slow (~50 ms a step
# here), so this model is small.
_TRITON_WIDTH = 70


@pytest.mark.parametrize("variant", VARIANTS)
def test_triton_kernel_equals_reference_in_float32(variant: str) -> None:
    """The Triton kernel, run by Triton's interpreter on CPU tensors, over 60 steps with
    weight decay and a StepLR schedule (the bounds follow lr) that clip at both bounds."""
    cls, extra = VARIANTS[variant]
    reference, counts = _reference(variant, torch.float32, 60, _TRITON_WIDTH)
    model = _run(cls, extra, "triton", torch.float32, 60, width=_TRITON_WIDTH)
    for got, want in zip(model.parameters(), reference, strict=True):
        # Observed: at most 3.0e-8 absolute, 8e-6 relative (a few float32 ulps).
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert not all(torch.equal(g, w) for g, w in zip(model.parameters(), reference, strict=True))
    assert counts["lower"] > 0 and counts["upper"] > 0, counts


def _compile_for_hopper(dtype: str, **constexprs: object) -> str:
    """The Triton kernel compiled (no GPU needed) for sm_90, as PTX."""
    import triton.language as tl  # ships with the torch wheel; missing is a failure, not a skip
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile

    kernel = _triton._compiled(False)
    scalars = [name for name, kind in kernel.fn.__annotations__.items() if kind == tl.float64]
    signature = {"base": f"*{dtype}", "table": "*i64", "tensors": "i32", "chunks": "i32"}
    signature |= dict.fromkeys(scalars, "fp64")
    signature |= dict.fromkeys(["COUPLED", "DECAYS", "AMSBOUND", "VEC", "BLOCK"], "constexpr")
    constexprs = {"BLOCK": _triton.BLOCK, **constexprs}
    # What the launcher tells the compiler about a 16-byte-aligned pointer argument.
    attrs = {(0,): [["tt.divisibility", 16]], (1,): [["tt.divisibility", 16]]}
    source = ASTSource(kernel, signature, constexprs=constexprs, attrs=attrs)
    return compile(source, target=GPUTarget("cuda", 90, 32)).asm["ptx"]


def test_triton_kernel_compiles_for_the_gpu_with_wide_ieee_accesses() -> None:
    """The CUDA path has no GPU here: compile it for Hopper and read the PTX. Whole blocks
    move 16 bytes per access (as fused Adam does), sqrt and division are IEEE-rounded."""
    ptx = _compile_for_hopper("fp32", COUPLED=True, DECAYS=False, AMSBOUND=True, VEC=4)
    assert "ld.global.v4.b32" in ptx and "st.global.v4.b32" in ptx
    assert "sqrt.rn.f32" in ptx and "div.rn.f32" in ptx
    assert "sqrt.approx" not in ptx and "div.full" not in ptx
    ptx = _compile_for_hopper("fp64", COUPLED=False, DECAYS=True, AMSBOUND=False, VEC=2)
    assert "ld.global.v2.b64" in ptx and "sqrt.rn.f64" in ptx and "div.rn.f64" in ptx


def test_triton_launch_table_is_reused_while_the_addresses_stay() -> None:
    weight = torch.nn.Parameter(torch.ones(5000))
    weight.grad = torch.ones(5000)
    optimizer = AdaBound([weight], lr=0.01, impl="triton")
    optimizer.step()
    first = next(reversed(_triton._tables.values()))
    optimizer.step()
    assert next(reversed(_triton._tables.values())) is first
    old_grad, weight.grad = weight.grad, torch.ones(5000)  # both alive: other addresses
    optimizer.step()
    second = next(reversed(_triton._tables.values()))
    assert second is not first and second.chunks == first.chunks == 2
    # The cache keeps positions, not tensors: it holds no parameter or gradient alive.
    assert [type(v) for v in vars(second).values()] == [torch.Tensor, tuple, int, int, int]
    del old_grad


def test_auto_takes_triton_for_cuda_tensors() -> None:
    """Device selection on CUDA tensors, with fake (metadata-only) CUDA tensors."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        dense = torch.empty(4, 4, device="cuda")
        nhwc = torch.empty(2, 3, 4, 4, device="cuda").to(memory_format=torch.channels_last)
        half = torch.empty(4, device="cuda", dtype=torch.float16)
        for impl in ("auto", "fused", "triton"):
            assert _pick(impl, [[dense], [dense]]) == "triton"
            assert _pick(impl, [[nhwc], [nhwc]]) == "triton"
            assert _pick(impl, [[half], [half]]) == "foreach"
            assert _pick(impl, [[dense.t()], [dense.t()]]) == "foreach"  # not dense
            assert _pick(impl, [[nhwc], [torch.empty(2, 3, 4, 4, device="cuda")]]) == "foreach"
        assert _pick("single_tensor", [[dense]]) == "single_tensor"


def test_auto_takes_the_fused_kernel_on_cpu_float_and_the_loop_otherwise() -> None:
    if not _fused.available():
        pytest.fail(f"no fused kernel here: {_fused.unavailable_reason()} (install gcc)")
    dense = [[torch.zeros(4, 4)] * 2]
    assert _pick("auto", dense) == "fused"
    assert _pick("auto", [[torch.zeros(4, dtype=torch.float16)]]) == "single_tensor"
    assert _pick("fused", [[torch.zeros(4, 4).t()]]) == "single_tensor"  # not contiguous
    assert _pick("foreach", dense) == "foreach"
    assert _pick("single_tensor", dense) == "single_tensor"


def test_fused_matches_reference_on_channels_last_weights() -> None:
    results = []
    for impl in ("single_tensor", "fused"):
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(3, 8, 3).double().to(memory_format=torch.channels_last)
        optimizer = AdaBound(conv.parameters(), lr=0.01, impl=impl)
        for _ in range(5):
            optimizer.zero_grad()
            conv(torch.ones(2, 3, 6, 6, dtype=torch.float64)).square().mean().backward()
            optimizer.step()
        results.append(conv.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-12)


def test_checkpoint_after_lr_decay_resumes_with_the_original_base_lr() -> None:
    """The authors' package rebuilt base_lr from the lr at construction, so a run resumed after
    the scheduler had decayed lr got other bounds. Here base_lr travels in the state dict."""
    model, inputs, targets = toy_problem(torch.float64)
    optimizer = AdaBound(model.parameters(), lr=0.01, final_lr=0.05, gamma=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
    train_steps(model, optimizer, inputs, targets, 12, scheduler)
    checkpoint = copy.deepcopy(
        {
            "model": model.state_dict(),
            "opt": optimizer.state_dict(),
            "sched": scheduler.state_dict(),
        }
    )
    assert checkpoint["opt"]["param_groups"][0]["base_lr"] == 0.01
    train_steps(model, optimizer, inputs, targets, 10, scheduler)

    resumed, _, _ = toy_problem(torch.float64, seed=3)
    resumed.load_state_dict(checkpoint["model"])
    # As a resuming script would: built with the lr the run had reached.
    optimizer2 = AdaBound(resumed.parameters(), lr=0.0025, final_lr=0.05, gamma=0.01)
    scheduler2 = torch.optim.lr_scheduler.StepLR(optimizer2, step_size=5, gamma=0.5)
    optimizer2.load_state_dict(checkpoint["opt"])
    scheduler2.load_state_dict(checkpoint["sched"])
    train_steps(resumed, optimizer2, inputs, targets, 10, scheduler2)
    for got, want in zip(resumed.parameters(), model.parameters(), strict=True):
        assert torch.equal(got, want)
    assert current_bounds(optimizer2) == current_bounds(optimizer)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_continue_the_same_trajectory(how: str) -> None:
    model, inputs, targets = toy_problem(torch.float64)
    optimizer = AMSBound(model.parameters(), lr=0.01, gamma=0.01, impl="foreach")
    optimizer.add_param_group({"params": [torch.nn.Parameter(torch.ones(3))], "lr": 0.02})
    train_steps(model, optimizer, inputs, targets, 5)
    pair = (model, optimizer)
    model2, optimizer2 = (
        copy.deepcopy(pair) if how == "deepcopy" else pickle.loads(pickle.dumps(pair))
    )
    assert optimizer2.impl == "foreach"
    assert [g["base_lr"] for g in optimizer2.param_groups] == [0.01, 0.02]
    train_steps(model, optimizer, inputs, targets, 5)
    train_steps(model2, optimizer2, inputs, targets, 5)
    for got, want in zip(model2.parameters(), model.parameters(), strict=True):
        assert torch.equal(got, want)


def test_add_param_group_keeps_its_own_lr_and_bounds() -> None:
    first = torch.nn.Parameter(torch.ones(3))
    optimizer = AdaBound([first], lr=0.01, final_lr=0.1)
    second = torch.nn.Parameter(torch.ones(3))
    optimizer.add_param_group({"params": [second], "lr": 0.001, "final_lr": 0.5})
    group = optimizer.param_groups[1]
    assert (group["base_lr"], group["final_lr"], group["gamma"]) == (0.001, 0.5, 1e-3)
    for param in (first, second):
        param.grad = torch.ones(3)
    optimizer.step()
    # Step 1 is Adam's: lr * sign(grad) (the bounds are [~0, ~1000 * final_lr]).
    torch.testing.assert_close(first, torch.full((3,), 1 - 0.01), rtol=0, atol=1e-9)
    torch.testing.assert_close(second, torch.full((3,), 1 - 0.001), rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="gamma"):
        optimizer.add_param_group({"params": [torch.nn.Parameter(torch.ones(1))], "gamma": 0.0})


def test_checkpoint_without_base_lr_still_loads() -> None:
    """A state dict from before base_lr existed (or from the authors' package) still loads;
    its base lr is the scheduler's initial_lr if any, else its lr."""
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = AdaBound([weight], lr=0.01)
    weight.grad = torch.ones(3)
    optimizer.step()
    old = copy.deepcopy(optimizer.state_dict())
    for group in old["param_groups"]:
        del group["base_lr"], group["decoupled_weight_decay"]
    without_scheduler = copy.deepcopy(old)
    old["param_groups"][0]["initial_lr"] = 0.02
    for state_dict, base_lr in [(without_scheduler, 0.01), (old, 0.02)]:
        resumed = AdaBound([weight], lr=0.5)
        resumed.load_state_dict(state_dict)
        assert resumed.param_groups[0]["base_lr"] == base_lr
        assert resumed.param_groups[0]["decoupled_weight_decay"] is False
        resumed.step()
        assert resumed.state[weight]["step"] == 2


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": -1e-3}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"betas": (1.0, 0.999)}, "beta parameter at index 0"),
        ({"betas": (0.9, -0.1)}, "beta parameter at index 1"),
        ({"final_lr": -0.1}, "final_lr"),
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": -1e-3}, "gamma"),
        ({"gamma": 1.0}, "gamma"),
        ({"gamma": 3.0}, "gamma"),
        ({"eps": -1e-8}, "eps"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"impl": "cuda_graphs"}, "impl"),
    ],
)
@pytest.mark.parametrize("cls", [AdaBound, AMSBound, AdaBoundW])
def test_invalid_hyperparameter_raises_naming_it(cls, kwargs, name: str) -> None:
    with pytest.raises(ValueError, match=f"Invalid {name}"):
        cls([torch.nn.Parameter(torch.ones(1))], **kwargs)


def test_constructor_and_registry_agree_on_gamma() -> None:
    from boundsweep.optimizers import REGISTRY

    param = [torch.nn.Parameter(torch.ones(1))]
    for gamma in (1e-6, 0.5, 0.999, 1.0, 1.5):
        try:
            REGISTRY["adabound"].hyperparams["gamma"].validate(gamma)
            registry_ok = True
        except ValueError:
            registry_ok = False
        try:
            AdaBound(param, gamma=gamma)
            constructor_ok = True
        except ValueError:
            constructor_ok = False
        assert constructor_ok == registry_ok, gamma


def test_environment_picks_the_implementation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOUNDSWEEP_OPTIMIZER_IMPL", "single_tensor")
    optimizer = AdaBound([torch.nn.Parameter(torch.ones(1))])
    assert optimizer.impl == "single_tensor"
    monkeypatch.setenv("BOUNDSWEEP_OPTIMIZER_IMPL", "bogus")
    with pytest.raises(ValueError, match="BOUNDSWEEP_OPTIMIZER_IMPL.*single_tensor, foreach"):
        AdaBound([torch.nn.Parameter(torch.ones(1))])
    # An existing optimizer keeps its implementation through load_state_dict.
    optimizer.load_state_dict(optimizer.state_dict())
    assert optimizer.impl == "single_tensor"


def test_bounds_of_amsbound_and_adaboundw_follow_the_same_schedule() -> None:
    for cls in (AMSBound, AdaBoundW):
        weight = torch.nn.Parameter(torch.ones(2))
        optimizer = cls([weight], lr=0.01, final_lr=0.2, gamma=0.1)
        for _ in range(4):
            weight.grad = torch.ones(2)
            optimizer.step()
        assert current_bounds(optimizer) == bound_at(0.2, 0.1, 4)


_NO_COMPILER_SCRIPT = """
import torch
from boundsweep.optimizers import AdaBound, warm_up
from boundsweep.optimizers import _fused
warm_up()
print("available", _fused.available(), "|", _fused.unavailable_reason())
weight = torch.nn.Parameter(torch.ones(3))
optimizer = AdaBound([weight], lr=0.01)
weight.grad = torch.ones(3)
optimizer.step()
print("auto stepped", round(weight[0].item(), 6))
try:
    AdaBound([weight], impl="fused").step()
except RuntimeError as error:
    print("fused refused:", error)
"""


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter from the repository root with ``env`` added."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=Path(__file__).parents[2],
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_without_a_compiler_auto_falls_back_and_fused_says_why(tmp_path) -> None:
    """A real process with a failing C compiler and an empty kernel cache."""
    result = _python(
        _NO_COMPILER_SCRIPT,
        CC="/bin/false",
        BOUNDSWEEP_KERNEL_CACHE=str(tmp_path),
        BOUNDSWEEP_OPTIMIZER_IMPL="",
    )
    assert "available False | building the kernel failed" in result.stdout
    assert "auto stepped 0.99" in result.stdout
    assert "fused refused: The fused AdaBound kernel is unavailable" in result.stdout
    assert "fused AdaBound unavailable" in result.stderr  # logged once, as a warning


def test_warm_up_builds_into_the_cache_then_only_loads(tmp_path) -> None:
    built = []
    for _ in range(2):
        _python(
            "import boundsweep.optimizers as o; o.warm_up()", BOUNDSWEEP_KERNEL_CACHE=str(tmp_path)
        )
        built.append({p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()})
    if not built[0]:
        pytest.fail("nothing was built: no C compiler (cc/gcc) here (install gcc)")
    assert len(built[0]) == 1 and next(iter(built[0])).startswith("adabound_")  # no leftovers
    assert built[1] == built[0]  # the second process loaded the same file, built nothing
