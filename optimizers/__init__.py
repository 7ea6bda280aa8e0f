"""Bounded optimizers (AdaBound, AMSBound, AdaBoundW) and the registry of every optimizer a
study can use.

The registry's metadata (names, hyperparameters, ranges) and the bound curves import no
torch: specs are validated by the CLI, the API and the report, which never train. The
optimizers and their factories are the torch half; they load on first use of one of their
names (PEP 562), so ``from boundsweep.optimizers import AdaBound`` works as before.
"""

from __future__ import annotations

from boundsweep.optimizers._bounds import bound_at, bound_schedule, current_bounds
from boundsweep.optimizers._lazy import lazy_front
from boundsweep.optimizers._registry import REGISTRY, HyperParam, OptimizerEntry

# The torch half: each public name and the module that defines it.
_TORCH_NAMES = {
    "AdaBound": "_adabound",
    "AMSBound": "_adabound",
    "AdaBoundW": "_adabound",
    "BatchedOptimizer": "_batched",
    "IMPLEMENTATIONS": "_functional",
    "warm_up": "_fused",
    "FACTORIES": "_factories",
    "build_optimizer": "_factories",
}

__all__ = [
    "FACTORIES",
    "IMPLEMENTATIONS",
    "REGISTRY",
    "AMSBound",
    "AdaBound",
    "AdaBoundW",
    "BatchedOptimizer",
    "HyperParam",
    "OptimizerEntry",
    "bound_at",
    "bound_schedule",
    "build_optimizer",
    "current_bounds",
    "warm_up",
]


__getattr__, __dir__ = lazy_front(__name__, _TORCH_NAMES, __all__)
