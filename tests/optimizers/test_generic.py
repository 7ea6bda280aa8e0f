"""Generic tests every optimizer of the registry (and every bounded implementation) passes."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from boundsweep.optimizers import REGISTRY, build_optimizer, current_bounds

from tests.optimizers.optimizer_infos import (
    OptimizerInfo,
    optimizer_infos,
    toy_problem,
    train_steps,
)


@optimizer_infos
def test_loss_falls(info: OptimizerInfo) -> None:
    model, inputs, targets = toy_problem()
    losses = train_steps(model, info.build(model.parameters()), inputs, targets, steps=100)
    assert losses[-1] < 0.5 * losses[0], f"{info.id}: loss {losses[0]:.4f} -> {losses[-1]:.4f}"


@optimizer_infos
def test_state_dict_round_trip_continues_bit_identically(info: OptimizerInfo) -> None:
    model, inputs, targets = toy_problem()
    optimizer = info.build(model.parameters())
    train_steps(model, optimizer, inputs, targets, steps=7)
    checkpoint = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict()})

    train_steps(model, optimizer, inputs, targets, steps=8)
    expected = [p.detach().clone() for p in model.parameters()]

    resumed, _, _ = toy_problem(seed=1)  # other weights, overwritten by the checkpoint
    resumed.load_state_dict(checkpoint["model"])
    # Constructed with another lr: the checkpoint's hyperparameters (and base lr) must win.
    optimizer = info.build(resumed.parameters(), lr=0.5 * info.hparams["lr"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    train_steps(resumed, optimizer, inputs, targets, steps=8)
    for got, want in zip(resumed.parameters(), expected, strict=True):
        assert torch.equal(got, want)


@optimizer_infos
def test_step_with_every_grad_none_changes_nothing(info: OptimizerInfo) -> None:
    model, _, _ = toy_problem()
    optimizer = info.build(model.parameters())
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.step()
    for got, want in zip(model.parameters(), before, strict=True):
        assert torch.equal(got, want)
    if REGISTRY[info.name].bounded:
        assert len(optimizer.state) == 0  # nothing stepped, no step counted
        assert current_bounds(optimizer) is not None


@optimizer_infos
def test_empty_tensor_beside_others(info: OptimizerInfo) -> None:
    empty = torch.nn.Parameter(torch.zeros(0, 3))
    weight = torch.nn.Parameter(torch.ones(4))
    optimizer = info.build([empty, weight])
    for _ in range(3):
        empty.grad = torch.zeros(0, 3)
        weight.grad = torch.full((4,), 0.5)
        optimizer.step()
    assert empty.shape == (0, 3)
    assert torch.all(weight < 1.0)


@optimizer_infos
def test_no_warnings_from_a_training_run(info: OptimizerInfo) -> None:
    model, inputs, targets = toy_problem()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimizer = info.build(model.parameters())
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
        train_steps(model, optimizer, inputs, targets, steps=4, scheduler=scheduler)
        optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    assert [str(w.message) for w in caught] == []


# torch's own optimizers have their own sparse handling; ours refuse sparse gradients.
@pytest.mark.parametrize("name", [name for name, entry in REGISTRY.items() if entry.bounded])
def test_sparse_grad_gives_a_clear_error(name: str) -> None:
    weight = torch.nn.Parameter(torch.ones(5))
    optimizer = build_optimizer(name, [weight], {})
    weight.grad = torch.sparse_coo_tensor([[1, 3]], [1.0, 2.0], (5,), check_invariants=True)
    with pytest.raises(RuntimeError, match="does not support sparse gradients"):
        optimizer.step()
