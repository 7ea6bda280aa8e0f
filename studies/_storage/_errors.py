"""The storage's errors, in a module of their own: importing them loads neither the campaign
spec nor torch (the report and the service catch them)."""

from __future__ import annotations


class CampaignExists(ValueError):
    """A campaign with this name (or one of its arm studies) is already in the storage."""


class CampaignNotFound(KeyError):
    """No campaign with this name in the storage."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else "campaign not found"
