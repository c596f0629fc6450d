"""A provider's calendar feed (RFC 5545): their published shifts, as `marts.fct_calendar_events` says.

The rules (which slots, UID, SEQUENCE, CONFIRMED or CANCELLED) are SQL in that mart; here the
rows become an iCalendar file. Each event is in the department's local wall time with a TZID,
and every TZID used has a VTIMEZONE written the way calendar clients read best: one STANDARD
and one DAYLIGHT observance with a yearly RRULE, derived from the zone's real transitions.

The feed carries the assignment's name and times, nothing else about the slot (notes can name
other people or numbers; a feed URL ends up in third-party calendar services).
"""

from __future__ import annotations

import calendar as gregorian
import datetime as dt
import functools
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence
from zoneinfo import ZoneInfo

import duckdb
import icalendar
from dateutil.rrule import rrulestr  # python-dateutil: icalendar's own dependency

from lb_pipelines.feeds.tokens import person_of_token

UTC = dt.timezone.utc
PRODID = "-//lb-pipelines//Lightning Bolt calendar feeds//EN"
CALENDAR_NAME = "Lightning Bolt schedule"
DAYS_BACK = 30
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

EVENTS_SQL = """
SELECT uid, sequence, status, start_at, end_at, time_zone, assignment_name, last_modified
FROM marts.fct_calendar_events
WHERE personnel_id = $personnel_id
  AND start_at IS NOT NULL AND end_at IS NOT NULL AND time_zone IS NOT NULL
  AND end_at >= $since
"""


@dataclass(frozen=True)
class CalendarEvent:
    """One VEVENT: a row of marts.fct_calendar_events."""

    uid: str
    sequence: int
    status: str  # CONFIRMED | CANCELLED
    start_at: dt.datetime  # instants, timezone-aware
    end_at: dt.datetime
    time_zone: str  # IANA name: the TZID, and the zone the wall times are in
    summary: str  # the assignment's name
    last_modified: Optional[dt.datetime] = None


# --- VTIMEZONE -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """A change of a zone's UTC offset (or of its name or daylight flag)."""

    at: dt.datetime  # the instant, UTC
    offset_from: dt.timedelta
    offset_to: dt.timedelta
    name: str  # TZNAME from the change on (CDT, CST, BST, ...)
    is_daylight: bool

    @property
    def onset(self) -> dt.datetime:
        """Local wall time of the change read with the offset before it: an observance's DTSTART."""
        return (self.at + self.offset_from).replace(tzinfo=None)


def _zone_state(zone: ZoneInfo, epoch: int) -> tuple:
    local = dt.datetime.fromtimestamp(epoch, UTC).astimezone(zone)
    return local.utcoffset(), local.dst(), local.tzname()


@functools.lru_cache(maxsize=128)
def transitions(tzid: str, first_year: int, last_year: int) -> tuple[Transition, ...]:
    """Every transition of `tzid` from the start of `first_year` to the end of `last_year` (UTC).

    Read from zoneinfo day by day, each change then bisected to the second (zones change at
    most once a day)."""
    zone = ZoneInfo(tzid)
    epoch = int(dt.datetime(first_year, 1, 1, tzinfo=UTC).timestamp())
    end = int(dt.datetime(last_year + 1, 1, 1, tzinfo=UTC).timestamp())
    day = 86_400
    found = []
    before = _zone_state(zone, epoch)
    while epoch < end:
        following = min(epoch + day, end)
        after = _zone_state(zone, following)
        if after != before:
            low, high = epoch, following  # the state changes after `low`, at or before `high`
            while high - low > 1:
                middle = (low + high) // 2
                if _zone_state(zone, middle) == before:
                    low = middle
                else:
                    high = middle
            found.append(Transition(dt.datetime.fromtimestamp(high, UTC), before[0], after[0], after[2], bool(after[1])))
            before = after
        epoch = following
    return tuple(found)


def _yearly_rule(onsets: Sequence[dt.datetime], range_end: dt.datetime) -> Optional[icalendar.vRecur]:
    """FREQ=YEARLY;BYMONTH=m;BYDAY=nXX giving exactly `onsets` until `range_end`, or None."""
    first = onsets[0]
    weekday = _WEEKDAYS[first.weekday()]
    week = (first.day - 1) // 7 + 1
    is_last = first.day + 7 > gregorian.monthrange(first.year, first.month)[1]
    # "last Sunday" first: the 4th Sunday is also the last in some years, never in all.
    for ordinal in ([-1] if is_last else []) + ([week] if week < 5 else []):
        rule = icalendar.vRecur(freq="YEARLY", bymonth=first.month, byday=f"{ordinal}{weekday}")
        produced = rrulestr(rule.to_ical().decode(), dtstart=first).between(first, range_end, inc=True)
        if produced == list(onsets):
            return rule
    return None


