"""``CampaignStorage``: Optuna's ``RDBStorage`` that can serve a trial its process just claimed."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from boundsweep.studies._storage._optuna._schema import RetryStaleTrial
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial

# Optuna 4.9 renamed RDBStorage's `failed_trial_callback` (deprecated since).
_CALLBACK_ARG = (
    "heartbeat_stale_trial_callback"
    if "heartbeat_stale_trial_callback" in inspect.signature(RDBStorage.__init__).parameters
    else "failed_trial_callback"
)


class CampaignStorage(RDBStorage):
    """Optuna's ``RDBStorage``, which can also serve a trial its process has just claimed.

    ``optuna.Trial(study, trial_id)`` starts by reading the whole trial, one query per table
    in a session of its own. The claim (``claim_trial``) has just read the same rows in its
    own transaction; inside ``with storage.primed(trial):`` a ``get_trial`` of that id returns
    them (once) instead of asking the database again. This relies on ``Trial.__init__``
    asking the storage for the trial first (true from Optuna 4.3 to 5.0; the contract suite
    checks that a primed trial is what ``get_trial`` would read).
    """

    _primed: FrozenTrial | None = None

    @contextmanager
    def primed(self, trial: FrozenTrial) -> Iterator[None]:
        """Serve ``trial`` to the first ``get_trial`` of its id inside the block."""
        self._primed = trial
        try:
            yield
        finally:
            self._primed = None

    def get_trial(self, trial_id: int) -> FrozenTrial:
        primed = self._primed
        if primed is not None and primed._trial_id == trial_id:
            self._primed = None
            return primed
        return super().get_trial(trial_id)


def heartbeat_storage(
    url: str,
    *,
    engine_kwargs: dict[str, Any],
    heartbeat_interval: int,
    grace_period: int,
    max_retries: int,
) -> CampaignStorage:
    """A ``CampaignStorage`` whose stale trials (no heartbeat for ``grace_period`` s) Optuna
    fails and queues again, up to ``max_retries`` times per trial.

    Optuna's set-up holds one connection while it asks for a second: always in its schema
    version check, and on a new database in its alembic stamp. With a one-connection pool
    (``max_overflow=0``: a worker) it would wait for itself. So a new database is set up
    through an engine without a pool first, and the storage's own check is the same
    comparison made one connection at a time (on a mismatch, Optuna's check runs to raise
    its own error, which says how to upgrade).
    """
    one_connection = engine_kwargs.get("max_overflow") == 0
    if one_connection and not _set_up(url, engine_kwargs):
        RDBStorage(url, engine_kwargs=_without_pool(engine_kwargs)).engine.dispose()
    callback = {_CALLBACK_ARG: RetryStaleTrial(max_retry=max_retries)}
    storage = CampaignStorage(
        url,
        engine_kwargs=engine_kwargs,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        skip_compatibility_check=one_connection,
        **callback,
    )
    if one_connection and storage.get_current_version() != storage.get_head_version():
        storage.engine.dispose()
        RDBStorage(url, engine_kwargs=_without_pool(engine_kwargs)).engine.dispose()
    return storage


def _without_pool(engine_kwargs: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in engine_kwargs.items() if not k.startswith(("pool_", "max_overflow"))}
    return {**kept, "poolclass": sa.NullPool}


def _set_up(url: str, engine_kwargs: dict[str, Any]) -> bool:
    """Whether Optuna has set up the database at ``url`` (its alembic stamp is written)."""
    engine = sa.create_engine(url, **_without_pool(engine_kwargs))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1 FROM alembic_version")).first() is not None
    except sa.exc.ProgrammingError:  # no such table: a new database
        return False
    finally:
        engine.dispose()
