"""A package front whose heavy names (torch, matplotlib) load on first use.

``optimizers``, ``studies.tasks`` and ``studies.robustness`` each export names whose modules
import torch or matplotlib; the metadata beside them must stay cheap to import (``submit``,
``status``, ``report`` and the API never load torch). Each front calls :func:`lazy_front`
once instead of carrying its own ``__getattr__``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_front(
    package: str, lazy: Mapping[str, str], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: The package's ``__name__``.
        lazy: Each lazily loaded name and the sub-module (relative, e.g. ``"_factories"``)
            that defines it. A name is imported on first access and then cached in the
            package's globals, so later accesses cost nothing.
        public: The package's ``__all__``.
    """

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        vars(sys.modules[package])[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(public)

    return __getattr__, __dir__
