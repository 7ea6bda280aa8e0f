"""Turn a request body or a schedule template into a `CampaignSpec`, or errors naming fields.

Two forms are accepted everywhere a campaign is described:

* a spec: the `CampaignSpec` fields (`name`, `task`, `budget`, `seeds`, `arms`, `pruner`,
  `description`);
* a preset: `{"preset": "paper-robustness", "name": "...", "overrides": {...}}` where
  `overrides` holds any `CampaignSpec` field and the preset's `grid_width`.

A schedule template is the same without `name`: the schedule names its campaigns
`<schedule>-YYYYMMDD`.
"""

from __future__ import annotations

import re
from typing import Any

from boundsweep.studies.campaign import CampaignSpec, preset
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["PresetRequest", "SpecError", "build_spec", "is_preset"]


class SpecError(ValueError):
    """A campaign description that does not validate.

    Attributes:
        errors: FastAPI-style error items: `loc` (path to the field), `msg`, `type`.
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


class PresetRequest(BaseModel):
    """A campaign built from a named preset.

    Attributes:
        preset: A key of `studies.campaign.PRESETS`.
        name: The campaign's name (default: the preset's own naming).
        overrides: `CampaignSpec` fields to replace (`task`, `seeds`, `budget`, `arms`, ...) and
            the preset's `grid_width` (values per swept hyperparameter, 1 to 9).
    """

    model_config = ConfigDict(extra="forbid")

    preset: str = Field(examples=["paper-robustness"])
    name: str | None = Field(default=None, examples=["nightly-digits"])
    overrides: dict[str, Any] = Field(
        default_factory=dict, examples=[{"task": "digits_mlp", "grid_width": 3}]
    )


def is_preset(body: Any) -> bool:
    """Whether a body uses the preset form."""
    return isinstance(body, dict) and "preset" in body


_FIELD_PREFIX = re.compile(r"^(?:Value error, )?([A-Za-z_][\w]*(?:\.[\w]+)*): ")


def _pydantic_errors(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[dict[str, Any]]:
    # `ctx` may hold exception objects and `input` may be huge: keep what a client can use.
    errors = []
    for err in exc.errors(include_url=False):
        loc = [*prefix, *err["loc"]]
        # A model-level check says which field it means ("space.gamma: ..."); put that in `loc`
        # so a client can point at the field, not just at the arm.
        match = _FIELD_PREFIX.match(err["msg"])
        if match and err["type"] == "value_error":
            loc.extend(match.group(1).split("."))
        message = err["msg"].removeprefix("Value error, ")
        errors.append({"loc": loc, "msg": message, "type": err["type"]})
    return errors


def _value_error(exc: ValueError, prefix: tuple[str | int, ...]) -> list[dict[str, Any]]:
    # Domain errors start with the field they are about ("grid_width: ..."); keep it in `loc`.
    message = str(exc)
    match = re.match(r"^([A-Za-z_][\w.]*): ", message)
    loc = [*prefix, *match.group(1).split(".")] if match else list(prefix)
    return [{"loc": loc, "msg": message, "type": "value_error"}]


def build_spec(
    body: Any, name: str | None = None, loc: tuple[str | int, ...] = ("body",)
) -> CampaignSpec:
    """Validate a spec or preset body into a `CampaignSpec`.

    Args:
        body: The decoded JSON body or template.
        name: Force this campaign name (schedules); the body must then not carry one.
        loc: Where the body sits in the request, prefixed to every error's `loc`.

    Returns:
        The validated `studies.campaign.CampaignSpec`.

    Raises:
        SpecError: Naming every bad field and, where the domain says them, the valid choices.
    """

    if not isinstance(body, dict):
        raise SpecError(
            [
                {
                    "loc": list(loc),
                    "msg": 'must be a JSON object: a campaign spec or {"preset": ...}',
                    "type": "type_error",
                }
            ]
        )
    overrides_in_body = body.get("overrides")
    if name is not None and (
        "name" in body or (isinstance(overrides_in_body, dict) and "name" in overrides_in_body)
    ):
        raise SpecError(
            [
                {
                    "loc": [*loc, "name"],
                    "msg": "a schedule names its campaigns <schedule>-YYYYMMDD; leave name out",
                    "type": "value_error",
                }
            ]
        )
    if not is_preset(body):
        data = body if name is None else {**body, "name": name}
        try:
            return CampaignSpec.model_validate(data)
        except ValidationError as exc:
            raise SpecError(_pydantic_errors(exc, loc)) from None
    try:
        request = PresetRequest.model_validate(body)
    except ValidationError as exc:
        raise SpecError(_pydantic_errors(exc, loc)) from None
    overrides = dict(request.overrides)
    if name is not None or request.name is not None:
        overrides["name"] = name if name is not None else request.name
    try:
        return preset(request.preset, **overrides)
    except ValidationError as exc:
        raise SpecError(_pydantic_errors(exc, (*loc, "overrides"))) from None
    except TypeError as exc:
        raise SpecError(
            [{"loc": [*loc, "overrides"], "msg": str(exc), "type": "type_error"}]
        ) from None
    except ValueError as exc:
        where = (*loc, "preset") if str(exc).startswith("unknown preset") else (*loc, "overrides")
        raise SpecError(_value_error(exc, where)) from None
