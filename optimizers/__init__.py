"""Bounded optimizers (AdaBound, AMSBound, AdaBoundW), the registry of the paper's optimizers,
and ``OPTIMIZERS``, the catalog of every optimizer a campaign can name (the registry's,
``torch.optim``'s and the installed plugins').

The registry's metadata (names, hyperparameters, ranges) and the bound curves import no
torch: specs are validated by the CLI, the API and the report, which never train. The
optimizers and their factories are the torch half; they load on first use of one of their
names (PEP 562), so ``from boundsweep.optimizers import AdaBound`` works as before.
"""

from __future__ import annotations

from boundsweep.optimizers._bounds import bound_at, bound_schedule, current_bounds
from boundsweep.optimizers._catalog import OPTIMIZERS, batchable_optimizer, describe_optimizer
from boundsweep.optimizers._lazy import lazy_front
from boundsweep.optimizers._plugins import NotInstalledError, Origin, PluginError
from boundsweep.optimizers._registry import REGISTRY, TORCH_OPTIM, HyperParam, OptimizerEntry

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
    "OPTIMIZERS",
    "REGISTRY",
    "TORCH_OPTIM",
    "AMSBound",
    "AdaBound",
    "AdaBoundW",
    "BatchedOptimizer",
    "HyperParam",
    "NotInstalledError",
    "OptimizerEntry",
    "Origin",
    "PluginError",
    "batchable_optimizer",
    "bound_at",
    "bound_schedule",
    "build_optimizer",
    "current_bounds",
    "describe_optimizer",
    "warm_up",
]


__getattr__, __dir__ = lazy_front(__name__, _TORCH_NAMES, __all__)
