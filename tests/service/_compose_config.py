"""``compose config`` without a compose tool: interpolate, validate against the Compose
specification's JSON schema, normalise.

Where neither ``docker compose`` nor ``docker-compose`` is installed, the compose tests still
check the real ``docker-compose.yml`` through this: the variables are substituted by the
Compose specification's rules (``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+other}``, ``${VAR+other}``),
the result is validated by ``jsonschema`` against ``compose_spec/compose_spec.json`` (the
schema docker-compose 1.29 itself validates with, so a file that passes here is one both the
old and the new tool accept), and the short forms the tests read are expanded the way
``config`` prints them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import jsonschema
import yaml

SCHEMA = Path(__file__).with_name("compose_spec") / "compose_spec.json"

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\}"
    r"|(?P<invalid>))"
)


class ComposeConfigError(ValueError):
    """The file is not a valid Compose file (the message says where and why)."""


def compose_config(path: Path, environ: Mapping[str, str]) -> dict:
    """The configuration ``compose config`` would print for ``path`` under ``environ``."""
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ComposeConfigError(f"{path.name} is not YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise ComposeConfigError(f"{path.name}: the top level must be a mapping")
    document = _interpolate(document, environ, where="")
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        raise ComposeConfigError("\n".join(map(_described, errors)))
    return _normalised(document)


def _described(error: jsonschema.ValidationError) -> str:
    """Where and what; when no branch of a ``oneOf`` fits, the error of the branch that got
    furthest into the value (the one the author meant)."""
    while error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return f"{'.'.join(map(str, error.absolute_path)) or '(top level)'}: {error.message}"


@cache
def _validator() -> jsonschema.Draft201909Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def _interpolate(value: object, environ: Mapping[str, str], where: str) -> object:
    if isinstance(value, str):
        # `config` prints a file it could read back, so a literal `$` comes out as `$$` again.
        return _substitute(value, environ, where).replace("$", "$$")
    if isinstance(value, dict):
        return {k: _interpolate(v, environ, f"{where}.{k}".lstrip(".")) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _substitute(text: str, environ: Mapping[str, str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return environ.get(match["named"], "")
        if match["braced"] is None:
            raise ComposeConfigError(f"{where}: invalid interpolation format in {text!r}")
        name, operator, argument = match["braced"], match["operator"], match["argument"]
        value = environ.get(name)
        unset_or_empty = value is None or (operator or "").startswith(":") and value == ""
        if operator in (":-", "-"):
            return argument if unset_or_empty else value
        if operator in (":?", "?"):
            if unset_or_empty:
                raise ComposeConfigError(
                    f"{where}: required variable {name} is missing a value: {argument}"
                )
            return value
        if operator in (":+", "+"):
            return "" if unset_or_empty else argument
        return value or ""

    return _VARIABLE.sub(replace, text)


def _normalised(document: dict) -> dict:
    """The long forms ``config`` prints: environment and depends_on as mappings."""
    services = {}
    for name, service in document.get("services", {}).items():
        service = dict(service)
        if isinstance(service.get("environment"), list):
            service["environment"] = dict(
                (item.split("=", 1) + [None])[:2] for item in service["environment"]
            )
        if isinstance(service.get("depends_on"), list):
            service["depends_on"] = {
                other: {"condition": "service_started"} for other in service["depends_on"]
            }
        services[name] = service
    top = {k: v for k, v in document.items() if not k.startswith("x-")}
    return {**top, "services": services}
