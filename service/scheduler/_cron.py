"""Cron expressions and timezones of schedules: validation and firing times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterError, croniter

__all__ = [
    "CRON_ALIASES",
    "FIRING_HORIZON",
    "check_cron",
    "check_timezone",
    "latest_firing",
    "next_firings",
]

CRON_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
FIRING_HORIZON = timedelta(days=4 * 366)
"""A cron expression must fire within this long (four years: February 29 comes round)."""
_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")


def check_cron(expression: str) -> str:
    """Return a standard five-field cron expression (or alias) unchanged, else raise.

    Seconds and year fields are refused: a schedule creates one campaign per day, so firing
    more often than every minute only produces collisions.

    Raises:
        ValueError: Saying what a valid expression looks like.
    """
    text = expression.strip()
    fields = text.split()
    if text.startswith("@"):
        if text not in CRON_ALIASES:
            raise ValueError(
                f"unknown cron alias {text!r}; valid aliases: {', '.join(CRON_ALIASES)}"
            )
        return text
    if len(fields) != 5:
        raise ValueError(
            f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(fields)} in {expression!r}; e.g. '0 3 * * *' for 03:00 every day"
        )
    for field, value in zip(_FIELDS, fields, strict=True):
        parts = value.split(",")
        if "" in parts or len(set(parts)) != len(parts):
            shown = value if len(value) <= 24 else value[:20] + "..."
            raise ValueError(
                f"cron expression: the {field} field {shown!r} lists an empty or repeated "
                "value; list each value once, e.g. '0,30'"
            )
    if not croniter.is_valid(text):
        raise ValueError(
            f"invalid cron expression {expression!r}: minute 0-59, hour 0-23, day-of-month "
            "1-31, month 1-12, day-of-week 0-6; e.g. '0 3 * * *'"
        )
    now = datetime.now(UTC)
    try:
        first = croniter(text, now).get_next(datetime)
    except (CroniterError, ValueError, OverflowError):
        first = None
    if first is None or first > now + FIRING_HORIZON:
        raise ValueError(
            f"cron expression {expression!r} never fires within {FIRING_HORIZON.days // 366} "
            "years (a date that does not exist, such as February 30?); e.g. '0 3 * * *'"
        )
    return text


def check_timezone(name: str) -> ZoneInfo:
    """The IANA timezone `name`, or `ValueError` saying what a valid one looks like."""
    if name not in _timezones():
        raise ValueError(
            f"unknown timezone {name!r}; use an IANA name such as 'UTC', 'Europe/Berlin' "
            "or 'America/New_York'"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed but unloadable
        raise ValueError(f"unknown timezone {name!r}: {exc}") from None


_TIMEZONES: set[str] | None = None


def _timezones() -> set[str]:
    # Checking against the list (not only ZoneInfo(name)) refuses paths like '../../etc/x'.
    global _TIMEZONES
    if _TIMEZONES is None:
        _TIMEZONES = available_timezones() | {"UTC"}
    return _TIMEZONES


def latest_firing(cron: str, timezone: str, now: datetime) -> datetime:
    """The last firing at or before `now`, as UTC."""
    local = (now + timedelta(microseconds=1)).astimezone(ZoneInfo(timezone))
    return croniter(cron, local).get_prev(datetime).astimezone(UTC)


def next_firings(cron: str, timezone: str, now: datetime, count: int = 3) -> list[datetime]:
    """The next `count` firings after `now`, in the schedule's timezone."""
    iterator = croniter(cron, now.astimezone(ZoneInfo(timezone)))
    return [iterator.get_next(datetime) for _ in range(count)]
