"""What a campaign's name may be, in a module of its own: the API validates names with it
without loading the spec's registries (and torch) at start-up."""

from __future__ import annotations

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
"""A campaign name: lowercase letters, digits, ``_``, ``.`` and ``-``; at most 63 characters."""
