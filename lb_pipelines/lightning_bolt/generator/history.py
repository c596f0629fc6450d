"""The history of a synthetic health system: who changed what and when, up to `as_of`.

Builds the records whose timestamps matter (personnel, assignments, schedules, requests) and
collects the change log as it goes. Every instant is an integer epoch second no later than
`as_of`, derived from the generated dates; nothing reads the wall clock.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, NamedTuple
from zoneinfo import ZoneInfo

from lb_pipelines.lightning_bolt.generator.roster import (
    AREA_CODES,
    EMAIL_DOMAIN,
    PERSONNEL_TYPE,
    SPECIALTY_ABBR,
    Roster,
    login,
)

DAY = 86400


@lru_cache(maxsize=None)
def zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def local_epoch(day: dt.date, minute: int, tz: str) -> int:
    """The instant of a local wall-clock time (a time skipped or repeated by DST takes fold=0)."""
    local = dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone(tz))
    return int(local.timestamp())


def fmt(epoch: int, tz: str) -> str:
    return dt.datetime.fromtimestamp(epoch, zone(tz)).isoformat()


@dataclass(frozen=True)
class Span:
    """The generated days and the instant the data is as of."""

    start: dt.date
    days: int
    as_of: dt.datetime

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    @property
    def cap(self) -> int:
        return int(self.as_of.timestamp())

    @property
    def as_of_day(self) -> int:
        """Day index of as_of's date (may be negative or past the end)."""
        return (self.as_of.date() - self.start).days

    def day(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=index)

    def past_day(self, rng: random.Random) -> int:
        """A day index in the window that is not after as_of's date (0 if none is)."""
        last = min(self.days - 1, self.as_of_day)
        return rng.randint(0, last) if last > 0 else 0


class ChangeLog:
    """Change-log entries collected in any order, written sorted by instant with ids from 1.

    Each entry gets an instant no other entry has (a second later, or earlier at the `as_of`
    cap), so `changed_at` strictly increases with the id. `add` returns that instant, which the
    caller uses for the changed record's own timestamp so the two agree.
    """

    def __init__(self, cap: int):
        self.cap = cap
        self._used: dict[int, None] = {}
        self._entries: list[tuple] = []

    def add(self, epoch: int, tz: str, user: str, action: str, entity: str, entity_id: int,
            schedule_id: int | None = None, date: str | None = None, field: str | None = None,
            old: str | None = None, new: str | None = None) -> int:
        t = min(epoch, self.cap)
        step = 1
        while t in self._used:
            t += step
            if t > self.cap:
                t, step = min(epoch, self.cap) - 1, -1
        self._used[t] = None
        self._entries.append((t, tz, user, action, entity, entity_id, schedule_id, date, field, old, new))
        return t

    def __len__(self) -> int:
        return len(self._entries)

    def records(self) -> Iterator[dict[str, Any]]:
        self._entries.sort(key=lambda e: e[0])
        for i, (t, tz, user, action, entity, eid, sid, date, field, old, new) in enumerate(self._entries, 1):
            yield {
                "id": i, "changed_at": fmt(t, tz), "user": user, "action": action, "entity": entity,
                "entity_id": eid, "schedule_id": sid, "date": date, "field": field, "old_value": old,
                "new_value": new,
            }


def _business_time(rng: random.Random) -> int:
    return rng.randint(7 * 60, 18 * 60)


def _phone(rng: random.Random, tz: str) -> str:
    return f"{rng.choice(AREA_CODES[tz])}-555-{rng.randrange(10000):04d}"


