"""The torch half of the registry: the constructor behind each ``REGISTRY`` entry.

``_registry.py`` says what each optimizer's hyperparameters are and validates them without
torch; this module turns a validated entry into a ``torch.optim.Optimizer``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from boundsweep.optimizers._adabound import AdaBound, AdaBoundW, AMSBound
from boundsweep.optimizers._catalog import OPTIMIZERS
from boundsweep.optimizers._plugins import load_code
from boundsweep.optimizers._registry import REGISTRY
from torch.optim import Optimizer

__all__ = ["FACTORIES", "build_optimizer"]


def _fused_if_possible(cls: type[Optimizer], **fixed: Any) -> Callable[..., Optimizer]:
    """A factory for a torch optimizer using its fused kernel where the params allow it.

    On CPU torch's default is the slow per-tensor loop; a baseline should not be handicapped
    against the bounded optimizers' fused step.
    """

    def factory(params: list[Any], **kwargs: Any) -> Optimizer:
        tensors = [
            t for item in params for t in (item["params"] if isinstance(item, dict) else [item])
        ]
        fusable = all(
            isinstance(t, torch.Tensor)
            and t.is_floating_point()
            and t.device.type in ("cpu", "cuda")
            for t in tensors
        )
        return cls(params, **fixed, **kwargs, **({"fused": True} if fusable else {}))

    return factory


# Builds each optimizer from params and the constructor keyword arguments of its entry.
FACTORIES: dict[str, Callable[..., Optimizer]] = {
    "sgdm": _fused_if_possible(torch.optim.SGD),
    "adam": _fused_if_possible(torch.optim.Adam),
    "amsgrad": _fused_if_possible(torch.optim.Adam, amsgrad=True),
    "adagrad": _fused_if_possible(torch.optim.Adagrad),
    "adamw": _fused_if_possible(torch.optim.AdamW),
    "adabound": AdaBound,
    "amsbound": AMSBound,
    "adaboundw": AdaBoundW,
}
assert set(FACTORIES) == set(REGISTRY), "every registry entry needs a factory, and only those"


def build_optimizer(name: str, params: Iterable[Any], hparams: Mapping[str, Any]) -> Optimizer:
    """Build optimizer ``name`` (any ``OPTIMIZERS`` name) over ``params``.

    Args:
        name: A key of ``OPTIMIZERS``: the registry's, ``torch.optim``'s or a plugin's.
        params: Parameters or param groups (a group's own ``lr`` etc. are kept).
        hparams: Hyperparameter names to values; missing ones take their defaults.

    Raises:
        ValueError: An unknown optimizer (listing the valid names), an unknown hyperparameter
            (listing that optimizer's) or an invalid value (naming it and its range).
        ImportError: A plugin's ``factory`` that does not import.
    """
    entry = OPTIMIZERS.get(name)
    if entry is None:
        raise ValueError(f"Unknown optimizer {name!r} (valid: {', '.join(sorted(OPTIMIZERS))})")
    kwargs = entry.constructor_kwargs(hparams)
    if name in FACTORIES and entry is REGISTRY.get(name):
        return FACTORIES[name](list(params), **kwargs)
    if entry.factory is None:
        raise ValueError(f"optimizer {name!r} has no factory (OptimizerEntry.factory)")
    factory = load_code(entry.factory, f"optimizer {name!r}")
    optimizer = factory(list(params), **entry.fixed, **kwargs)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer {name!r}: {entry.factory} built a {type(optimizer).__name__}, not a "
            "torch.optim.Optimizer"
        )
    return optimizer
