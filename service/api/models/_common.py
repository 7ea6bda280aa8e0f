"""Shapes shared by every resource: pages and JSON-safe numbers."""

from __future__ import annotations

import math
from typing import Any

from boundsweep.studies.campaign import NAME_PATTERN
from pydantic import BaseModel

__all__ = ["NAME_PATTERN", "Page", "json_safe"]


def json_safe(value: Any) -> Any:
    """`value` with every NaN or infinity replaced by None, recursively.

    Optuna stores a diverged run's metrics as NaN/inf in user attributes; strict JSON has no
    such numbers and the response would fail to serialise.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


class Page(BaseModel):
    """Paging fields of every list response: `count` matching items, this page's window."""

    count: int
    limit: int
    offset: int