def vtimezone(tzid: str, years: range | tuple) -> icalendar.Timezone:
    """The VTIMEZONE of `tzid` over `years` (first to last, both included), RRULE style.

    A zone with daylight saving gets one STANDARD and one DAYLIGHT observance, each starting at
    its first transition in the range with a yearly rule that reproduces every transition of
    the range. Offer the range from the year before the first event: the observances describe
    the zone from the first transition in the range on. A zone without transitions (Phoenix)
    gets one STANDARD observance from 1 January of the first year, without a rule.
    """
    first_year, last_year = min(years), max(years)
    found = transitions(tzid, first_year, last_year)
    timezone = icalendar.Timezone()
    timezone.add("tzid", tzid)
    if not found:
        moment = dt.datetime(first_year, 1, 1, tzinfo=UTC).astimezone(ZoneInfo(tzid))
        offset = moment.utcoffset()
        timezone.add_component(
            _observance(False, dt.datetime(first_year, 1, 1), offset, offset, moment.tzname())
        )
        return timezone

    groups: dict[tuple, list[Transition]] = {}
    for transition in found:
        key = (transition.is_daylight, transition.offset_from, transition.offset_to, transition.name)
        groups.setdefault(key, []).append(transition)
    range_end = dt.datetime(last_year + 1, 1, 1)
    rules = {key: _yearly_rule([t.onset for t in group], range_end) for key, group in groups.items()}
    # A zone whose transitions no single yearly rule per observance reproduces in the range (its
    # rules changed, or daylight saving started or ended in it): the whole zone falls back to
    # RDATE lines, one per transition, which every client reads the same way.
    by_rule = all(rule is not None for rule in rules.values())
    for key, group in sorted(groups.items(), key=lambda item: item[1][0].at):
        head = group[0]
        component = _observance(head.is_daylight, head.onset, head.offset_from, head.offset_to, head.name)
        if by_rule:
            component.add("rrule", rules[key])
        else:
            for later in group[1:]:
                component.add("rdate", later.onset)
        timezone.add_component(component)
    return timezone


def _observance(
    is_daylight: bool, start: dt.datetime, offset_from: dt.timedelta, offset_to: dt.timedelta, name: str
) -> icalendar.Component:
    component = icalendar.TimezoneDaylight() if is_daylight else icalendar.TimezoneStandard()
    component.add("dtstart", start)
    component.add("tzoffsetfrom", offset_from)
    component.add("tzoffsetto", offset_to)
    component.add("tzname", name)
    return component


# --- VCALENDAR -------------------------------------------------------------------------------


def _wall_time(instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The instant as local time with its TZID, or in UTC for the second pass of a repeated hour.

    RFC 5545 reads a local time that happens twice (01:30 on a fall-back night) as the first
    one; a slot at the second 01:30 can only be written in UTC."""
    local = instant.astimezone(zone)
    if local.replace(fold=0).astimezone(UTC) != instant.astimezone(UTC):
        return instant.astimezone(UTC)
    return local


def render_calendar(
    events: Iterable[CalendarEvent],
    now: dt.datetime,
    *,
    name: str = CALENDAR_NAME,
    refresh_minutes: int = 15,
    prodid: str = PRODID,
) -> bytes:
    """The iCalendar file of `events`: the same bytes for the same events and `now`."""
    events = sorted(events, key=lambda e: (e.start_at.astimezone(UTC), e.uid))
    stamp = now.astimezone(UTC)
    refresh = dt.timedelta(minutes=refresh_minutes)

    calendar = icalendar.Calendar()
    calendar.add("prodid", prodid)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})  # RFC 7986
    calendar.add("x-published-ttl", icalendar.vDuration(refresh))  # what Outlook and older clients read

    zones = {event.time_zone: ZoneInfo(event.time_zone) for event in events}
    for tzid in sorted(zones):
        local_years = [
            moment.astimezone(zones[tzid]).year
            for event in events if event.time_zone == tzid
            for moment in (event.start_at, event.end_at)
        ]
        # from the year before: the first observance starts at the first transition in the range
        calendar.add_component(vtimezone(tzid, range(min(local_years) - 1, max(local_years) + 1)))

    for event in events:
        zone = zones[event.time_zone]
        vevent = icalendar.Event()
        vevent.add("uid", event.uid)
        vevent.add("sequence", event.sequence)
        vevent.add("dtstamp", stamp)
        if event.last_modified is not None:
            vevent.add("last-modified", event.last_modified.astimezone(UTC))
        vevent.add("dtstart", _wall_time(event.start_at, zone))
        vevent.add("dtend", _wall_time(event.end_at, zone))
        vevent.add("summary", event.summary)
        vevent.add("status", event.status)
        vevent.add("transp", "OPAQUE")
        calendar.add_component(vevent)
    return calendar.to_ical()


def calendar_for_token(
    conn: duckdb.DuckDBPyConnection,
    token: str,
    now: dt.datetime,
    *,
    days_back: int = DAYS_BACK,
    name: str = CALENDAR_NAME,
    refresh_minutes: int = 15,
) -> bytes | None:
    """The feed of the token's person, or None for a token that is unknown or revoked.

    `conn` reads the BI copy of the warehouse (read-only). Events that ended more than
    `days_back` days before `now` are left out, cancelled ones included: that is how a
    cancelled slot ages out of the feed."""
    personnel_id = person_of_token(conn, token, now)
    if personnel_id is None:
        return None
    rows = conn.execute(
        EVENTS_SQL, {"personnel_id": personnel_id, "since": now - dt.timedelta(days=days_back)}
    ).fetchall()
    events = [
        CalendarEvent(uid, int(sequence), status, start_at, end_at, time_zone, summary or "", last_modified)
        for uid, sequence, status, start_at, end_at, time_zone, summary, last_modified in rows
    ]
    return render_calendar(events, now, name=name, refresh_minutes=refresh_minutes)
