"""Installed plugins: tasks and optimizers other packages add, found through entry points.

A package adds a task under the entry point group ``boundsweep.tasks`` and an optimizer under
``boundsweep.optimizers``; each entry point names a torch-free metadata object (a ``Task``, an
``OptimizerEntry``) whose ``name`` is the entry point's name. A :class:`Catalog` holds the
built-in ones and loads the installed ones on first use, so the API, every worker (``--gpus``
children included), the scheduler and the report find the same names the same way.

For a quick local try an operator sets ``BOUNDSWEEP_PLUGINS`` to module names (comma
separated): each is imported on first use and registers its objects with
``Catalog.register``. Nothing here ever imports a module a request names: only installed
distributions and the operator's setting bring code in.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

__all__ = [
    "PLUGINS_ENV",
    "PLUGIN_NAME_PATTERN",
    "Catalog",
    "NotInstalledError",
    "Origin",
    "PluginError",
    "load_code",
    "operator_modules",
]

log = logging.getLogger("boundsweep.plugins")

PLUGINS_ENV = "BOUNDSWEEP_PLUGINS"
"""Operator setting: comma-separated module names imported on first use of a catalog."""
PLUGIN_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
"""A task or optimizer name: a lowercase letter, then lowercase letters, digits and ``_``."""

T = TypeVar("T")


class PluginError(RuntimeError):
    """An installed plugin is unusable as a whole: a name clash, a bad name, a wrong object,
    or a ``BOUNDSWEEP_PLUGINS`` module that does not import. Raised at first use, so a
    process says it at start instead of training with the wrong code."""


class NotInstalledError(KeyError):
    """A task or optimizer a stored campaign names is not installed in this process.

    A ``KeyError`` (``name in catalog`` and ``catalog.get`` behave as for a dict), but not a
    ``ValueError``: pydantic passes it through, so reading a stored spec raises it as it is
    and a worker or the API can skip that campaign instead of failing on it.
    """

    def __init__(
        self,
        kind: str,
        name: str,
        installed: list[str],
        campaign: str | None = None,
        provided_by: str | None = None,
    ) -> None:
        super().__init__(name)
        self.kind = kind
        self.name = name
        self.installed = installed
        self.campaign = campaign
        self.provided_by = provided_by
        if provided_by is None:
            how = (
                f"install the package that provides it (its entry point group is "
                f"boundsweep.{kind}s, e.g. `pip install <package>`) or name its module in "
                f"{PLUGINS_ENV}"
            )
        elif provided_by.startswith("module:"):
            module = provided_by.removeprefix("module:").split()[0]
            how = f"it came from module {module}: set {PLUGINS_ENV}={module} with it importable"
        else:
            dist, _, version = provided_by.partition(" ")
            how = f"it came from {provided_by}: `pip install {dist}=={version}`"
        where = f"campaign {campaign!r}: " if campaign else ""
        self.message = (
            f"{where}{kind} {name!r} is not installed here: {how}; installed {kind}s: "
            f"{', '.join(installed)}"
        )

    def __str__(self) -> str:
        return self.message

    def in_campaign(
        self, campaign: str, plugins: dict[str, str] | None = None
    ) -> NotInstalledError:
        """The same error, naming the campaign that needs the missing name and, from the
        campaign's record of its plugins (``plugins``: name -> origin), what provided it."""
        provided_by = (plugins or {}).get(self.name)
        return NotInstalledError(self.kind, self.name, self.installed, campaign, provided_by)


@dataclass(frozen=True)
class Origin:
    """Where a task or optimizer comes from: a distribution and its version, or the operator's
    ``BOUNDSWEEP_PLUGINS`` module (``distribution`` is then ``module:<name>``)."""

    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.distribution} {self.version}"


def _own_version() -> str:
    try:
        return metadata.version("boundsweep")
    except metadata.PackageNotFoundError:  # a source checkout that is not installed
        return "0+source"


BUILTIN = Origin("boundsweep", _own_version())
"""The origin of every built-in task and optimizer."""


def operator_modules() -> list[str]:
    """The module names ``BOUNDSWEEP_PLUGINS`` lists (empty when unset)."""
    return [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]


_imported: set[str] = set()
_importing = threading.RLock()
_registering: list[str] = []


_seen = {"env": None}


def _import_operator_modules() -> None:
    """Import each ``BOUNDSWEEP_PLUGINS`` module once (they call ``Catalog.register``)."""
    with _importing:
        _seen["env"] = os.environ.get(PLUGINS_ENV, "")
        for name in operator_modules():
            if name in _imported:
                continue
            _imported.add(name)
            _registering.append(name)
            try:
                importlib.import_module(name)
            except PluginError:
                raise  # it says what is wrong with what the module registers
            except Exception as exc:
                raise PluginError(
                    f"{PLUGINS_ENV}: module {name!r} does not import ({type(exc).__name__}: "
                    f"{exc}); fix it or remove it from {PLUGINS_ENV}"
                ) from exc
            finally:
                _registering.pop()


def load_code(reference: str, what: str) -> Any:
    """The object ``"package.module:attribute"`` (or a module, ``"package.module"``) names.

    Only references an installed task or optimizer declares are ever loaded, never one a
    request carries.

    Raises:
        NotInstalledError-like ``ImportError`` naming ``what`` when it does not import.
    """
    module_name, _, attribute = reference.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in filter(None, attribute.split(".")):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"{what}: cannot load {reference!r} ({exc})") from exc
    return obj


