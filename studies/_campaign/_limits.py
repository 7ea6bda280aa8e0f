"""Every limit on what a user may submit, in one place: the API, the CLI and the spec use these.

Two kinds. The document limits hold for any JSON or YAML a client sends (a campaign, a
schedule, its template): nesting depth, integer size, and text free of control characters.
They are checked before anything else reads the document, so a hostile body is a clear error
naming where it is bad instead of a ``RecursionError`` in a parser, a ``ValueError`` from
Python's 4,300-digit integer guard, or a NUL that PostgreSQL refuses to store. The campaign
caps bound what one valid campaign may cost (trials, epochs, optimizer steps); raise them in
code, not in a spec.

This module imports nothing heavy: the service checks bodies with it before torch is loaded.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "MAX_ARMS",
    "MAX_CAMPAIGN_STEPS",
    "MAX_DESCRIPTION_CHARS",
    "MAX_EPOCHS",
    "MAX_GRID_POINTS",
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "MAX_SEEDS",
    "MAX_TRIALS_PER_ARM",
    "MAX_TRIALS_PER_CAMPAIGN",
    "DocumentError",
    "check_document",
    "check_text",
    "parse_json",
    "parse_yaml",
]

# --- documents ----------------------------------------------------------------------------
MAX_JSON_DEPTH = 32
"""Deepest nesting of lists and objects in a submitted document (a spec needs about 6)."""
MAX_INT_DIGITS = 100
"""Most digits of an integer in a submitted document (Python's own guard is 4,300)."""

# --- one campaign ---------------------------------------------------------------------------
MAX_GRID_POINTS = 1_000
"""Most (configuration, seed) pairs one grid arm may hold."""
MAX_TRIALS_PER_ARM = 1_000
"""Most trials one sampled arm may ask for."""
MAX_TRIALS_PER_CAMPAIGN = 10_000
"""Most trials of all arms together."""
MAX_SEEDS = 100
MAX_ARMS = 32
MAX_EPOCHS = 1_000
"""Most epochs per trial (the paper's longest runs are 200)."""
MAX_CAMPAIGN_STEPS = 1_000_000_000
"""Most optimizer steps of all trials of a campaign together (the paper's CIFAR-10 grid at
200 epochs is about 10^8)."""
MAX_DESCRIPTION_CHARS = 2_000

# C0 controls but tab, newline and carriage return; DEL; lone UTF-16 surrogates (JSON's
# "\ud800" escapes), which no database can store as UTF-8.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class DocumentError(ValueError):
    """A submitted document breaks a limit.

    Attributes:
        loc: Where, as a path of keys and indices from the document's root.
        msg: What is wrong, naming the limit.
    """

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        where = ".".join(map(str, loc))
        super().__init__(f"{where}: {msg}" if where else msg)
        self.loc = loc
        self.msg = msg


def check_text(value: str) -> str:
    """``value`` unchanged, or ``ValueError`` when it holds a control character."""
    found = _CONTROL.search(value)
    if found:
        raise ValueError(
            f"contains the control character {found.group()!r} at position {found.start()}; "
            "text may hold tabs and newlines but no other control characters"
        )
    return value


def check_document(document: Any) -> Any:
    """``document`` unchanged, or ``DocumentError`` at the first place it breaks a limit.

    Walks the document without recursion (a deep one must not overflow the stack here).
    """
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(document, (), 0)]
    while stack:
        value, loc, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise DocumentError(loc, f"nested deeper than the limit of {MAX_JSON_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text_at((*loc, key), key, "key")
                stack.append((item, (*loc, key), depth + 1))
        elif isinstance(value, str):
            _check_text_at(loc, value, "text")
        # Compared, not converted: turning a huge int into text is what Python guards.
        elif isinstance(value, int) and abs(value) >= 10**MAX_INT_DIGITS:
            raise DocumentError(loc, f"integer has more than {MAX_INT_DIGITS} digits")
    return document


def _check_text_at(loc: tuple[str | int, ...], value: str, what: str) -> None:
    try:
        check_text(value)
    except ValueError as exc:
        raise DocumentError(loc, f"{what} {exc}") from None


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise DocumentError((), f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(digits)


def parse_json(raw: bytes | str) -> Any:
    """Decode a JSON document within the limits.

    Raises:
        DocumentError: Not UTF-8, malformed (``msg`` starts with "Malformed JSON", ``loc``
            holds the character offset), or over a limit.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DocumentError((exc.start,), "Malformed JSON: the body is not UTF-8") from None
    try:
        document = json.loads(raw, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise DocumentError((exc.pos,), f"Malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise DocumentError(
            (), f"nested deeper than the limit of {MAX_JSON_DEPTH} levels"
        ) from None
    return check_document(document)


def parse_yaml(text: str) -> Any:
    """Decode a YAML document (``yaml.safe_load``) within the limits.

    Raises:
        DocumentError: Over a limit. ``yaml.YAMLError`` for malformed YAML.
    """
    import yaml

    try:
        document = yaml.safe_load(text)
    except RecursionError:
        raise DocumentError(
            (), f"nested deeper than the limit of {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):  # Python's 4,300-digit guard
            raise DocumentError((), f"an integer has more than {MAX_INT_DIGITS} digits") from None
        raise
    return check_document(document)
