"""How times, durations and people read in a report: one place, so PDF and Markdown agree.

Times are shown in the zone the deployment was planned in (its T-0 zone) with the zone's
abbreviation, because the report is read later, elsewhere, by people who were not there;
the JSON record keeps UTC ISO timestamps.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

ZONE_CHOICES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Helsinki",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)


def reader_zone(requested: str | None, default: str) -> str:
    """The zone a reader asked for at export if it is a real IANA zone, else the deployment's."""
    requested = (requested or "").strip()
    if requested and len(requested) <= 64:
        try:
            zoneinfo.ZoneInfo(requested)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return default
        return requested
    return default


def _zone(name: str):
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local_time(
    value: datetime | str | None, zone: str, *, with_date: bool = True, with_zone: bool = True, short: bool = False
) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    local = value.astimezone(_zone(zone))
    if short:
        return local.strftime("%d %b %H:%M:%S" + (" %Z" if with_zone else ""))
    pattern = ("%Y-%m-%d %H:%M" if with_date else "%H:%M") + (" %Z" if with_zone else "")
    return local.strftime(pattern)


def duration(value: timedelta | float | None) -> str:
    """2 h 05 min, 45 min, 30 s; ``value`` may be minutes."""
    if value is None:
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value) * 60
    sign = "-" if seconds < 0 else ""
    seconds = abs(round(seconds))
    if seconds < 60:
        return f"{sign}{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{sign}{minutes} min"
    return f"{sign}{minutes // 60} h {minutes % 60:02d} min"


def offset(minutes: int | None) -> str:
    """T-offsets as the runbooks write them: T-24h, T+5m, T+1h30."""
    if minutes is None:
        return ""
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    if minutes >= 60:
        hours, rest = divmod(minutes, 60)
        return f"T{sign}{hours}h{rest:02d}" if rest else f"T{sign}{hours}h"
    return f"T{sign}{minutes}m"


def person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()
