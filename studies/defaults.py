"""The default storage, in a module that imports nothing: the command line's ``--help``, the
service's settings and the storage all read it from here."""

from __future__ import annotations

DEFAULT_STORAGE = "sqlite:///boundsweep.db"
"""The storage every command uses without ``--storage`` or ``BOUNDSWEEP_DATABASE_URL``."""
