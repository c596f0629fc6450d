"""Slots, streamed day by day, and the monthly tallies counted from them as they go.

Memory stays flat whatever the size: each line goes to a buffered file as soon as it is made,
and per person only a few counters and the end of their last shift are kept.

How people are chosen: for each department and day the slots are filled in order of start time
from the assignment's pool (CRNA slots from CRNAs, resident slots from residents, ...), skipping
whoever is on approved time off, has left, or is still working or resting (8 h after any shift);
among those free, someone whose last shift ended a day ago or more is taken at random, else the
longest rested. About 2% of slots stay unfilled on purpose, more when nobody is free; some call
slots go to the department's placeholder. A handful of double bookings and of slots during an
approved vacation are placed on purpose (`pick_conflicts`).

Tallies per person and calendar month (people only, not placeholders), every slot counted under
the person it ends up with:
- "Calls": slots of Call assignments;
- "Weekend Days" / "Holidays": distinct Saturdays and Sundays / US holidays (New Year's Day,
  Memorial Day, Independence Day, Labor Day, Thanksgiving, Christmas Day) on whose date the
  person has a worked slot (Call, Shift or Admin);
- "Total Hours": real elapsed hours of worked slots, to two decimals (a DST night counts 13 or
  15 h for a 17:00-07:00 call; a local time that does not exist or exists twice takes fold=0);
- "Days Off": slots of Off assignments (Vacation, Conference), one per weekday of approved time off.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import orjson

from lb_pipelines.lightning_bolt.generator.history import (
    DAY,
    OFF_CONFERENCE,
    OFF_VACATION,
    ChangeLog,
    Request,
    Schedule,
    Span,
    fmt,
    local_epoch,
    months,
)
from lb_pipelines.lightning_bolt.generator.roster import Roster

UNFILLED_RATE = 0.02
OVERRIDE_RATE = 0.04  # slot times differ from the assignment's defaults
NOTES_RATE = 0.015
SWAP_RATE = 0.004  # published slots whose person was swapped afterwards (a change-log entry)
REST = 8 * 60  # minutes off after any shift before the next one may start
TALLY_NAMES = ("Calls", "Weekend Days", "Holidays", "Total Hours", "Days Off")
NOTES = (
    "Backup: pager {pager}", "Covering for partner", "Home call", "In-house until 22:00",
    "Late start: clinic until 09:00", "Swap approved by chief", "Moonlighting", "Orientation",
)
HHMM = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]
_APPEND_NL = orjson.OPT_APPEND_NEWLINE


def us_holidays(year: int) -> list[dt.date]:
    def nth_weekday(month: int, weekday: int, n: int) -> dt.date:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))

    last_may = dt.date(year, 5, 31)
    return [
        dt.date(year, 1, 1),
        last_may - dt.timedelta(days=last_may.weekday()),  # Memorial Day: last Monday of May
        dt.date(year, 7, 4),
        nth_weekday(9, 0, 1),  # Labor Day
        nth_weekday(11, 3, 4),  # Thanksgiving
        dt.date(year, 12, 25),
    ]


def pick_conflicts(rng: random.Random, roster: Roster, span: Span,
                   requests: list[Request]) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], bool]]:
    """(department, day) pairs where someone on approved vacation is scheduled anyway, or
    where a person is booked on two overlapping slots: a handful, as in any real schedule."""
    handful = max(4, min(60, roster.n_providers // 100))
    candidates = []
    for r in requests:
        p = roster.people[r.person]
        if r.status == "approved" and r.kind == "Vacation" and p.leave_day is None:
            first, last = max(0, r.first), min(span.days - 1, r.first + r.length - 1)
            if first <= last:
                candidates.append((p, first, last))
    forced: dict[tuple[int, int], int] = {}
    for p, first, last in rng.sample(candidates, min(handful, len(candidates))):
        forced.setdefault((p.dept, rng.randint(first, last)), p.idx)
    doubles = {
        (rng.randrange(len(roster.departments)), rng.randrange(span.days)): True for _ in range(handful)
    }
    return forced, doubles


class _Spec:
    """One assignment as the slot loop needs it."""

    __slots__ = ("k", "id", "start", "end", "positions", "weekdays_only", "inactive_from", "pool", "pool2",
                 "role", "placeholder_rate", "is_call", "fixed")

    def __init__(self, k: int, a, pool: list[int]):
        self.k, self.id, self.start, self.end = k, a.id, a.start, a.end
        self.positions, self.weekdays_only = a.positions, a.weekdays_only
        self.inactive_from = a.inactive_from if a.inactive_from is not None else 1 << 30
        self.pool, self.pool2, self.role = pool, pool + pool, a.pool
        self.placeholder_rate, self.is_call = a.placeholder_rate, a.type == "Call"
        self.fixed = a.start == a.end  # 24-hour slots keep their times


def _override(s: int, e: int, r: float) -> tuple[int, int]:
    variant = int(r / OVERRIDE_RATE * 4)
    length = (e - s) % 1440 or 1440
    if variant == 0 and length > 240:
        return (s + 60) % 1440, e  # late start
    if variant == 1 and length > 240:
        return s, (e - 120) % 1440  # leaves early
    if variant == 2 and length < 1320:
        return s, (e + 60) % 1440  # stays late
    if variant == 3 and length < 1320:
        return (s - 60) % 1440, e  # early start
    return s, e


def write_slots(rng: random.Random, roster: Roster, span: Span, schedules: list[Schedule], off: bytearray,
                log: ChangeLog, forced: dict[tuple[int, int], int], doubles: dict[tuple[int, int], bool],
                slots_path: Path, tallies_path: Path) -> tuple[int, int]:
    """Write slots and tallies; return their row counts."""
    people = roster.people
    n_all = len(people)
    pid = [p.id for p in people]
    role_of = [p.role for p in people]
    depts = roster.departments
    specs: list[list[_Spec]] = [[] for _ in depts]
    off_specs: list[dict[int, tuple[int, str, str]]] = [{} for _ in depts]  # by kind of time off
    for a in roster.assignments:
        if a.type == "Off":
            kind = OFF_CONFERENCE if a.name == "Conference" else OFF_VACATION
            off_specs[a.dept][kind] = (a.id, HHMM[a.start], HHMM[a.end])
        else:
            specs[a.dept].append(_Spec(len(specs[a.dept]), a, depts[a.dept].pools.get(a.pool, [])))
    month_list = months(span)
    month_of = {(first.year, first.month): i for i, (first, _) in enumerate(month_list)}
    sched_of = [[None] * len(month_list) for _ in depts]
    for s in schedules:
        sched_of[s.dept][month_of[(s.start.year, s.start.month)]] = s
    zones = sorted({d.tz for d in depts})
    dst = {}  # tz -> per day: does the UTC offset change between this midnight and the one after next?
    for tz in zones:
        mids = [local_epoch(span.day(i), 0, tz) for i in range(span.days + 2)]
        dst[tz] = bytes(int(mids[i + 2] - mids[i] != 2 * DAY) for i in range(span.days))
    holidays = {h for y in range(span.start.year, span.end.year + 1) for h in us_holidays(y)}
    notes = [[n.format(pager=people[d.placeholder].record["pager"]) for n in NOTES] for d in depts]
    pager_note_count = len(NOTES)

    busy = [-(1 << 40)] * n_all  # minute (from the first midnight) when each person may start again
    last_end = [-(1 << 40)] * n_all
    t_calls = [0] * n_all
    t_min = [0] * n_all
    t_wk = [0] * n_all
    t_hol = [0] * n_all
    t_vac = [0] * n_all
    t_any = bytearray(n_all)  # has a slot this month
    t_day = [-1] * n_all  # last day with a worked slot
    by_id = sorted((i for i, p in enumerate(people) if p.role != "PH"), key=pid.__getitem__)
    cap = span.cap
    rand = rng.random
    dumps = orjson.dumps
    n_tallies = 0
    slot_id = 0  # also the number of slots written

    # Each line goes straight to the buffered file: orjson's result holds a page-sized block
    # until it is freed, so a day's worth of lines kept in a list would cost gigabytes.
    with open(slots_path, "wb", buffering=1 << 20) as out, \
            open(tallies_path, "wb", buffering=1 << 20) as tout:
        write, write_tally = out.write, tout.write

        def flush_tallies(mi: int) -> int:
            first, last = month_list[mi][0].isoformat(), month_list[mi][1].isoformat()
            count = 0
            for i in by_id:
                if not t_any[i]:
                    continue
                values = (t_calls[i], t_wk[i], t_hol[i], round(t_min[i] / 60, 2), t_vac[i])
                for name, value in zip(TALLY_NAMES, values):
                    write_tally(dumps({"personnel_id": pid[i], "tally_name": name, "period_start": first,
                                       "period_end": last, "value": value}, option=_APPEND_NL))
                count += len(TALLY_NAMES)
                t_calls[i] = t_min[i] = t_wk[i] = t_hol[i] = t_vac[i] = t_any[i] = 0
            return count

        current_month = None
        for d in range(span.days):
            date = span.day(d)
            ds = date.isoformat()
            weekend = date.weekday() >= 5
            holiday = date in holidays
            mi = month_of[(date.year, date.month)]
            if mi != current_month:
                if current_month is not None:
                    n_tallies += flush_tallies(current_month)
                current_month = mi
            base = d * 1440
            row = off[d * n_all:(d + 1) * n_all]
            for dept in depts:
                di = dept.idx
                sched = sched_of[di][mi]
                sid, stamp, published = sched.id, sched.slots_stamp, sched.published
                tz = dept.tz
                precise = dst[tz][d]
                todo = []
                for a in specs[di]:
                    if d >= a.inactive_from or (weekend and a.weekdays_only):
                        continue
                    for pos in range(a.positions):
                        s, e = a.start, a.end
                        if not a.fixed:
                            r = rand()
                            if r < OVERRIDE_RATE:
                                s, e = _override(s, e, r)
                        todo.append((s, a.k, pos, e, a))
                todo.sort()
                force = forced.get((di, d))
                double = doubles.get((di, d), False)
                for s, _, _, e, a in todo:
                    st = base + s
                    en = base + e + (1440 if e <= s else 0)
                    r = rand()
                    p = -1
                    if force is not None and role_of[force] == a.role and busy[force] <= st:
                        p, force = force, None  # on approved vacation, scheduled anyway
                    elif double and a.pool:
                        for q in a.pool:
                            if last_end[q] > st and not row[q]:
                                p, double = q, False  # still on an earlier slot: double booked
                                break
                    if p >= 0:
                        pass
                    elif r < UNFILLED_RATE:
                        pass
                    elif r < UNFILLED_RATE + a.placeholder_rate:
                        p = dept.placeholder
                    else:
                        n = len(a.pool)
                        if n:
                            i0 = int(rand() * n)
                            well_rested = st - 960
                            best_busy = 1 << 50
                            for q in a.pool2[i0:i0 + n]:
                                if row[q]:
                                    continue
                                b = busy[q]
                                if b <= well_rested:
                                    p = q
                                    break
                                if b <= st and b < best_busy:
                                    p, best_busy = q, b
                    if p >= 0 and role_of[p] != "PH":
                        if en + REST > busy[p]:
                            busy[p] = en + REST
                        if en > last_end[p]:
                            last_end[p] = en
                    slot_id += 1
                    note = None
                    updated = stamp
                    final = pid[p] if p >= 0 else None
                    r2 = rand()
                    if r2 < NOTES_RATE:
                        note = notes[di][int(r2 / NOTES_RATE * pager_note_count)]
                    elif published and r2 < NOTES_RATE + SWAP_RATE and a.pool:
                        earliest = published + 3600
                        latest = min(cap, local_epoch(date, s, tz))
                        others = [q for q in a.pool if q != p]
                        if latest > earliest and others:
                            # now and then the slot was unfilled before someone took it
                            was_open = p >= 0 and r2 < NOTES_RATE + SWAP_RATE * 0.15
                            old = None if was_open else rng.choice(others)
                            user = rng.choice(roster.schedulers[dept.facility])
                            when = log.add(
                                rng.randint(earliest, latest), tz, user,
                                "update", "slot", slot_id, sid, ds, "personnel_id",
                                None if old is None else str(pid[old]), None if final is None else str(final),
                            )
                            updated = fmt(when, tz)
                    write(dumps({
                        "id": slot_id, "schedule_id": sid, "date": ds, "assignment_id": a.id,
                        "personnel_id": final, "start_time": HHMM[s], "end_time": HHMM[e], "notes": note,
                        "updated_at": updated,
                    }, option=_APPEND_NL))
                    if p >= 0 and role_of[p] != "PH":
                        if precise:
                            end_day = date + dt.timedelta(days=1) if e <= s else date
                            t_min[p] += (local_epoch(end_day, e, tz) - local_epoch(date, s, tz)) // 60
                        else:
                            t_min[p] += en - st
                        if a.is_call:
                            t_calls[p] += 1
                        if t_day[p] != d:  # the person's first worked slot today
                            t_day[p] = d
                            t_wk[p] += weekend
                            t_hol[p] += holiday
                        t_any[p] = 1
                if not weekend and row[dept.lo:dept.hi].strip(b"\0"):
                    for q in range(dept.lo, dept.hi):
                        time_off = off_specs[di].get(row[q])
                        if time_off is None:
                            continue
                        slot_id += 1
                        write(dumps({
                            "id": slot_id, "schedule_id": sid, "date": ds, "assignment_id": time_off[0],
                            "personnel_id": pid[q], "start_time": time_off[1], "end_time": time_off[2],
                            "notes": None, "updated_at": stamp,
                        }, option=_APPEND_NL))
                        t_vac[q] += 1
                        t_any[q] = 1
        if current_month is not None:
            n_tallies += flush_tallies(current_month)
    return slot_id, n_tallies
