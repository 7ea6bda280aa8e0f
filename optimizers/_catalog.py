"""Every optimizer a campaign can name: the registry's, ``torch.optim``'s, and the installed
plugins' (entry point group ``boundsweep.optimizers``). Imports no torch."""

from __future__ import annotations

from boundsweep.optimizers._plugins import Catalog
from boundsweep.optimizers._registry import REGISTRY, TORCH_OPTIM, OptimizerEntry

__all__ = ["OPTIMIZERS", "batchable_optimizer", "describe_optimizer"]


def _plugin_problem(entry: OptimizerEntry) -> str | None:
    """What makes a plugin's entry unusable: no factory, or a hyperparameter filed under
    another name than its own."""
    if not entry.factory or ":" not in entry.factory:
        return f"factory must name its optimizer as 'package.module:Class', got {entry.factory!r}"
    for key, hp in entry.hyperparams.items():
        if key != hp.name:
            return f"hyperparameter {hp.name!r} is filed under {key!r}"
    return None


OPTIMIZERS: Catalog[OptimizerEntry] = Catalog(
    "optimizer", {**REGISTRY, **TORCH_OPTIM}, OptimizerEntry, _plugin_problem
)
"""Name -> ``OptimizerEntry``; ``OPTIMIZERS.origin(name)`` says which distribution provides it,
``OPTIMIZERS.register(entry)`` adds one from a ``BOUNDSWEEP_PLUGINS`` module."""


def batchable_optimizer(name: str) -> bool:
    """Whether ``BatchedOptimizer`` can step ``name`` for K runs at once (the registry's only;
    any other arm trains one trial at a time)."""
    return name in REGISTRY


def describe_optimizer(entry: OptimizerEntry) -> dict[str, object]:
    """An entry as the CLI and the API list it."""
    return {
        "description": entry.description,
        "bounded": entry.bounded,
        "hyperparameters": {
            name: {"default": hp.default, "low": hp.low, "high": hp.high, "log": hp.log}
            for name, hp in entry.hyperparams.items()
        },
    }
