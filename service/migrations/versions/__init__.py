"""Revisions of the service tables, oldest first."""
