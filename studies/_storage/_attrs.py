"""The study user attrs that make an Optuna study an arm of a campaign (docs/CONTRACTS.md).

boundsweep's own keys, in a module that imports nothing: the report, the synthetic campaigns
and the adapter share them.
"""

from __future__ import annotations

ATTR_CAMPAIGN = "boundsweep:campaign"
ATTR_ARM = "boundsweep:arm"
ATTR_SPEC = "boundsweep:spec"
ATTR_CANCELLED = "boundsweep:cancelled"
ATTR_CREATED_AT = "boundsweep:created_at"
ATTR_PLUGINS = "boundsweep:plugins"
"""Study user attr on the campaign's first arm: each plugin task or optimizer it names -> the
distribution and version that provided it at creation (``"boundsweep-examples 0.1.0"``), so a
process that lacks one can say what to install."""
ATTR_NOT_INSTALLED = "boundsweep:not_installed:"
"""Prefix of a study user attr (on the campaign's first arm), then a worker's id: why that
worker skips the campaign (a task or optimizer it does not have installed)."""
ATTR_INTERRUPTED = "boundsweep:interrupted"
"""Trial system attr: how often a trial was given back by a worker asked to stop."""
ATTR_PREVIOUS = "boundsweep:previous"
"""Trial system attr, on a copy: the number of the FAIL trial it replaces."""
ATTR_REQUEUED = "boundsweep:requeued"
"""Trial system attr, on a FAIL: set once when ``requeue_failed`` put it back."""
ATTR_GRACE = "boundsweep:grace_period"
"""Trial system attr, written by the claim: the claiming worker's grace period (seconds
without a heartbeat before the trial is stale). Staleness is judged by it, not by the
sweeping worker's own, so a worker with a short grace cannot fail another's healthy trial."""
