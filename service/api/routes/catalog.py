"""`/tasks`, `/optimizers`: what this server can validate campaigns against.

Each lists the built-in names and the installed plugins' (entry point groups
`boundsweep.tasks` and `boundsweep.optimizers`, or the operator's `BOUNDSWEEP_PLUGINS`), with
the distribution and version each comes from. Workers find plugins the same way; one that
lacks a campaign's plugin skips that campaign.
"""

from __future__ import annotations

from typing import Any

from boundsweep.optimizers import OPTIMIZERS, describe_optimizer
from boundsweep.studies.tasks import TASKS, describe_task
from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(tags=["catalog"])


class CatalogItem(BaseModel):
    """One task or optimizer: its name, where it comes from, and its metadata."""

    name: str
    distribution: str
    version: str
    description: str
    model_config = {"extra": "allow"}


class CatalogPage(BaseModel):
    """Every installed task (or optimizer), and the installed plugins that failed to load."""

    data: list[CatalogItem]
    broken: dict[str, str]


def _page(listing: list[dict[str, Any]], broken: dict[str, str]) -> CatalogPage:
    return CatalogPage(data=[CatalogItem(**item) for item in listing], broken=dict(broken))


@router.get("/tasks", summary="Installed tasks", response_model=CatalogPage)
def list_tasks() -> CatalogPage:
    """Every task a campaign can name here: metric, direction, margin, shape, origin."""
    return _page(TASKS.listing(describe_task), TASKS.broken)


@router.get("/optimizers", summary="Installed optimizers", response_model=CatalogPage)
def list_optimizers() -> CatalogPage:
    """Every optimizer an arm can name here: its hyperparameters (default, range, log scale)
    and origin."""
    return _page(OPTIMIZERS.listing(describe_optimizer), OPTIMIZERS.broken)
