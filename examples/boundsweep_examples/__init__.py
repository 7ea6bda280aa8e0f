"""Example boundsweep plugins: the metadata the entry points name (no torch imported here).

* ``cartpole_reinforce``: REINFORCE on gymnasium's CartPole-v1, the task's own training loop,
  scored by the mean episode return (``boundsweep_examples.cartpole:run``).
* ``wine_mlp``: the 178-sample UCI wine CSV (shipped in this package) on boundsweep's training
  loop, a small MLP, scored by accuracy (``boundsweep_examples.wine``).
* ``lion``, ``adabelief``: optimizers from the ``pytorch-optimizer`` package.
"""

from __future__ import annotations

from boundsweep.optimizers import HyperParam, OptimizerEntry
from boundsweep.studies.tasks import Task

CARTPOLE = Task(
    name="cartpole_reinforce",
    description="CartPole-v1, REINFORCE with a 4-32-2 policy, 8 episodes per epoch",
    kind="loop",
    metric="return",
    direction="maximize",
    default_epochs=40,
    diverged_value=0.0,  # below any real episode (CartPole pays 1 per step survived)
    margin=10.0,  # ten steps of balance: well above a rounding, well below a skill gap
    code="boundsweep_examples.cartpole:run",
)

WINE = Task(
    name="wine_mlp",
    description="UCI wine (178 samples, 13 features, 3 cultivars, CSV), 13-32-3 MLP",
    kind="classification",
    metric="accuracy",
    direction="maximize",
    default_epochs=30,
    diverged_value=1 / 3,  # chance
    batch_size=16,
    train_size=114,  # 178 minus a 20% test split, minus 10% of the rest for validation
    batchable=True,
    code="boundsweep_examples.wine",
)

_LR = HyperParam("lr", 1e-4, 1e-6, 1e-1, log=True)
_BETA1 = HyperParam("beta1", 0.9, 0.0, 1.0, log=False, high_inclusive=False)
_BETA2 = HyperParam("beta2", 0.99, 0.0, 1.0, log=False, high_inclusive=False)
_WD = HyperParam("weight_decay", 0.0, 0.0, 1.0, log=False)

LION = OptimizerEntry(
    "lion",
    "Lion (Chen et al. 2023), pytorch-optimizer's: the sign of an interpolated momentum",
    {hp.name: hp for hp in (_LR, _BETA1, _BETA2, _WD)},
    factory="pytorch_optimizer:Lion",
)

ADABELIEF = OptimizerEntry(
    "adabelief",
    "AdaBelief (Zhuang et al. 2020), pytorch-optimizer's: Adam scaled by the belief in the gradient",
    {
        hp.name: hp
        for hp in (
            HyperParam("lr", 1e-3, 1e-6, 1.0, log=True),
            _BETA1,
            HyperParam("beta2", 0.999, 0.0, 1.0, log=False, high_inclusive=False),
            HyperParam("eps", 1e-16, 1e-20, 1e-6, log=True),
            _WD,
        )
    },
    factory="pytorch_optimizer:AdaBelief",
)
