"""Bounded optimizers (AdaBound, AMSBound, AdaBoundW) and the registry of every optimizer a
study can use."""

from __future__ import annotations

from boundsweep.optimizers._adabound import AdaBound, AdaBoundW, AMSBound
from boundsweep.optimizers._batched import BatchedOptimizer
from boundsweep.optimizers._bounds import bound_schedule, current_bounds
from boundsweep.optimizers._functional import IMPLEMENTATIONS
from boundsweep.optimizers._fused import warm_up
from boundsweep.optimizers._registry import REGISTRY, HyperParam, OptimizerEntry, build_optimizer

__all__ = [
    "IMPLEMENTATIONS",
    "REGISTRY",
    "AMSBound",
    "AdaBound",
    "AdaBoundW",
    "BatchedOptimizer",
    "HyperParam",
    "OptimizerEntry",
    "bound_schedule",
    "build_optimizer",
    "current_bounds",
    "warm_up",
]
