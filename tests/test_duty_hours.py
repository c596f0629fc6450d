"""fct_duty_hours on a hand-made system: the four ACGME rules, their edges, and what is not duty.

One warehouse for the whole module (a dbt build costs seconds). Residents, all in Chicago:
  31 breaks the 80-hour rule once, 32 the day-off-in-7 rule, 33 the 28-hour rule and 34 the
     8-hour rest rule, each in exactly one row, over the same four weeks;
  35 stays exactly on every limit for four weeks, beside an Off slot and a draft-schedule slot;
  36 works the fall-back night and a Sunday-night call that runs into the next week;
  13 (Phoenix, from tiny_system) has only draft-schedule slots, and 39 is a resident placeholder.
Weeks W1-W4 start on Mondays 2026-01-05, -12, -19, -26. Every expected value is worked out by
hand in the comments; hours are real elapsed time (CST is UTC-6, CDT UTC-5).
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from conftest import PINNED_NOW
from tiny_system import TS, fresh
from warehouse_helpers import load_system, query, run_dbt

W1, W2, W3, W4 = (dt.date(2026, 1, 5) + dt.timedelta(weeks=n) for n in range(4))
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)

CALL_24H, SHIFT, OFF, NIGHT_CALL = 103, 102, 104, 101  # assignment ids (Chicago)
BLOCK, NEXT_BLOCK, AUTUMN = 1101, 1102, 1001  # schedule ids (Chicago); NEXT_BLOCK is a draft

# The shape of every expected row below.
COLUMNS = (
    "week_start, duty_hours, shifts, days_off, longest_continuous_hours, shortest_rest_hours, "
    "rolling_4wk_avg_hours, rolling_4wk_avg_days_off, weeks_in_average"
)
FLAGS = "exceeds_80_hours, lacks_day_off_in_7, exceeds_28_continuous, short_rest, is_compliant"


def day(week: dt.date, weekday: int) -> str:
    return (week + dt.timedelta(days=weekday)).isoformat()


def system() -> dict:
    s = fresh()
    person = s["personnel"][2]  # Cy Nguyen, a resident: the template for the new ones
    s["personnel"] += [
        dict(person, id=pid, abbreviation=f"R{pid}", department_ids=[1], home_coid="COID-0101")
        for pid in (31, 32, 33, 34, 35, 36)
    ] + [dict(s["personnel"][3], id=39, last_name="Resident On Call", personnel_type="Resident")]
    base = s["assignments"][0]
    s["assignments"] += [
        dict(base, id=CALL_24H, name="Resident Call 24h", assignment_type="Call", default_start="07:00", default_end="07:00"),
        dict(base, id=OFF, name="Post-call Off", assignment_type="Off", default_start="07:00", default_end="19:00"),
    ]
    sched = s["schedules"][0]
    s["schedules"] = [
        dict(sched, id=AUTUMN, start_date="2026-10-01", end_date="2026-11-30"),
        dict(sched, id=BLOCK, start_date=W1.isoformat(), end_date=day(W4, SUN)),  # four weeks
        dict(sched, id=NEXT_BLOCK, start_date="2026-02-02", end_date="2026-03-01", status="draft", published_at=None),
        s["schedules"][1],  # Phoenix, draft: resident 13's two slots
    ]
    ids = itertools.count(6001)

    def slot(person, date, start, end, assignment=SHIFT, schedule=BLOCK):
        return {"id": next(ids), "schedule_id": schedule, "date": date, "assignment_id": assignment,
                "personnel_id": person, "start_time": start, "end_time": end, "notes": None, "updated_at": TS}

    slots = []
    # 31: Mon-Sat 07:00-20:00 (13 h) in W1-W3 = 78 h a week; Mon-Sat 07:00-22:00 (15 h) in W4 = 90 h.
    for week in (W1, W2, W3):
        slots += [slot(31, day(week, d), "07:00", "20:00") for d in range(MON, SUN)]
    slots += [slot(31, day(W4, d), "07:00", "22:00") for d in range(MON, SUN)]
    # 32: Mon-Sat 07:00-15:00 (8 h) in W1-W3, one day off each; every day of W4, none off.
    for week in (W1, W2, W3):
        slots += [slot(32, day(week, d), "07:00", "15:00") for d in range(MON, SUN)]
    slots += [slot(32, day(W4, d), "07:00", "15:00") for d in range(MON, SUN + 1)]
    # 33: a 24 h call Mon 07:00 -> Tue 07:00, then at once a 6 h shift to 13:00: 30 h continuous.
    slots += [slot(33, day(W1, MON), "07:00", "07:00", CALL_24H), slot(33, day(W1, TUE), "07:00", "13:00")]
    # 34: Mon 07:00-15:00, back at 21:00 until Tue 05:00: 6 h rest. Nothing in W2; Mon 07:00-15:00 in W3.
    slots += [slot(34, day(W1, MON), "07:00", "15:00"), slot(34, day(W1, MON), "21:00", "05:00"),
              slot(34, day(W3, MON), "07:00", "15:00")]
    # 35, every week: call Mon 07:00 -> Tue 07:00 (24 h) + Tue 07:00-11:00 (4 h) = 28 h continuous;
    # 8 h rest; Tue 19:00 -> Wed 07:00 (12 h); call Thu 07:00 -> Fri 07:00 (24 h); Sat 07:00-23:00
    # (16 h). 24 + 4 + 12 + 24 + 16 = 80 h; Sunday is the one day off.
    for week in (W1, W2, W3, W4):
        slots += [
            slot(35, day(week, MON), "07:00", "07:00", CALL_24H),
            slot(35, day(week, TUE), "07:00", "11:00"),
            slot(35, day(week, TUE), "19:00", "07:00"),
            slot(35, day(week, THU), "07:00", "07:00", CALL_24H),
            slot(35, day(week, SAT), "07:00", "23:00"),
        ]
    # Not duty (had they counted: 35's W1 Sunday would be a duty day and W1 92 h; 35 would have a
    # fifth week, starting Mon Feb 2; and 11, 39 would have rows):
    slots += [
        slot(35, day(W1, SUN), "07:00", "19:00", OFF),  # an Off slot
        slot(35, "2026-02-02", "07:00", "19:00", schedule=NEXT_BLOCK),  # the draft next block
        slot(11, day(W2, SUN), "07:00", "19:00"),  # a physician
        slot(39, day(W2, SUN), "07:00", "19:00"),  # a resident placeholder
        slot(None, day(W2, SUN), "07:00", "19:00"),  # nobody
    ]
    # 36: Sat 2026-10-31 17:00 CDT -> Sun 07:00 CST = 15 h (fall back); Sun 17:00 -> Mon 07:00 = 14 h,
    # which runs into the next week; Wed 2026-11-04 07:00-15:00.
    slots += [
        slot(36, "2026-10-31", "17:00", "07:00", NIGHT_CALL, AUTUMN),
        slot(36, "2026-11-01", "17:00", "07:00", NIGHT_CALL, AUTUMN),
        slot(36, "2026-11-04", "07:00", "15:00", SHIFT, AUTUMN),
    ]
    # tiny_system's own slots stay: a physician's call, a placeholder's, a CRNA's, an unfilled one,
    # and resident 13's two in Phoenix's draft schedule; none of them is resident duty.
    s["slots"] += slots
    return s


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """The lb_env environment (clock pinned), once for the module: lb_env is per test."""
    folder = tmp_path_factory.mktemp("duty_hours")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LB_NOW", PINNED_NOW)
        env.setenv("LB_WAREHOUSE", str(folder / "warehouse.duckdb"))
        wh = load_system(folder / "src", system(), folder / "warehouse.duckdb")
        # also runs the dbt tests of fct_duty_hours; cautious: not other marts' tests on fct_shifts
        run_dbt(wh, "build", "--select", "+fct_duty_hours", "--indirect-selection", "cautious")
    return wh


def weeks(wh, person: int, columns: str = COLUMNS) -> list[tuple]:
    return query(wh, f"SELECT {columns} FROM marts.fct_duty_hours WHERE personnel_id = ? ORDER BY week_start", [person])


def test_each_rule_is_broken_exactly_once_and_alone(warehouse):
    rows = query(warehouse, f"SELECT personnel_id, week_start, {FLAGS} FROM marts.fct_duty_hours "
                            "WHERE NOT is_compliant ORDER BY personnel_id")
    assert rows == [
        (31, W4, True, False, False, False, False),
        (32, W4, False, True, False, False, False),
        (33, W1, False, False, True, False, False),
        (34, W1, False, False, False, True, False),
    ]


def test_80_hours_averaged_over_four_weeks(warehouse):
    # W1-W3: 6 x 13 h = 78 h, rests 20:00 -> 07:00 = 11 h (Sat 20:00 -> Mon 07:00 = 35 h).
    # W4: 6 x 15 h = 90 h, rests 22:00 -> 07:00 = 9 h; average (3 x 78 + 90) / 4 = 81.0 > 80.
    assert weeks(warehouse, 31) == [
        (W1, 78.0, 6, 1, 13.0, 11.0, 78.0, 1.0, 1),
        (W2, 78.0, 6, 1, 13.0, 11.0, 78.0, 1.0, 2),
        (W3, 78.0, 6, 1, 13.0, 11.0, 78.0, 1.0, 3),
        (W4, 90.0, 6, 1, 15.0, 9.0, 81.0, 1.0, 4),
    ]


def test_one_day_in_seven_averaged_over_four_weeks(warehouse):
    # W1-W3: 6 x 8 h = 48 h, Sunday off; rests 15:00 -> 07:00 = 16 h.
    # W4: 7 x 8 h = 56 h, no day off: (1 + 1 + 1 + 0) / 4 = 0.75 days a week, 3 days in 28.
    # Hours: (3 x 48 + 56) / 4 = 50.0.
    assert weeks(warehouse, 32) == [
        (W1, 48.0, 6, 1, 8.0, 16.0, 48.0, 1.0, 1),
        (W2, 48.0, 6, 1, 8.0, 16.0, 48.0, 1.0, 2),
        (W3, 48.0, 6, 1, 8.0, 16.0, 48.0, 1.0, 3),
        (W4, 56.0, 7, 0, 8.0, 16.0, 50.0, 0.75, 4),
    ]


def test_call_then_shift_is_one_continuous_stretch(warehouse):
    # 24 h + 6 h touching at Tue 07:00: one 30 h stretch, no rest before it; Mon and Tue on duty.
    assert weeks(warehouse, 33) == [(W1, 30.0, 2, 5, 30.0, None, 30.0, 5.0, 1)]


def test_short_rest_and_a_week_without_duty(warehouse):
    # W1: 8 h + 8 h, rest Mon 15:00 -> 21:00 = 6 h; Mon and Tue on duty.
    # W2: no duty, still a row: 0 h, 7 days off; averages (16 + 0) / 2 = 8.0 h, (5 + 7) / 2 = 6.0 days.
    # W3: 8 h after a rest from Tue Jan 6 05:00 to Mon Jan 19 07:00 = 13 x 24 + 2 = 314 h;
    #     averages (16 + 0 + 8) / 3 = 8.0 h and (5 + 7 + 6) / 3 = 6.0 days.
    assert weeks(warehouse, 34) == [
        (W1, 16.0, 2, 5, 8.0, 6.0, 16.0, 5.0, 1),
        (W2, 0.0, 0, 7, None, None, 8.0, 6.0, 2),
        (W3, 8.0, 1, 6, 8.0, 314.0, 8.0, 6.0, 3),
    ]


def test_exactly_on_every_limit_is_compliant(warehouse):
    # 80 h every week (average exactly 80.0), Sunday off every week (4 days in 28, 1.0 a week),
    # 28 h continuous Mon 07:00 -> Tue 11:00, 8 h rest Tue 11:00 -> 19:00. The Off slot (W1 Sunday)
    # and the draft slot (Mon Feb 2) are not duty: no 92 h W1, no fifth week.
    expected = [(week, 80.0, 5, 1, 28.0, 8.0, 80.0, 1.0, n) for n, week in enumerate((W1, W2, W3, W4), 1)]
    assert weeks(warehouse, 35) == expected
    assert weeks(warehouse, 35, FLAGS) == [(False, False, False, False, True)] * 4


def test_only_published_resident_duty_counts(warehouse):
    # 11 (physician), 12 (CRNA), 19 and 39 (placeholders), 13 (resident, draft schedule only): no rows.
    people = query(warehouse, "SELECT DISTINCT personnel_id FROM marts.fct_duty_hours ORDER BY 1")
    assert people == [(31,), (32,), (33,), (34,), (35,), (36,)]


def test_fall_back_night_and_a_call_into_the_next_week(warehouse):
    # Week of Mon 2026-10-26: 15 h (fall back) + 14 h = 29 h; Sat and Sun on duty; the stretches
    # are 15 h and 14 h with a 10 h rest (Sun 07:00 -> 17:00) between them.
    # Week of Mon 2026-11-02: the Sunday call's Monday morning and Wed 07:00-15:00 are duty days
    # (5 days off), its 8 h come after a 48 h rest (Mon 07:00 -> Wed 07:00); the call's hours stay
    # in the week it started. Averages (29 + 8) / 2 = 18.5 h and (5 + 5) / 2 = 5.0 days.
    assert weeks(warehouse, 36) == [
        (dt.date(2026, 10, 26), 29.0, 2, 5, 15.0, 10.0, 29.0, 5.0, 1),
        (dt.date(2026, 11, 2), 8.0, 1, 5, 8.0, 48.0, 18.5, 5.0, 2),
    ]
    assert weeks(warehouse, 36, "week_end")[0] == (dt.date(2026, 11, 1),)
    fall_back = query(warehouse, "SELECT elapsed_hours FROM marts.fct_shifts "
                                 "WHERE personnel_id = 36 AND slot_date = DATE '2026-10-31'")
    assert fall_back == [(15.0,)]