class Catalog(MutableMapping[str, T], Generic[T]):
    """Built-in objects by name, plus the installed plugins of one entry point group.

    The plugins load on the first read (any lookup, ``in``, iteration). A name two sources
    claim is a :class:`PluginError` naming both; a missing name is a
    :class:`NotInstalledError` saying how to install it.

    Args:
        kind: ``"task"`` or ``"optimizer"`` (the group is ``boundsweep.<kind>s``).
        builtins: The built-in objects by name.
        cls: The type a plugin's object must be.
        check: What is wrong with a plugin's object beyond its type and name (``None``: fine).
    """

    def __init__(
        self,
        kind: str,
        builtins: dict[str, T],
        cls: type,
        check: Callable[[T], str | None] | None = None,
    ) -> None:
        self.kind = kind
        self._check = check
        self.group = f"boundsweep.{kind}s"
        self._cls = cls
        self._items: dict[str, T] = dict(builtins)
        self._origins: dict[str, Origin] = dict.fromkeys(builtins, BUILTIN)
        self._loaded = False
        self._lock = threading.RLock()
        self.broken: dict[str, str] = {}
        """Entry point name -> why it did not load (a broken package is skipped, not fatal)."""

    # --- loading -------------------------------------------------------------------------

    def _load(self) -> None:
        if self._loaded and os.environ.get(PLUGINS_ENV, "") == _seen["env"]:
            return
        with self._lock:
            if not self._loaded:
                self._loaded = True  # first: a plugin module reading the catalog must not recurse
                try:
                    self._load_entry_points()
                except BaseException:
                    self._loaded = False
                    raise
            # Also when the setting changed since (a notebook, a test): new modules only.
            _import_operator_modules()

    def _load_entry_points(self) -> None:
        for point in metadata.entry_points(group=self.group):
            dist = point.dist
            origin = Origin(dist.name, dist.version) if dist is not None else Origin("?", "?")
            try:
                obj = point.load()
            except Exception as exc:
                self.broken[point.name] = f"{origin}: {type(exc).__name__}: {exc}"
                log.warning(
                    "%s %r of %s does not load, skipped: %s",
                    self.kind, point.name, origin, exc,
                )  # fmt: skip
                continue
            if callable(obj) and not isinstance(obj, self._cls):
                obj = obj()  # a factory of the metadata object
            self._add(obj, origin, entry_point=point.name)

    def _add(self, obj: Any, origin: Origin, entry_point: str | None = None) -> None:
        if not isinstance(obj, self._cls):
            raise PluginError(
                f"{self.kind} plugin of {origin}: expected a {self._cls.__name__}, got "
                f"{type(obj).__name__}"
            )
        name = obj.name  # type: ignore[attr-defined]
        if not isinstance(name, str) or not re.fullmatch(PLUGIN_NAME_PATTERN, name):
            raise PluginError(
                f"{self.kind} plugin of {origin}: name {name!r} is not valid (lowercase letters, "
                "digits and _, starting with a letter, at most 48 characters)"
            )
        problem = self._check(obj) if self._check is not None else None
        if problem:
            raise PluginError(f"{self.kind} plugin {name!r} of {origin}: {problem}")
        if entry_point is not None and entry_point != name:
            raise PluginError(
                f"{self.kind} plugin of {origin}: entry point {entry_point!r} names an object "
                f"called {name!r}; they must be the same"
            )
        with self._lock:
            if name in self._items and self._origins[name] != origin:
                raise PluginError(
                    f"{self.kind} name clash: {name!r} is provided by both "
                    f"{self._origins[name]} and {origin}; uninstall one of them"
                )
            self._items[name] = obj
            self._origins[name] = origin

    def register(self, obj: T) -> T:
        """Add ``obj`` from a ``BOUNDSWEEP_PLUGINS`` module (or a test, or a notebook).

        Its origin is the module being imported (``module:<name>``), else the caller's.

        Raises:
            PluginError: a bad name, a wrong type, or a name another source provides.
        """
        self._load()
        module = _registering[-1] if _registering else "__main__"
        self._add(obj, Origin(f"module:{module}", "local"))
        return obj

    # --- reading -------------------------------------------------------------------------

    def origin(self, name: str) -> Origin:
        """Where ``name`` comes from; ``NotInstalledError`` when it is not here."""
        self._load()
        if name not in self._items:
            raise self.missing(name)
        return self._origins[name]

    def missing(self, name: str) -> NotInstalledError:
        """The error for a name this process does not have."""
        return NotInstalledError(self.kind, name, sorted(self._items))

    def __getitem__(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise self.missing(name) from None

    def __setitem__(self, name: str, value: T) -> None:
        self._load()
        with self._lock:
            self._items[name] = value
            self._origins.setdefault(name, BUILTIN)

    def __delitem__(self, name: str) -> None:
        self._load()
        with self._lock:
            del self._items[name]
            self._origins.pop(name, None)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._items))

    def __len__(self) -> int:
        self._load()
        return len(self._items)

    def __repr__(self) -> str:
        return f"Catalog({self.group}: {', '.join(self)})"

    def listing(self, describe: Callable[[T], dict[str, Any]]) -> list[dict[str, Any]]:
        """Every name with its origin and ``describe(obj)``, sorted by name."""
        return [
            {
                "name": name,
                "distribution": self._origins[name].distribution,
                "version": self._origins[name].version,
                **describe(self[name]),
            }
            for name in sorted(self)
        ]
