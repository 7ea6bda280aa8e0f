"""Built-in campaigns: the paper's robustness sweep and AdaBound's betas.

Grids are log-spaced on the half-decade ladder ``1, 3, 10, 30, ...`` (times a power of ten)
and centred on the paper's defaults, so ``grid_width`` only widens or narrows them: width 5
gives ``final_lr`` 0.01 … 1, ``gamma`` 1e-4 … 1e-2, and the same five-step width around each
baseline's usual learning rate. ``grid_width=3`` is the demo's small version.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from boundsweep.studies._campaign._spec import CampaignSpec

MAX_GRID_WIDTH = 9


def half_decade_grid(center: float, width: int) -> list[float]:
    """``width`` values around ``center`` on the ladder 1, 3, 10, 30, … (rounded to 1 digit).

    ``center`` must itself be a power of ten. Even widths take one more value below.
    """
    exponent = round(math.log10(center))
    if not math.isclose(10.0**exponent, center):
        raise ValueError(f"center must be a power of ten, got {center}")
    start = -(width // 2)
    values = []
    for k in range(start, start + width):
        decade, half = divmod(k, 2)
        mantissa = 3.0 if half else 1.0
        values.append(float(f"{mantissa * 10.0 ** (exponent + decade):.1g}"))
    return values


def _centred(ladder: tuple[float, ...], center: float, width: int) -> list[float]:
    """``width`` consecutive ladder values around ``center`` (shifted inside the ladder)."""
    i = ladder.index(center)
    lo = min(max(0, i - width // 2), len(ladder) - width)
    return list(ladder[lo : lo + width])


_BETA1_LADDER = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995)
_BETA2_LADDER = (0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995, 0.99999)


def _paper_robustness(width: int) -> dict[str, Any]:
    lr_adam = {"grid": half_decade_grid(1e-3, width)}
    bounds = {
        "lr": 1e-3,
        "final_lr": {"grid": half_decade_grid(0.1, width)},
        "gamma": {"grid": half_decade_grid(1e-3, width)},
    }
    return {
        "description": (
            "Luo et al. (2019) claim AdaBound/AMSBound are robust to final_lr and gamma: "
            f"a {width}x{width} final_lr x gamma grid for each, against Adam, AMSGrad and "
            f"SGD-momentum over a {width}-value lr grid."
        ),
        "arms": [
            {"optimizer": "adabound", "space": bounds},
            {"optimizer": "amsbound", "space": bounds},
            {"optimizer": "adam", "space": {"lr": lr_adam}},
            {"optimizer": "amsgrad", "space": {"lr": lr_adam}},
            {
                "optimizer": "sgdm",
                "space": {"lr": {"grid": half_decade_grid(0.1, width)}, "momentum": 0.9},
            },
        ],
        "verdicts": {
            "under_test": ["adabound", "amsbound"],
            "baselines": ["adam", "amsgrad", "sgdm"],
            "early_reference": "adam",
            "final_reference": "sgdm",
        },
    }


def _adabound_betas(width: int) -> dict[str, Any]:
    return {
        "description": f"AdaBound's sensitivity to beta1 x beta2 ({width}x{width} grid).",
        "arms": [
            {
                "optimizer": "adabound",
                "space": {
                    "beta1": {"grid": _centred(_BETA1_LADDER, 0.9, width)},
                    "beta2": {"grid": _centred(_BETA2_LADDER, 0.999, width)},
                },
            }
        ],
    }


@dataclass(frozen=True)
class Preset:
    """A named campaign template; ``build(width)`` returns its description and arms."""

    name: str
    summary: str
    build: Callable[[int], dict[str, Any]]


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "paper-robustness",
            "AdaBound and AMSBound over final_lr x gamma; Adam, AMSGrad, SGD-momentum over lr",
            _paper_robustness,
        ),
        Preset("adabound-betas", "AdaBound over beta1 x beta2", _adabound_betas),
    )
}


def preset(preset_name: str, *, grid_width: int = 5, **overrides: Any) -> CampaignSpec:
    """Build a preset campaign.

    Args:
        preset_name: A key of ``PRESETS``.
        grid_width: Values per swept hyperparameter (1 to 9); 5 by default, 3 for the demo.
        **overrides: Any ``CampaignSpec`` field: ``name`` (default: the preset's name plus the
            task), ``task`` (default ``mnist1d_mlp``), ``seeds`` (default: the task's first
            three, ``[0, 1, 2]``; ``quadratic_deep``: ``[43, 44, 45]``),
            ``budget``, ``pruner``, ``description``, even ``arms``.

    Raises:
        ValueError: Unknown preset (listing the valid ones) or a ``grid_width`` out of range.
        pydantic.ValidationError: An override the spec rejects.
    """
    if preset_name not in PRESETS:
        raise ValueError(
            f"unknown preset {preset_name!r}; valid presets: {', '.join(sorted(PRESETS))}"
        )
    if not isinstance(grid_width, int) or not 1 <= grid_width <= MAX_GRID_WIDTH:
        raise ValueError(
            f"grid_width: must be an integer from 1 to {MAX_GRID_WIDTH}, got {grid_width!r}"
        )
    task = overrides.get("task", "mnist1d_mlp")
    data: dict[str, Any] = {
        "name": f"{preset_name}-{task}".replace("_", "-"),
        "task": task,
        **PRESETS[preset_name].build(grid_width),
    }
    data.update(overrides)
    return CampaignSpec.model_validate(data)
