"""Service settings, read from the environment (`BOUNDSWEEP_*`) or a `.env` file."""

from __future__ import annotations

import logging
from pathlib import Path

from boundsweep.studies.campaign import MAX_DOCUMENT_BYTES
from boundsweep.studies.storage import DEFAULT_STORAGE
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEMO_TOKEN", "Settings"]

logger = logging.getLogger(__name__)

# The only built-in secret: accepted solely in demo mode, where the service runs on a laptop's
# loopback with a throw-away SQLite file. Outside demo mode writes need BOUNDSWEEP_API_TOKEN.
DEMO_TOKEN = "boundsweep-demo"


class Settings(BaseSettings):
    """Everything the API, the scheduler and the CLI read from the environment.

    Attributes:
        database_url: SQLAlchemy URL of the one database holding Optuna's tables and ours.
        api_token: Bearer token every write must carry. Unset (outside demo mode): every write
            is refused, so a forgotten variable never leaves the service open.
        read_token: When set, reads need a bearer token too (this one or `api_token`).
        demo: Demo mode: without `api_token`, writes accept the built-in `DEMO_TOKEN`.
        dashboard: Mount optuna-dashboard at `/` behind the API routes.
        data_dir: Where tasks find their datasets.
        max_body_bytes: Request bodies above this are answered 413 before any parsing
            (default: `studies.campaign.MAX_DOCUMENT_BYTES`, the spec files' limit too).
        scheduler_poll_seconds: How often the scheduler looks for due firings.
        scheduler_stale_seconds: A firing claimed this long ago whose campaign never appeared
            (the claiming process died) may be taken over by another scheduler.
        status_cache_seconds: `GET /campaigns/{name}` answers are reused this long (0: off);
            trials take minutes, so one second of staleness costs nothing and saves a grouped
            query per poll.
        report_cache_bytes: Rendered reports kept for reuse (`GET .../report`), least
            recently used dropped first. A report is keyed by its campaign's state (trial
            counts per arm and state), so a kept one is never stale.
        report_concurrency: Reports computed at the same time at most; more wait. Each holds
            a campaign's trials while it runs, so this bounds the API's memory.
        migrate_on_start: Run the service's migrations when the app starts.
        host: Interface `boundsweep serve` binds.
        port: Port `boundsweep serve` binds.
    """

    model_config = SettingsConfigDict(
        env_prefix="BOUNDSWEEP_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = DEFAULT_STORAGE
    api_token: SecretStr | None = None
    read_token: SecretStr | None = None
    demo: bool = False
    dashboard: bool = True
    data_dir: Path = Path("data")
    max_body_bytes: int = Field(default=MAX_DOCUMENT_BYTES, ge=1024)
    scheduler_poll_seconds: float = Field(default=30.0, gt=0)
    scheduler_stale_seconds: float = Field(default=600.0, gt=0)
    status_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    report_cache_bytes: int = Field(default=64 << 20, ge=0)
    report_concurrency: int = Field(default=2, ge=1, le=64)
    migrate_on_start: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    @model_validator(mode="after")
    def _empty_tokens_are_unset(self) -> Settings:
        # `BOUNDSWEEP_API_TOKEN=` in a compose file means "not set", never "the empty token".
        for field in ("api_token", "read_token"):
            value = getattr(self, field)
            if value is not None and not value.get_secret_value():
                object.__setattr__(self, field, None)
        return self

    @property
    def write_token(self) -> str | None:
        """The token writes must present, or None when writes are disabled."""
        if self.api_token is not None:
            return self.api_token.get_secret_value()
        if self.demo:
            return DEMO_TOKEN
        return None
