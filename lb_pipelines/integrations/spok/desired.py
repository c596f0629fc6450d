"""What Spok should hold: one on-call assignment per entry of each mapped group's list.

Spok keeps individual on-call assignments, not a list per team, so each entry of the on-call
engine's lists (`on_call.py`: not yet ended, up to the window's last day) is one object: its
target is the Spok group (the mapping's `team_id`), its key `<slot id>/<role>`, the same slot
and role Spok gives back when read (so the reconcile finds its own assignments even when the
pushed state is lost). Dates go as the department's wall clock (`DD-MON-YY HH24:MI:SS`) with
Spok's short name of the zone.

Which assignments are ours to delete: those starting from two days ago (an entry on call now
started before now) to the end of the window, except the entries that simply ended (history,
`keep`); a slot deleted in Lightning Bolt, or whose mapping row went away, is deleted in Spok.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional
from zoneinfo import ZoneInfo

import duckdb

from lb_pipelines.delivery.ledger import Problem
from lb_pipelines.integrations.on_call import Entry, OnCallSettings, on_call_lists
from lb_pipelines.integrations.pushing import Desired, DesiredState, content_hash

SLUG = "spok"

# Spok's names of the zones it knows (IANA -> Spok). Arizona is mountain time without daylight
# saving, hence its own name. A department in another zone is a problem row, its entries not sent.
SPOK_ZONES = {
    "America/New_York": "EASTERN",
    "America/Chicago": "CENTRAL",
    "America/Denver": "MOUNTAIN",
    "America/Phoenix": "ARIZONA",
    "America/Los_Angeles": "PACIFIC",
    "America/Anchorage": "ALASKA",
    "Pacific/Honolulu": "HAWAII",
}
IANA_ZONES = {spok: iana for iana, spok in SPOK_ZONES.items()}
# English upper-case abbreviations, whatever the machine's locale (strftime's %b is not).
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# What Spok holds of an assignment that this push controls (sent, read back, hashed).
BODY_KEYS = ("group_id", "messaging_id", "role", "start_date", "end_date", "time_zone", "slot_id", "contact")
HISTORY = dt.timedelta(days=2)  # the span starts this long before now: entries on call now started earlier

# Entries that ended (end <= now) and started inside the span: history, never deleted.
ENDED_SQL = f"""
SELECT DISTINCT team_id, slot_id, role FROM exports.export_{SLUG}
WHERE end_at <= $now AND start_at >= $since
"""
# The end of the window's last day, in the zone where it comes last.
WINDOW_END_SQL = f"""
SELECT max(timezone(time_zone,
                    CAST(CAST(timezone(time_zone, $now) AS DATE) + $days_forward + 1 AS TIMESTAMP)))
FROM (SELECT DISTINCT time_zone FROM exports.export_{SLUG})
"""


def spok_date(local: dt.datetime) -> str:
    """A wall-clock time as Spok writes it: `23-NOV-26 07:00:00`."""
    return f"{local.day:02d}-{MONTHS[local.month - 1]}-{local:%y %H:%M:%S}"


def spok_instant(text: Any, spok_zone: Any) -> Optional[dt.datetime]:
    """The instant of a Spok date in one of its zones; None when either is not Spok's shape (a
    wall-clock time that happens twice at the fall-back is taken as its first)."""
    iana = IANA_ZONES.get(spok_zone) if isinstance(spok_zone, str) else None
    if iana is None or not isinstance(text, str) or len(text) != 18:
        return None
    day, month, rest = text[:2], text[3:6], text[7:]
    if text[2] != "-" or text[6] != "-" or month not in MONTHS:
        return None
    try:
        local = dt.datetime.strptime(f"{day}-{MONTHS.index(month) + 1:02d}-{rest}", "%d-%m-%y %H:%M:%S")
    except ValueError:
        return None
    return local.replace(tzinfo=ZoneInfo(iana))


def entry_key(slot_id: Any, role: Any) -> str:
    return f"{slot_id}/{role}"


def entry_label(group_id: str, slot_id: Any) -> str:
    return f"team {group_id}, slot {slot_id}"  # ids only: problems, previews and the ledger show it


def assignment_body(entry: Entry, spok_zone: str) -> dict[str, Any]:
    """The body of an add or an update: the person by Spok messaging id, or a placeholder by its
    contact details (messaging_id null)."""
    body: dict[str, Any] = {
        "group_id": entry.team_id,
        "messaging_id": None if entry.is_placeholder else entry.vendor_user_id,
        "role": entry.role,
        "start_date": spok_date(entry.local_start_at),
        "end_date": spok_date(entry.local_end_at),
        "time_zone": spok_zone,
        "slot_id": entry.slot_id,
    }
    if entry.is_placeholder:
        body["contact"] = {"name": entry.display_name, "pager": entry.pager, "phone": entry.cell_phone}
    return body


def canonical(assignment: dict[str, Any]) -> dict[str, Any]:
    """The keys this push controls, in one form for what is sent and what Spok gives back."""
    found = {k: assignment.get(k) for k in BODY_KEYS}
    found["slot_id"] = None if found["slot_id"] is None else str(found["slot_id"])
    return found


def desired(conn: duckdb.DuckDBPyConnection, settings: OnCallSettings, now: dt.datetime) -> DesiredState:
    found = on_call_lists(conn, SLUG, settings, now)
    objects: list[Desired] = []
    problems: list[Problem] = list(found.problems)
    held_back: set[tuple[str, str]] = set()  # not sent: left as Spok holds them
    seen: set[tuple[str, str]] = set()
    for group, entries in found.entries.items():
        for entry in entries:
            key, label = entry_key(entry.slot_id, entry.role), entry_label(group, entry.slot_id)
            if (group, key) in seen:
                continue  # two mapping rows that differ only in call order: one Spok assignment
            seen.add((group, key))
            spok_zone = SPOK_ZONES.get(entry.time_zone)
            if spok_zone is None:
                problems.append(Problem(
                    "time_zone_not_in_spok", label, "time_zone",
                    f"the department's time zone {entry.time_zone} has no Spok name (SPOK_ZONES in "
                    "lb_pipelines/integrations/spok/desired.py); the entry was not sent",
                ))
                held_back.add((group, key))
                continue
            body = assignment_body(entry, spok_zone)
            objects.append(Desired(group, key, body, content_hash(canonical(body)), label, entry.start_at))
    since = now - HISTORY
    ended = {
        (group, entry_key(slot_id, role))
        for group, slot_id, role in conn.execute(ENDED_SQL, {"now": now, "since": since}).fetchall()
    }
    days_forward = settings.window.days_forward
    (window_end,) = conn.execute(WINDOW_END_SQL, {"now": now, "days_forward": days_forward}).fetchone()
    span = (since, window_end or now + dt.timedelta(days=days_forward + 1))
    return DesiredState(
        objects=objects, problems=problems, counts={**found.counts, "assignments_wanted": len(objects)},
        keep=frozenset(ended | held_back), span=span, read_range=span, targets=frozenset(found.entries),
    )