def fill_people(rng: random.Random, roster: Roster, span: Span, log: ChangeLog) -> None:
    """Personnel records, inactive people (leave_day) and a few demographic updates."""
    depts = roster.departments
    same_facility = {f: [d.idx for d in depts if d.facility == f] for f in range(len(roster.facilities))}
    emails: dict[str, int] = {}
    people = [p.idx for p in roster.people if p.role != "PH"]
    leaving = dict.fromkeys(rng.sample(people, max(1, round(len(people) * 0.02))))
    updating = dict.fromkeys(rng.sample(people, max(1, round(len(people) * 0.04))))
    for p in roster.people:
        d = depts[p.dept]
        tz = d.tz
        updated = local_epoch(span.day(-rng.randint(30, 900)), _business_time(rng), tz)
        if p.role == "PH":
            rec = _record(
                p.id, None, p.last, f"{SPECIALTY_ABBR[d.specialty]}OC",
                None, None, None, None, None, None, None,  # no emp_id, unique_id, custom ids or email
                _phone(rng, tz) if rng.random() < 0.5 else None, f"{rng.randint(1000, 9999)}",
                "Physician", [d.id], d.coid, None, True, True,
            )
        else:
            first, last = p.first or "", p.last
            middle = chr(65 + rng.randrange(26)) if rng.random() < 0.3 else ""
            local = "".join(c for c in f"{first}.{last}".lower() if c.isalnum() or c == ".")
            n = emails.get(local, 0)
            emails[local] = n + 1
            email = f"{local}{n or ''}@{EMAIL_DOMAIN}"
            clinician = p.role != "TECH"
            dept_ids = [d.id]
            if rng.random() < 0.08 and len(same_facility[d.facility]) > 1:
                other = rng.choice([i for i in same_facility[d.facility] if i != d.idx])
                dept_ids.append(depts[other].id)
            away = None
            if rng.random() < 0.08 and len(roster.facilities) > 1:
                away = rng.choice([f.coid for f in roster.facilities if f.coid != d.coid])
            rec = _record(
                p.id, first, last, f"{first[0]}{middle}{last[0]}".upper(),
                None if rng.random() < 0.03 else str(100000 + p.idx * 5 + rng.randrange(5)),
                None if not clinician or rng.random() < 0.03 else _npi(p.idx),
                f"SER{10000 + p.idx * 3 + rng.randrange(3)}" if clinician and rng.random() < 0.92 else None,
                f"NI{200000 + p.idx}" if p.role == "RES" else None,
                f"tc-{rng.getrandbits(32):08x}" if rng.random() < 0.7 else None,
                email if rng.random() < 0.6 else None,
                None if rng.random() < 0.04 else email,
                _phone(rng, tz) if rng.random() < 0.88 else None,
                f"{rng.randint(1000, 9999)}" if rng.random() < 0.45 else None,
                PERSONNEL_TYPE[p.role], dept_ids, d.coid, away, False, True,
            )
            if p.idx in leaving:
                p.leave_day = span.past_day(rng)
                rec["active"] = False
                gone = local_epoch(span.day(p.leave_day - 1), 17 * 60, tz)
                updated = max(updated, log.add(gone, tz, roster.admin_user, "update", "personnel", p.id,
                                               field="active", old="true", new="false"))
            elif p.idx in updating:
                fld = rng.choice(("pager", "cell_phone", "email", "custom1"))
                previous = {
                    "pager": lambda: f"{rng.randint(1000, 9999)}",
                    "cell_phone": lambda: _phone(rng, tz),
                    "email": lambda: f"{local}.old@{EMAIL_DOMAIN}",
                    "custom1": lambda: None if rec["custom1"] else f"SER{rng.randint(90000, 99999)}",
                }[fld]()  # a null previous value: the field was added; a null current one: cleared
                when = local_epoch(span.day(span.past_day(rng)), _business_time(rng), tz)
                if previous != rec[fld]:
                    updated = max(updated, log.add(when, tz, roster.admin_user, "update", "personnel", p.id,
                                                   field=fld, old=previous, new=rec[fld]))
        rec["updated_at"] = fmt(min(updated, span.cap), tz)
        p.record = rec


def _npi(index: int) -> str:
    """A 10-digit NPI-like number starting with 1, different for every person index."""
    return str(1_000_000_000 + (index * 7919 + 4242) % 900_000_000)


