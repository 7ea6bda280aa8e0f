"""Storage internals; import from ``studies.storage``."""
