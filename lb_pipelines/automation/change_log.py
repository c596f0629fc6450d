"""Which Lightning Bolt changes a near-real-time integration must react to (a pure rule).

The change log says *that* something changed; what changed is read again from the source. A
change matters to an integration when it touches a published slot of a mapped assignment
inside the integration's window, or publishes/unpublishes a schedule that does, or changes a
person's name, contact or id that the file shows. Where the rule cannot know (a deleted slot's
assignment), it says yes: an extra run costs seconds, a missed one pages the wrong doctor.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from lb_pipelines.lightning_bolt.source.contract import Window

PERSON_FIELDS_SHOWN = frozenset({"first_name", "last_name", "pager", "cell_phone"})


@dataclass(frozen=True)
class Interest:
    """What one near-real-time integration sends: mapped assignments within a window."""

    integration: str
    mapped_assignments: frozenset[int]
    days_back: int
    days_forward: int
    personnel_id_field: str

    def window(self, now: dt.datetime, time_zone: str) -> Window:
        today = now.astimezone(ZoneInfo(time_zone)).date()
        return Window(today - dt.timedelta(days=self.days_back), today + dt.timedelta(days=self.days_forward))


@dataclass
class Reference:
    """The current schedule around the changed dates, read from the source."""

    slots: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)  # id → slot record
    schedules: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)  # id → schedule record
    department_time_zone: Mapping[int, str] = field(default_factory=dict)
    assignment_department: Mapping[int, int] = field(default_factory=dict)


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _dates_in(window: Window, days: Iterable[str | None]) -> bool:
    return any(d and window.start.isoformat() <= d <= window.end.isoformat() for d in days)


def slot_change_matters(change: Mapping[str, Any], ref: Reference, interest: Interest, now: dt.datetime) -> bool:
    slot = ref.slots.get(change["entity_id"])
    schedule = ref.schedules.get(change.get("schedule_id") or (slot or {}).get("schedule_id"))
    if schedule is None or schedule["status"] != "published":
        return False  # drafts do not leave the system (a publish is its own change)
    assignments = {slot["assignment_id"]} if slot else set()
    dates = {change.get("date"), slot and slot["date"]}
    if change.get("field") == "assignment_id":
        assignments |= {_as_int(change.get("old_value")), _as_int(change.get("new_value"))}
    if change.get("field") == "date":
        dates |= {change.get("old_value"), change.get("new_value")}
    if not assignments and change["action"] != "delete":
        return False
    if assignments and not (assignments & interest.mapped_assignments):
        return False  # a deleted slot's assignment is unknown: counted as mapped
    time_zone = ref.department_time_zone.get(schedule["department_id"], "UTC")
    return _dates_in(interest.window(now, time_zone), dates)


def schedule_change_matters(change: Mapping[str, Any], ref: Reference, interest: Interest, now: dt.datetime) -> bool:
    if change["action"] != "publish" and change.get("field") != "status":
        return False
    schedule = ref.schedules.get(change["entity_id"])
    if schedule is None:
        return True  # cannot tell: be safe
    department = schedule["department_id"]
    if not any(ref.assignment_department.get(a) == department for a in interest.mapped_assignments):
        return False
    window = interest.window(now, ref.department_time_zone.get(department, "UTC"))
    return schedule["start_date"] <= window.end.isoformat() and schedule["end_date"] >= window.start.isoformat()


def matters(change: Mapping[str, Any], ref: Reference, interest: Interest, now: dt.datetime) -> bool:
    entity = change["entity"]
    if entity == "slot":
        return slot_change_matters(change, ref, interest, now)
    if entity == "schedule":
        return schedule_change_matters(change, ref, interest, now)
    if entity == "personnel":
        return change.get("field") in PERSON_FIELDS_SHOWN | {interest.personnel_id_field}
    return False  # assignments and requests do not change a file row by themselves


def changed_dates(changes: Iterable[Mapping[str, Any]], ref: Reference) -> set[str]:
    """The dates whose slots must be read again for these changes."""
    dates: set[str] = set()
    for change in changes:
        if change["entity"] == "slot":
            dates |= {d for d in (change.get("date"),) if d}
            if change.get("field") == "date":
                dates |= {d for d in (change.get("old_value"), change.get("new_value")) if d}
            slot = ref.slots.get(change["entity_id"])
            if slot:
                dates.add(slot["date"])
        elif change["entity"] == "schedule" and change["entity_id"] in ref.schedules:
            schedule = ref.schedules[change["entity_id"]]
            dates |= {schedule["start_date"], schedule["end_date"]}
    return dates
