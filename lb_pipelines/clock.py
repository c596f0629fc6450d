"""The one clock: every "now" and "today" in the project comes from here.

`LB_NOW` (ISO 8601 with offset, e.g. `2026-03-07T12:00:00-06:00`) pins it, so windows, file
names and tests agree on one instant. Unset, it is the real clock in UTC.
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo


class ClockError(ValueError):
    pass


def now() -> dt.datetime:
    """The current instant, timezone-aware."""
    pinned = os.environ.get("LB_NOW", "").strip()
    if not pinned:
        return dt.datetime.now(dt.timezone.utc)
    try:
        value = dt.datetime.fromisoformat(pinned)
    except ValueError as exc:
        raise ClockError(f"LB_NOW={pinned!r} is not an ISO 8601 timestamp: {exc}") from None
    if value.tzinfo is None:
        raise ClockError(f"LB_NOW={pinned!r} has no UTC offset; write it like 2026-03-07T12:00:00-06:00")
    return value


def today(timezone: str | None = None) -> dt.date:
    """Today's date in `timezone` (an IANA name), or in the clock's own offset."""
    current = now()
    if timezone:
        current = current.astimezone(ZoneInfo(timezone))
    return current.date()
