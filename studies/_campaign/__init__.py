"""Campaign spec internals; import from ``studies.campaign``."""
