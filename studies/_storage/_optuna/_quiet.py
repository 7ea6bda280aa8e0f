"""Keep Optuna's "A new study created in memory" line out of the log for scratch studies."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class _DropStudyCreated(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("A new study created in memory")


@contextmanager
def quiet_study_creation() -> Iterator[None]:
    """A scratch in-memory study (the importance analysis') is an implementation detail; its
    creation is logged by Optuna's in-memory storage module, whose logger this filters."""
    logger = logging.getLogger("optuna.storages._in_memory")
    drop = _DropStudyCreated()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)
