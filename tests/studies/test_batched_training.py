"""train_batched: K runs trained together equal the same K trained one by one with train()."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from boundsweep.optimizers import REGISTRY
from boundsweep.studies.tasks import TASKS, Budget, trainable, write_mnist
from boundsweep.studies.training import TrainResult, batchable_tasks, train, train_batched

# Three runs per optimizer: different seeds and different values of its hyperparameters.
_LR = {"sgdm": 0.05, "adagrad": 0.05}


def _runs(optimizer: str) -> list[tuple[dict[str, float], int]]:
    lr = _LR.get(optimizer, 3e-3)
    names = REGISTRY[optimizer].hyperparams
    second = {"lr": lr / 3}
    if "beta1" in names:
        second |= {"beta1": 0.8, "beta2": 0.99, "eps": 1e-6}
    if "momentum" in names:
        second |= {"momentum": 0.5}
    if "final_lr" in names:
        second |= {"final_lr": 0.01, "gamma": 0.1}
    third = {"lr": lr, "weight_decay": 1e-3}
    if "final_lr" in names:
        third |= {"final_lr": 1.0, "gamma": 1e-5}
    return [({"lr": lr}, 11), (second, 12), (third, 13)]


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory: pytest.TempPathFactory):
    """A small MNIST in its real idx format (the paper's MLP task reads these files)."""
    root = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    write_mnist(
        root,
        rng.integers(0, 256, (600, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 600),
        rng.integers(0, 256, (100, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 100),
    )
    return root


_BUDGETS = {
    "digits_mlp": Budget(epochs=2, data_fraction=0.1),
    "mnist1d_mlp": Budget(epochs=2, data_fraction=0.1),
    "mnist_mlp": Budget(epochs=2),
}


@pytest.fixture
def one_thread():
    """One torch thread, as the worker trains these tasks (``workers._run.trial_threads``):
    with more, a single model's small reductions split across threads and round differently."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _assert_same_run(batched: TrainResult, alone: TrainResult, examples: int) -> None:
    assert batched.status == alone.status
    assert batched.steps == alone.steps
    assert batched.hparams == alone.hparams
    assert len(batched.epochs) == len(alone.epochs)
    for b, a in zip(batched.epochs, alone.epochs, strict=True):
        assert (b.epoch, b.step, b.lr) == (a.epoch, a.step, a.lr)
        assert (b.lower_bound, b.upper_bound) == (a.lower_bound, a.upper_bound)
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-5)
        # An argmax may flip on a float32 tie at most once in a while: one example.
        assert abs(b.val_metric - a.val_metric) <= 1.0 / examples + 1e-12
        assert abs(b.test_metric - a.test_metric) <= 1.0 / examples + 1e-12
    if alone.status == "completed":
        assert batched.parameters is not None and alone.parameters is not None
        assert batched.parameters.keys() == alone.parameters.keys()
        for name, value in alone.parameters.items():
            # float32 rounding of the same ops in another order, after a few steps. Where a
            # gradient is itself at rounding level, Adam's m / sqrt(v) turns its rounding into
            # up to a step of lr: a handful of the MNIST MLP's 200,000 weights, never more.
            other = batched.parameters[name]
            close = torch.isclose(other, value, rtol=1e-4, atol=1e-5)
            assert float(close.float().mean()) >= 0.9999, name
            assert float((other - value).abs().max()) <= alone.hparams["lr"], name


def test_the_mlp_tasks_are_batchable_and_the_others_not() -> None:
    # wine_mlp: the installed example plugin's, a plain MLP on our loop.
    assert set(batchable_tasks()) == {"digits_mlp", "mnist1d_mlp", "mnist_mlp", "wine_mlp"}
    with pytest.raises(ValueError, match="task 'ptb_lstm1' cannot be trained batched"):
        train_batched("ptb_lstm1", "adam", [({}, 0)])
    with pytest.raises(ValueError, match="runs: need at least one"):
        train_batched("digits_mlp", "adam", [])
    with pytest.raises(ValueError, match="unknown optimizer 'nope'"):
        train_batched("digits_mlp", "nope", [({}, 0)])


def _assert_identical_run(batched: TrainResult, alone: TrainResult) -> None:
    """The same run, bit for bit: every epoch's record (its timing aside), every weight."""
    assert (batched.status, batched.steps, batched.hparams) == (
        alone.status,
        alone.steps,
        alone.hparams,
    )
    assert (batched.val_metric, batched.test_metric) == (alone.val_metric, alone.test_metric)
    assert [replace(e, seconds=0.0) for e in batched.epochs] == [
        replace(e, seconds=0.0) for e in alone.epochs
    ]
    assert batched.parameters is not None and alone.parameters is not None
    assert batched.parameters.keys() == alone.parameters.keys()
    for name, value in alone.parameters.items():
        assert torch.equal(batched.parameters[name], value), name


@pytest.mark.parametrize("optimizer", list(REGISTRY))
@pytest.mark.parametrize("task", ["digits_mlp", "mnist1d_mlp", "mnist_mlp"])
def test_batched_runs_are_the_same_runs_one_by_one_bit_for_bit(
    task: str, optimizer: str, mnist_dir, one_thread
) -> None:
    runs = _runs(optimizer)
    budget = _BUDGETS[task]
    data_dir = mnist_dir if task == "mnist_mlp" else None
    batched = train_batched(task, optimizer, runs, budget, data_dir=data_dir, keep_parameters=True)
    alone = [
        train(task, optimizer, h, s, budget, data_dir=data_dir, keep_parameters=True)
        for h, s in runs
    ]
    for b, a in zip(batched, alone, strict=True):
        assert a.status == "completed"
        _assert_identical_run(b, a)
    # Different seeds and hyperparameters really gave different models.
    first = [r.parameters["0.weight"] for r in batched]
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])


def test_one_diverging_model_neither_stops_nor_poisons_the_others(one_thread) -> None:
    runs = [({"lr": 0.1}, 1), ({"lr": 10.0}, 2), ({"lr": 0.03}, 3)]  # lr 10 blows up
    budget = Budget(epochs=3)
    seen: list[tuple[int, int]] = []
    batched = train_batched(
        "digits_mlp", "sgdm", runs, budget, keep_parameters=True,
        on_epoch=lambda k, record: seen.append((k, record.epoch)),
    )  # fmt: skip
    alone = [train("digits_mlp", "sgdm", h, s, budget, keep_parameters=True) for h, s in runs]
    assert [r.status for r in alone] == ["completed", "diverged", "completed"]
    for b, a in zip(batched, alone, strict=True):
        if a.status == "completed":
            _assert_identical_run(b, a)
        else:
            _assert_same_run(b, a, 144)
    assert batched[1].val_metric == TASKS["digits_mlp"].diverged_value
    assert batched[1].steps < batched[0].steps == 3 * TASKS["digits_mlp"].steps_per_epoch()
    assert sorted(seen) == [(0, 1), (0, 2), (0, 3), (2, 1), (2, 2), (2, 3)]


def test_runs_of_several_optimizers_train_as_one_stack_each_as_alone(one_thread) -> None:
    """Arms of one campaign batched together: interleaved optimizers (so the stack is
    regrouped), a bounded and an unbounded family, and one model of one group diverging."""
    names = ["adam", "adabound", "sgdm", "adabound", "adam", "sgdm"]
    runs = [
        ({"lr": 3e-3}, 1), ({"lr": 3e-3, "final_lr": 0.1}, 1), ({"lr": 0.1}, 2),
        ({"lr": 1e-3, "gamma": 0.1}, 3), ({"lr": 1e-3}, 4), ({"lr": 10.0}, 5),
    ]  # fmt: skip
    budget = Budget(epochs=3)
    seen: list[tuple[int, int]] = []
    batched = train_batched(
        "digits_mlp", names, runs, budget, keep_parameters=True,
        on_epoch=lambda k, record: seen.append((k, record.epoch)),
    )  # fmt: skip
    alone = [
        train("digits_mlp", name, h, s, budget, keep_parameters=True)
        for name, (h, s) in zip(names, runs, strict=True)
    ]
    assert [r.status for r in alone] == ["completed"] * 5 + ["diverged"]
    for b, a in zip(batched, alone, strict=True):
        if a.status == "completed":
            _assert_identical_run(b, a)
        else:
            _assert_same_run(b, a, 144)
    assert [b.epochs[0].lower_bound is not None for b in batched[:5]] == [
        False, True, False, True, False,
    ]  # fmt: skip
    assert sorted(seen) == [(k, e) for k in range(5) for e in (1, 2, 3)]
    with pytest.raises(ValueError, match="optimizer: one name per run, got 2 names for 3 runs"):
        train_batched("digits_mlp", ["adam", "sgdm"], runs[:3], budget)


def test_lr_milestones_decay_each_model_as_multisteplr_does(one_thread) -> None:
    task = replace(trainable("digits_mlp"), name="digits_decay", default_epochs=3, milestones=(1,))
    runs = [({"lr": 0.01}, 1), ({"lr": 0.002, "final_lr": 0.3}, 2)]
    budget = Budget(data_fraction=0.2)
    batched = train_batched(task, "adabound", runs, budget, keep_parameters=True)
    alone = [train(task, "adabound", h, s, budget, keep_parameters=True) for h, s in runs]
    for b, a in zip(batched, alone, strict=True):
        _assert_identical_run(b, a)
    assert [r.lr for r in batched[0].epochs] == pytest.approx([0.01, 0.001, 0.001])


def test_a_step_cap_and_an_exception_from_on_epoch_end_the_batch() -> None:
    runs = [({}, 1), ({"lr": 0.01}, 2)]
    capped = train_batched("mnist1d_mlp", "adam", runs, Budget(epochs=3, max_steps=50))
    assert [r.steps for r in capped] == [50, 50]
    assert [len(r.epochs) for r in capped] == [2, 2]  # 36 steps an epoch, then 14

    class Stop(Exception):
        pass

    def stop(k: int, record) -> None:
        raise Stop()

    with pytest.raises(Stop):
        train_batched("mnist1d_mlp", "adam", runs, Budget(epochs=3), on_epoch=stop)


def test_the_written_out_mlp_loss_and_gradients_are_autograds_bit_for_bit(one_thread) -> None:
    from boundsweep.studies._training._batched_mlp import StackedMLP
    from boundsweep.studies.tasks._mlp import MLP
    from torch.func import stack_module_state
    from torch.nn import functional as F

    torch.manual_seed(0)
    models = [MLP(40, [100, 100], 10) for _ in range(5)]
    params, _ = stack_module_state(models)
    mlp = StackedMLP.of(models[0], params)
    assert mlp is not None
    x, y = torch.randn(5, 32, 40), torch.randint(0, 10, (5, 32))
    losses = mlp.loss_and_grads(x, y)
    # The very kernels autograd runs for one model: equal bit for bit, not just close.
    assert torch.equal(mlp.logits(x[0]), torch.stack([m(x[0]) for m in models]).detach())
    for k, model in enumerate(models):
        loss = F.cross_entropy(model(x[k]), y[k])
        loss.backward()
        assert float(losses[k]) == loss.item()
        for name, param in model.named_parameters():
            assert torch.equal(params[name].grad[k], param.grad), (k, name)


def test_a_model_that_is_not_a_plain_mlp_is_batched_through_vmap() -> None:
    from boundsweep.studies._training._batched_mlp import StackedMLP
    from torch import nn

    def build(data) -> nn.Module:  # a Tanh between the layers: not a Linear/ReLU stack
        return nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, data.num_classes))

    task = replace(trainable("digits_mlp"), name="digits_tanh", build_model=build)
    model = build(trainable("digits_mlp").load_data(None))
    assert StackedMLP.of(model, dict(model.named_parameters())) is None
    runs = _runs("adabound")
    budget = Budget(epochs=2, data_fraction=0.1)
    batched = train_batched(task, "adabound", runs, budget, keep_parameters=True)
    alone = [train(task, "adabound", h, s, budget, keep_parameters=True) for h, s in runs]
    for b, a in zip(batched, alone, strict=True):
        _assert_same_run(b, a, 100)
