"""The registry: its entries, their hyperparameters, validation and building."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from boundsweep.optimizers import (
    FACTORIES,
    REGISTRY,
    AdaBound,
    AdaBoundW,
    AMSBound,
    HyperParam,
    OptimizerEntry,
    build_optimizer,
    current_bounds,
)

EXPECTED_CLASSES = {
    "sgdm": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "amsgrad": torch.optim.Adam,
    "adagrad": torch.optim.Adagrad,
    "adamw": torch.optim.AdamW,
    "adabound": AdaBound,
    "amsbound": AMSBound,
    "adaboundw": AdaBoundW,
}

ALL_HYPERPARAMS = [
    (name, hp) for name, entry in REGISTRY.items() for hp in entry.hyperparams.values()
]


def _weights() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.ones(3))]


def test_registry_has_exactly_the_contracted_optimizers() -> None:
    assert list(REGISTRY) == list(EXPECTED_CLASSES)
    assert {name for name, entry in REGISTRY.items() if entry.bounded} == {
        "adabound",
        "amsbound",
        "adaboundw",
    }
    for name, entry in REGISTRY.items():
        assert isinstance(entry, OptimizerEntry)
        assert entry.name == name and entry.description


@pytest.mark.parametrize("name", list(REGISTRY))
def test_build_with_defaults_gives_the_class_and_the_registry_defaults(name: str) -> None:
    entry = REGISTRY[name]
    optimizer = build_optimizer(name, (p for p in _weights()), {})
    assert type(optimizer) is EXPECTED_CLASSES[name]
    group = optimizer.param_groups[0]
    for hp in entry.hyperparams.values():
        if hp.name == "beta1":
            assert group["betas"][0] == hp.default
        elif hp.name == "beta2":
            assert group["betas"][1] == hp.default
        else:
            assert group[hp.name] == hp.default, hp.name
    assert (current_bounds(optimizer) is not None) == entry.bounded
    assert group.get("amsgrad", False) == (name == "amsgrad")
    assert group.get("amsbound", False) == (name == "amsbound")


def test_build_maps_beta1_and_beta2_to_betas() -> None:
    optimizer = build_optimizer("adabound", _weights(), {"beta1": 0.5, "beta2": 0.75, "gamma": 0.1})
    group = optimizer.param_groups[0]
    assert group["betas"] == (0.5, 0.75)
    assert group["gamma"] == 0.1


def test_unknown_optimizer_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match="Unknown optimizer 'lbfgs'.*adabound, adaboundw, adadel"):
        build_optimizer("lbfgs", _weights(), {})


def test_unknown_hyperparameter_lists_that_optimizers() -> None:
    with pytest.raises(ValueError, match=r"final_lr.*'adam'.*lr, beta1, beta2, eps, weight_decay"):
        build_optimizer("adam", _weights(), {"final_lr": 0.1})


@pytest.mark.parametrize(("optimizer", "hp"), ALL_HYPERPARAMS, ids=lambda x: getattr(x, "name", x))
def test_out_of_range_values_raise_naming_the_hyperparameter(
    optimizer: str, hp: HyperParam
) -> None:
    assert hp.validate(hp.default) == hp.default
    assert hp.contains(hp.low) == hp.low_inclusive
    assert hp.contains(hp.high) == hp.high_inclusive
    below = hp.low if not hp.low_inclusive else hp.low - abs(hp.low) * 0.5 - 1e-3
    above = hp.high if not hp.high_inclusive else hp.high * 2 + 1
    for value in (below, above, float("nan"), "0.1", True):
        with pytest.raises(ValueError, match=rf"Invalid {hp.name}: .*{hp.range_text[1:-1]}"):
            build_optimizer(optimizer, _weights(), {hp.name: value})


@pytest.mark.parametrize(("optimizer", "hp"), ALL_HYPERPARAMS, ids=lambda x: getattr(x, "name", x))
def test_every_value_in_range_builds(optimizer: str, hp: HyperParam) -> None:
    """The registry's range never admits a value the optimizer's constructor refuses."""
    inside = [hp.default, hp.low if hp.low_inclusive else hp.low + 1e-9 * (hp.high - hp.low)]
    inside.append(hp.high if hp.high_inclusive else hp.high - 1e-9 * (hp.high - hp.low))
    for value in inside:
        build_optimizer(optimizer, _weights(), {hp.name: value})


def test_log_scale_ranges_are_positive_and_defaults_inside() -> None:
    for _, hp in ALL_HYPERPARAMS:
        assert hp.contains(hp.default), hp
    # Every registry HyperParam passed this check on construction; make sure it is enforced.
    with pytest.raises(AssertionError, match="log scale needs low > 0"):
        HyperParam("lr", 1e-3, 0.0, 1.0, log=True)
    assert REGISTRY["adabound"].hyperparams["gamma"].log
    assert REGISTRY["adabound"].hyperparams["final_lr"].log
    assert not REGISTRY["adabound"].hyperparams["beta2"].log


def test_hyperparam_is_frozen_and_checks_its_own_range() -> None:
    hp = HyperParam("momentum", 0.9, 0.0, 1.0, log=False, high_inclusive=False)
    with pytest.raises(AttributeError):
        hp.default = 0.5  # type: ignore[misc]
    assert hp.range_text == "[0, 1)"
    assert hp.validate(0) == 0.0 and isinstance(hp.validate(0), float)
    with pytest.raises(
        ValueError, match=r"Invalid momentum: 1.0 is outside its valid range \[0, 1\)"
    ):
        hp.validate(1.0)


def test_the_registry_metadata_imports_no_torch_and_the_classes_load_it() -> None:
    # Specs are validated by the CLI, the API and the report, which never train.
    code = (
        "import sys\n"
        "from boundsweep.optimizers import REGISTRY, bound_at\n"
        "REGISTRY['adabound'].validate({'final_lr': 0.1}); bound_at(0.1, 1e-3, 10)\n"
        "assert 'torch' not in sys.modules, 'the metadata loaded torch'\n"
        "from boundsweep.optimizers import AdaBound\n"
        "assert 'torch' in sys.modules and AdaBound.__module__.endswith('_adabound')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_entry_has_a_factory_and_builds_with_its_constructor_kwargs() -> None:
    assert set(FACTORIES) == set(REGISTRY)
    kwargs = REGISTRY["adabound"].constructor_kwargs({"beta1": 0.5, "gamma": 0.1})
    assert kwargs["betas"] == (0.5, 0.999) and "beta1" not in kwargs and kwargs["gamma"] == 0.1
