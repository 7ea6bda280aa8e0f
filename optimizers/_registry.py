"""Every optimizer a study can use, with its hyperparameters, defaults and valid ranges.

Campaign specs are validated against this registry and default search spaces are built from
it: a hyperparameter's ``[low, high]`` (log-scaled where ``log``) is both its valid range and
the range searched when a spec does not say otherwise.

This is the metadata half and imports no torch, so the CLI, the API and the report validate
specs without loading it; ``_factories.py`` builds the optimizers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["REGISTRY", "TORCH_OPTIM", "HyperParam", "OptimizerEntry"]


@dataclass(frozen=True)
class HyperParam:
    """One scalar hyperparameter: its default and its valid range.

    Attributes:
        name: The registry name (``lr``, ``beta1``, ``final_lr`` ...).
        default: The value used when a spec leaves it out.
        low: Smallest valid value.
        high: Largest valid value.
        log: Whether it is searched on a log scale.
        low_inclusive: Whether ``low`` itself is valid.
        high_inclusive: Whether ``high`` itself is valid.
    """

    name: str
    default: float
    low: float
    high: float
    log: bool
    low_inclusive: bool = True
    high_inclusive: bool = True

    def __post_init__(self) -> None:
        assert self.low < self.high, f"{self.name}: low {self.low} >= high {self.high}"
        assert not self.log or self.low > 0, f"{self.name}: a log scale needs low > 0"

    @property
    def range_text(self) -> str:
        """The valid range in interval notation, e.g. ``[0, 1)``."""
        left = "[" if self.low_inclusive else "("
        right = "]" if self.high_inclusive else ")"
        return f"{left}{self.low:g}, {self.high:g}{right}"

    def contains(self, value: float) -> bool:
        """Whether ``value`` is in the valid range."""
        above = value >= self.low if self.low_inclusive else value > self.low
        below = value <= self.high if self.high_inclusive else value < self.high
        return above and below

    def validate(self, value: Any) -> float:
        """Return ``value`` as a float if it is in range.

        Raises:
            ValueError: Not a real number, or outside the valid range; the message names the
                hyperparameter and its range.
        """
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(
                f"Invalid {self.name}: {value!r} is not a number (valid range {self.range_text})"
            )
        value = float(value)
        if not math.isfinite(value) or not self.contains(value):
            raise ValueError(
                f"Invalid {self.name}: {value!r} is outside its valid range {self.range_text}"
            )
        return value


@dataclass(frozen=True)
class OptimizerEntry:
    """An optimizer a study can use: the built-in ones, ``torch.optim``'s, or a plugin's.

    Attributes:
        name: The catalog key (lowercase letters, digits and ``_``).
        description: One line for humans.
        hyperparams: Its searchable hyperparameters by name.
        bounded: Whether its step size is clipped by AdaBound's dynamic bound.
        factory: ``"package.module:Class"``, the ``torch.optim.Optimizer`` subclass (or a
            function returning one) built as ``factory(params, **fixed, **hyperparameters)``;
            loaded only when a trial trains. ``None`` for the built-in registry's entries,
            which ``optimizers._factories.FACTORIES`` builds.
        fixed: Constructor arguments that are not searched (``{"amsgrad": True}``).
    """

    name: str
    description: str
    hyperparams: dict[str, HyperParam]
    bounded: bool = False
    factory: str | None = None
    fixed: dict[str, Any] = field(default_factory=dict)

    def defaults(self) -> dict[str, float]:
        """Every hyperparameter's default."""
        return {name: hp.default for name, hp in self.hyperparams.items()}

    def validate(self, hparams: Mapping[str, Any]) -> dict[str, float]:
        """All hyperparameters, defaults filled in, each validated.

        Raises:
            ValueError: An unknown hyperparameter (listing this optimizer's) or an invalid value.
        """
        unknown = sorted(set(hparams) - set(self.hyperparams))
        if unknown:
            raise ValueError(
                f"Unknown hyperparameter(s) {', '.join(unknown)} for optimizer {self.name!r} "
                f"(valid: {', '.join(self.hyperparams)})"
            )
        values = self.defaults()
        for name, value in hparams.items():
            values[name] = self.hyperparams[name].validate(value)
        return values

    def constructor_kwargs(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """The validated hyperparameters as the optimizer's constructor takes them.

        Search spaces are over scalars, so the registry names ``beta1`` and ``beta2``; the
        constructors take ``betas=(beta1, beta2)``.
        """
        values = self.validate(hparams)
        kwargs: dict[str, Any] = {k: v for k, v in values.items() if k not in ("beta1", "beta2")}
        if "beta1" in values:
            kwargs["betas"] = (values["beta1"], values["beta2"])
        return kwargs


def _lr(default: float, low: float = 1e-5, high: float = 1.0) -> HyperParam:
    return HyperParam("lr", default, low, high, log=True)


_BETA1 = HyperParam("beta1", 0.9, 0.0, 1.0, log=False, high_inclusive=False)
_BETA2 = HyperParam("beta2", 0.999, 0.0, 1.0, log=False, high_inclusive=False)
_EPS = HyperParam("eps", 1e-8, 1e-12, 1e-1, log=True)
_WEIGHT_DECAY = HyperParam("weight_decay", 0.0, 0.0, 0.1, log=False)
_DECOUPLED_WEIGHT_DECAY = HyperParam("weight_decay", 1e-2, 0.0, 1.0, log=False)
_FINAL_LR = HyperParam("final_lr", 0.1, 1e-4, 10.0, log=True)
# gamma >= 1 would close the bounds within the first step: the optimizer would be SGD from
# the start, which is not AdaBound any more.
_GAMMA = HyperParam("gamma", 1e-3, 1e-6, 1.0, log=True, high_inclusive=False)


def _params(*hyperparams: HyperParam) -> dict[str, HyperParam]:
    return {hp.name: hp for hp in hyperparams}


_ADAM_PARAMS = (_lr(1e-3), _BETA1, _BETA2, _EPS, _WEIGHT_DECAY)
_ADAMW_PARAMS = (_lr(1e-3), _BETA1, _BETA2, _EPS, _DECOUPLED_WEIGHT_DECAY)
_BOUNDED_PARAMS = (*_ADAM_PARAMS, _FINAL_LR, _GAMMA)

REGISTRY: dict[str, OptimizerEntry] = {
    entry.name: entry
    for entry in [
        OptimizerEntry(
            "sgdm",
            "SGD with (heavy-ball) momentum",
            _params(
                _lr(0.1, 1e-4, 10.0),
                HyperParam("momentum", 0.9, 0.0, 1.0, log=False, high_inclusive=False),
                _WEIGHT_DECAY,
            ),
            bounded=False,
        ),
        OptimizerEntry(
            "adam",
            "Adam (Kingma & Ba 2015)",
            _params(*_ADAM_PARAMS),
            bounded=False,
        ),
        OptimizerEntry(
            "amsgrad",
            "AMSGrad (Reddi et al. 2018): Adam with the running maximum of the second moment",
            _params(*_ADAM_PARAMS),
            bounded=False,
        ),
        OptimizerEntry(
            "adagrad",
            "AdaGrad (Duchi et al. 2011)",
            _params(
                _lr(1e-2, 1e-5, 1.0), HyperParam("eps", 1e-10, 1e-12, 1e-1, log=True), _WEIGHT_DECAY
            ),
            bounded=False,
        ),
        OptimizerEntry(
            "adamw",
            "AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay",
            _params(*_ADAMW_PARAMS),
            bounded=False,
        ),
        OptimizerEntry(
            "adabound",
            "AdaBound (Luo et al. 2019): Adam's step size clipped to bounds converging to final_lr",
            _params(*_BOUNDED_PARAMS),
            bounded=True,
        ),
        OptimizerEntry(
            "amsbound",
            "AMSBound (Luo et al. 2019): AdaBound with the running maximum of the second moment",
            _params(*_BOUNDED_PARAMS),
            bounded=True,
        ),
        OptimizerEntry(
            "adaboundw",
            "AdaBoundW: AdaBound with AdamW's decoupled weight decay",
            _params(*_ADAMW_PARAMS, _FINAL_LR, _GAMMA),
            bounded=True,
        ),
    ]
}


def _torch(name: str, cls: str, description: str, *hyperparams: HyperParam) -> OptimizerEntry:
    return OptimizerEntry(name, description, _params(*hyperparams), factory=f"torch.optim:{cls}")


_MOMENTUM0 = HyperParam("momentum", 0.0, 0.0, 1.0, log=False, high_inclusive=False)

TORCH_OPTIM: dict[str, OptimizerEntry] = {
    entry.name: entry
    for entry in [
        _torch("sgd", "SGD", "torch.optim.SGD: plain SGD (momentum 0 unless searched)",
               _lr(1e-2, 1e-4, 10.0), _MOMENTUM0, _WEIGHT_DECAY),
        _torch("rmsprop", "RMSprop", "torch.optim.RMSprop (Hinton 2012)",
               _lr(1e-2, 1e-5, 1.0), HyperParam("alpha", 0.99, 0.0, 1.0, log=False,
               high_inclusive=False), _EPS, _MOMENTUM0, _WEIGHT_DECAY),
        _torch("radam", "RAdam", "torch.optim.RAdam (Liu et al. 2020): rectified Adam",
               *_ADAM_PARAMS),
        _torch("nadam", "NAdam", "torch.optim.NAdam (Dozat 2016): Adam with Nesterov momentum",
               _lr(2e-3), _BETA1, _BETA2, _EPS, _WEIGHT_DECAY),
        _torch("adamax", "Adamax", "torch.optim.Adamax: Adam with the infinity norm",
               _lr(2e-3), _BETA1, _BETA2, _EPS, _WEIGHT_DECAY),
        _torch("adadelta", "Adadelta", "torch.optim.Adadelta (Zeiler 2012)",
               _lr(1.0, 1e-3, 10.0), HyperParam("rho", 0.9, 0.0, 1.0, log=False,
               high_inclusive=False), HyperParam("eps", 1e-6, 1e-12, 1e-1, log=True),
               _WEIGHT_DECAY),
    ]
}  # fmt: skip
"""``torch.optim``'s other optimizers as arms (the registry's already cover SGD-momentum,
Adam, AMSGrad, AdaGrad and AdamW). Each is built by its ``factory``."""