def _record(pid, first, last, abbr, emp_id, unique_id, c1, c2, c3, c4, email, cell, pager, ptype, dept_ids,
            home, away, placeholder, active) -> dict[str, Any]:
    return {
        "id": pid, "first_name": first, "last_name": last, "abbreviation": abbr, "emp_id": emp_id,
        "unique_id": unique_id, "custom1": c1, "custom2": c2, "custom3": c3, "custom4": c4, "email": email,
        "cell_phone": cell, "pager": pager, "personnel_type": ptype, "department_ids": dept_ids,
        "home_coid": home, "away_coid": away, "is_placeholder": placeholder, "active": active,
        "updated_at": None,
    }


def assignment_records(
    rng: random.Random, roster: Roster, span: Span, log: ChangeLog
) -> list[dict[str, Any]]:
    """Assignment records; about 3% (at least one) become inactive at a day up to as_of."""
    worked = [i for i, a in enumerate(roster.assignments) if a.type != "Off"]
    retired = sorted(rng.sample(worked, max(1, round(len(worked) * 0.03))))
    for i in retired:
        roster.assignments[i].inactive_from = span.past_day(rng)
    records = []
    for a in roster.assignments:
        tz = roster.departments[a.dept].tz
        updated = local_epoch(span.day(-rng.randint(60, 1000)), _business_time(rng), tz)
        if a.inactive_from is not None:
            when = local_epoch(span.day(a.inactive_from - 1), 16 * 60, tz)
            updated = log.add(when, tz, roster.admin_user, "update", "assignment", a.id,
                              field="active", old="true", new="false")
        records.append({
            "id": a.id, "department_id": roster.departments[a.dept].id, "name": a.name,
            "abbreviation": a.abbr,
            "assignment_type": a.type, "default_start": _hhmm(a.start), "default_end": _hhmm(a.end),
            "active": a.inactive_from is None, "updated_at": fmt(min(updated, span.cap), tz),
        })
    return records


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(slots=True)
class Schedule:
    id: int
    dept: int
    start: dt.date
    end: dt.date
    published: int | None  # epoch of the first publication
    version: int
    slots_stamp: str  # updated_at of its slots that nobody touched since


def months(span: Span) -> list[tuple[dt.date, dt.date]]:
    """First and last day of each calendar month the window touches."""
    out = []
    first = span.start.replace(day=1)
    while first <= span.end:
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        out.append((first, nxt - dt.timedelta(days=1)))
        first = nxt
    return out


def build_schedules(rng: random.Random, roster: Roster, span: Span, log: ChangeLog) -> list[Schedule]:
    """One schedule per department and month: published up to as_of + 35 days, draft after."""
    schedules = []
    publish_horizon = span.as_of.date() + dt.timedelta(days=35)
    for first, last in months(span):
        for d in roster.departments:
            sid = len(schedules) + 1
            tz = d.tz
            user = rng.choice(roster.schedulers[d.facility])
            created = local_epoch(first - dt.timedelta(days=rng.randint(50, 70)), _business_time(rng), tz)
            published = None
            version = 1
            if first <= publish_horizon:
                pub = local_epoch(first - dt.timedelta(days=rng.randint(36, 45)), _business_time(rng), tz)
                created = log.add(min(created, pub - 3 * DAY), tz, user, "create", "schedule", sid)
                published = log.add(pub, tz, user, "publish", "schedule", sid, field="status",
                                    old="draft", new="published")
                latest = min(span.cap, local_epoch(last + dt.timedelta(days=1), 0, tz))
                for _ in range(rng.choice((0, 0, 0, 0, 0, 0, 1, 1, 2))):
                    if latest - published > 2 * DAY:
                        again = rng.randint(published + DAY, latest)
                        log.add(again, tz, user, "publish", "schedule", sid, field="version",
                                old=str(version), new=str(version + 1))
                        version += 1
                stamp = published
            else:
                stamp = created = log.add(min(created, span.cap - rng.randint(3600, 10 * DAY)), tz, user,
                                          "create", "schedule", sid)
            schedules.append(Schedule(sid, d.idx, first, last, published, version, fmt(stamp, tz)))
    return schedules


