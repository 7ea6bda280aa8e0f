"""Every limit on what a user may submit, in one place: the API, the CLI and the spec use these.

Two kinds. The document limits hold for any JSON or YAML a client sends (a campaign, a
schedule, its template): size in bytes, number of values, YAML aliases, nesting depth,
integer size, and text free of control characters. They are checked before anything else
reads the document, so a hostile body is a clear error naming where it is bad instead of a
``RecursionError`` in a parser, a ``ValueError`` from Python's 4,300-digit integer guard, a
NUL that PostgreSQL refuses to store, or a YAML "billion laughs" (a few hundred bytes whose
aliases expand to billions of values) that spins for minutes: a YAML document's aliases are
counted, and its size with every alias expanded is computed from the parser's events, before
anything is built from it. The campaign
caps bound what one valid campaign may cost (trials, epochs, optimizer steps); raise them in
code, not in a spec.

This module imports nothing heavy: the service checks bodies with it before torch is loaded.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "MAX_ARMS",
    "MAX_DOCUMENT_BYTES",
    "MAX_DOCUMENT_VALUES",
    "MAX_CAMPAIGN_STEPS",
    "MAX_DESCRIPTION_CHARS",
    "MAX_EPOCHS",
    "MAX_GRID_POINTS",
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "MAX_SEEDS",
    "MAX_TRIALS_PER_ARM",
    "MAX_TRIALS_PER_CAMPAIGN",
    "MAX_YAML_ALIASES",
    "DocumentError",
    "check_document",
    "check_size",
    "check_text",
    "parse_json",
    "parse_yaml",
    "read_document_file",
]

# --- documents ----------------------------------------------------------------------------
MAX_DOCUMENT_BYTES = 1 << 20
"""Largest document read at all: a spec file, and the API's default request body limit
(``BOUNDSWEEP_MAX_BODY_BYTES``). A campaign spec is a few KB."""
MAX_DOCUMENT_VALUES = 50_000
"""Most values (scalars, lists, mappings; keys count) in a document, YAML aliases expanded.
The largest valid campaign (32 arms, each grid up to 1,000 points) needs about 33,000."""
MAX_YAML_ALIASES = 64
"""Most YAML aliases (``*name``) in a document; a spec needs none."""
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

    Walks the document without recursion (a deep one must not overflow the stack here),
    and at most ``MAX_DOCUMENT_VALUES`` values of it.
    """
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(document, (), 0)]
    seen = 0
    while stack:
        value, loc, depth = stack.pop()
        seen += 1
        if seen > MAX_DOCUMENT_VALUES:
            raise DocumentError((), _too_many_values())
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


def _too_deep() -> str:
    return f"nested deeper than the limit of {MAX_JSON_DEPTH} levels"


def _too_many_values(yaml_aliases: bool = False) -> str:
    counted = "; a YAML alias counts as every value it repeats" if yaml_aliases else ""
    return f"the document holds more than {MAX_DOCUMENT_VALUES:,} values (the limit{counted})"


def _yaml_loader() -> type:
    import yaml

    # libyaml's parser where PyYAML was built with it (its wheels are): 20x the pure-Python
    # one, which a document at the limits keeps busy for seconds.
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_yaml_events(text: str) -> None:
    """Refuse a YAML document over the limits from its parser events, before it is built.

    Counts values as the events stream by, an alias counting as every value of the node it
    names (each anchored node's size is known when it closes), so a billion laughs stops at
    ``MAX_DOCUMENT_VALUES`` after reading a few lines, without expanding anything.
    """
    import yaml

    counter = _event_counter()
    try:
        for event in yaml.parse(text, Loader=_yaml_loader()):
            counter(event)
    except yaml.YAMLError as exc:
        # libyaml refuses nesting beyond its own limit (1,000) while scanning ahead, before
        # the event that would pass ours: the same refusal, said the same way.
        if "maximum nesting depth" in str(exc):
            raise DocumentError((), _too_deep()) from None
        raise


def _event_counter() -> Callable[[Any], None]:
    """A function fed every parser event in order, raising at the first limit broken."""
    import yaml

    sizes: dict[str, int] = {}  # anchor -> values of the node it names
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, values before it) per open node
    values = aliases = 0

    def count(event: Any) -> None:
        nonlocal values, aliases
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise DocumentError(
                    (), f"the document uses more than {MAX_YAML_ALIASES} YAML aliases (the limit)"
                )
            values += sizes.get(event.anchor, 1)  # an unknown anchor: the composer says so
        elif isinstance(event, yaml.ScalarEvent):
            values += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            values += 1
            open_nodes.append((event.anchor, values - 1))
            if len(open_nodes) > MAX_JSON_DEPTH:
                raise DocumentError((), _too_deep())
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before = open_nodes.pop()
            if anchor:
                sizes[anchor] = values - before
        if values > MAX_DOCUMENT_VALUES:
            raise DocumentError((), _too_many_values(yaml_aliases=True))

    return count


def parse_yaml(text: str) -> Any:
    """Decode a YAML document within the limits (safe types only: PyYAML's safe loader).

    Size, value count, aliases and depth are checked on the parser's events first, so a
    hostile document is refused before anything is built from it.

    Raises:
        DocumentError: Over a limit. ``yaml.YAMLError`` for malformed YAML.
    """
    import yaml

    if len(text) > MAX_DOCUMENT_BYTES:  # characters: never more than the bytes they came from
        raise DocumentError((), _too_large(len(text.encode("utf-8", "surrogatepass"))))
    try:
        _check_yaml_events(text)
        document = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 (a safe loader)
    except RecursionError:
        raise DocumentError((), _too_deep()) from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):  # Python's 4,300-digit guard
            raise DocumentError((), f"an integer has more than {MAX_INT_DIGITS} digits") from None
        raise
    return check_document(document)


def _too_large(size: int) -> str:
    return f"the document is {size:,} bytes; the limit is {MAX_DOCUMENT_BYTES:,} bytes"


def check_size(size: int) -> None:
    """``DocumentError`` when a document of ``size`` bytes is over ``MAX_DOCUMENT_BYTES``
    (a file's size, checked before it is read)."""
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentError((), _too_large(size))


def read_document_file(path: str | os.PathLike[str]) -> Any:
    """A spec file's document within the limits: JSON for a ``.json`` file, else YAML.

    Its size is checked before a byte is read, and at most one byte over the limit is read (a
    file that grew since is still refused); then the parser's limits apply. Imports nothing
    heavy, so a command line refuses a hostile file before it loads anything else.

    Raises:
        DocumentError: Over a limit, not UTF-8, or malformed (``msg`` says which).
        OSError: The file cannot be read (``FileNotFoundError`` when there is none).
    """
    with open(path, "rb") as file:
        check_size(os.fstat(file.fileno()).st_size)
        raw = file.read(MAX_DOCUMENT_BYTES + 1)
    check_size(len(raw))
    if str(path).endswith(".json"):
        return parse_json(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError((), f"the file is not UTF-8 (byte {exc.start})") from None
    import yaml

    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        raise DocumentError((), f"not valid YAML: {' '.join(str(exc).split())}") from None