def schedule_record(s: Schedule, roster: Roster) -> dict[str, Any]:
    tz = roster.departments[s.dept].tz
    return {
        "id": s.id, "department_id": roster.departments[s.dept].id, "start_date": s.start.isoformat(),
        "end_date": s.end.isoformat(), "status": "published" if s.published else "draft",
        "published_at": fmt(s.published, tz) if s.published else None, "version": s.version,
    }


OFF_VACATION, OFF_LEFT, OFF_CONFERENCE = 1, 2, 3
_REQUEST_KINDS = (("Vacation", 0.5), ("Day Off", 0.35), ("Conference", 0.15))


class Request(NamedTuple):
    """A time-off request, kept compact: there are about five per person and year."""

    id: int
    person: int  # person index
    first: int  # day index of start_date (may be before the window)
    length: int  # days
    kind: str
    status: str
    created: int
    updated: int
    tz: str


def build_requests(rng: random.Random, roster: Roster, span: Span, log: ChangeLog,
                   off: bytearray) -> list[Request]:
    """Time-off requests (about five a person a year); approved ones mark `off` (day-major)."""
    n_all = len(roster.people)
    raw = []
    expected = span.days * 5 / 365
    for p in roster.people:
        if p.role == "PH":
            continue
        if p.leave_day is not None:
            for d in range(p.leave_day, span.days):
                off[d * n_all + p.idx] = OFF_LEFT
        for _ in range(int(expected) + (rng.random() < expected % 1)):
            kind = rng.choices([k for k, _ in _REQUEST_KINDS], [w for _, w in _REQUEST_KINDS])[0]
            length = {"Vacation": rng.randint(3, 7), "Day Off": 1, "Conference": rng.randint(2, 4)}[kind]
            first = rng.randint(-7, span.days - 1)
            if kind == "Vacation" and rng.random() < 0.6:
                first -= span.day(first).weekday()  # a week off starts on a Monday
            if p.leave_day is not None and first >= p.leave_day:
                continue
            start = span.day(first)
            if start <= span.as_of.date():
                status = rng.choices(("approved", "denied", "pending"), (0.85, 0.13, 0.02))[0]
            else:
                status = rng.choices(("approved", "pending", "denied"), (0.55, 0.33, 0.12))[0]
            tz = roster.departments[p.dept].tz
            created = local_epoch(start - dt.timedelta(days=rng.randint(10, 120)), rng.randint(360, 1320), tz)
            if created > span.cap - 3600:
                created = span.cap - rng.randint(3600, 20 * DAY)
            decided = created + rng.randint(3600, 6 * DAY)
            if status != "pending" and decided > span.cap:
                status = "pending"  # nobody has decided yet
            raw.append((created, p.idx, first, length, kind, status, decided, tz))
    raw.sort(key=lambda r: (r[0], r[1]))
    for i, (created, pi, first, length, kind, status, decided, tz) in enumerate(raw):
        rid = i + 1
        p = roster.people[pi]
        created = log.add(created, tz, login(p.first or "x", p.last), "create", "request", rid)
        updated = created
        if status != "pending":
            user = roster.schedulers[roster.departments[p.dept].facility][0]
            updated = max(created, log.add(max(decided, created + 1), tz, user, "update", "request", rid,
                                           field="status", old="pending", new=status))
        if status == "approved":
            mark = OFF_CONFERENCE if kind == "Conference" else OFF_VACATION
            for d in range(max(0, first), min(span.days, first + length)):
                if off[d * n_all + pi] != OFF_LEFT:
                    off[d * n_all + pi] = mark
        raw[i] = Request(rid, pi, first, length, kind, status, created, updated, tz)
    return raw


def request_records(requests: list[Request], roster: Roster, span: Span) -> Iterator[dict[str, Any]]:
    for r in requests:
        yield {
            "id": r.id, "personnel_id": roster.people[r.person].id,
            "start_date": span.day(r.first).isoformat(),
            "end_date": span.day(r.first + r.length - 1).isoformat(),
            "request_type": r.kind, "status": r.status,
            "created_at": fmt(r.created, r.tz), "updated_at": fmt(r.updated, r.tz),
        }
