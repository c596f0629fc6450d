"""The marts on a hand-made system: real times across daylight saving, coverage, history.

Expected values are worked out by hand in the comments (UTC offsets: Chicago CDT -5 / CST -6,
Phoenix MST -7 all year).
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from tiny_system import TS, fresh, slot
from warehouse_helpers import load_system, query, run_dbt

UTC = dt.timezone.utc
SELECT = ["build", "--select", "+fct_shifts", "+fct_coverage", "+fct_shift_history", "+dim_personnel", "+dim_assignments", "+dim_departments", "--indirect-selection", "cautious"]


def system():
    s = fresh()
    base = s["assignments"][0]
    s["assignments"] = [
        dict(base, id=101, department_id=1, name="OB Call", assignment_type="Call", default_start="17:00", default_end="07:00"),
        dict(base, id=102, department_id=1, name="OR Day", assignment_type="Shift", default_start="07:00", default_end="15:00"),
        dict(base, id=103, department_id=1, name="Vacation", assignment_type="Off", default_start="07:00", default_end="15:00"),
        dict(base, id=201, department_id=2, name="ED 24h", assignment_type="Call", default_start="07:00", default_end="07:00"),
        dict(base, id=202, department_id=2, name="ED Night Call", assignment_type="Call", default_start="17:00", default_end="07:00"),
    ]
    sched = s["schedules"][0]
    s["schedules"] = [
        dict(sched, id=1001, department_id=1, start_date="2026-10-01", end_date="2027-03-31", status="published"),
        dict(sched, id=2001, department_id=2, start_date="2026-10-01", end_date="2027-03-31", status="published"),
        dict(sched, id=1002, department_id=1, start_date="2027-04-01", end_date="2027-04-30", status="draft", published_at=None),
    ]
    s["slots"] = [
        slot(6001, 1001, "2026-10-31", 101, 11, "17:00", "07:00"),  # Chicago fall back: 15 h
        slot(6002, 1001, "2027-03-13", 101, 11, "17:00", "07:00"),  # Chicago spring forward: 13 h
        slot(6003, 2001, "2026-10-31", 202, 13, "17:00", "07:00"),  # Phoenix, same nights: 14 h
        slot(6004, 2001, "2027-03-13", 202, 13, "17:00", "07:00"),  # 14 h
        slot(6005, 2001, "2026-11-05", 201, 13, "07:00", "07:00"),  # 24-hour call
        slot(6006, 1001, "2026-11-06", 101, 19, "17:00", "07:00"),  # placeholder
        slot(6007, 1001, "2026-11-06", 102, None, "07:00", "15:00"),  # unfilled
        slot(6008, 1001, "2026-11-09", 102, 12, "07:00", "15:00"),  # Ben, day...
        slot(6009, 1001, "2026-11-09", 101, 12, "14:00", "07:00"),  # ...and a call from 14:00: double booked
        slot(6010, 1001, "2026-11-10", 102, 12, "07:00", "15:00"),  # starts as 6009 ends: not double booked
        slot(6011, 1001, "2026-11-18", 102, 11, "07:00", "15:00"),  # Ana works during her approved vacation
        slot(6012, 1001, "2026-11-17", 103, 11, "07:00", "15:00"),  # Ana's Off slot: not a problem
        slot(6013, 1001, "2027-03-14", 102, 12, "02:30", "07:00"),  # 02:30 does not exist that night
        slot(6014, 1001, "2026-11-01", 102, 12, "01:30", "05:00"),  # 01:30 happens twice that night
        slot(6015, 1002, "2027-04-02", 101, 11, "17:00", "07:00"),  # draft schedule
    ]
    s["requests"] = [
        dict(s["requests"][0], id=7001, personnel_id=11, start_date="2026-11-16", end_date="2026-11-20", status="approved"),
        dict(s["requests"][1], id=7002, personnel_id=12, start_date="2026-11-10", end_date="2026-11-10", status="pending"),
    ]
    return s


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("marts")
    wh = load_system(folder / "src", system(), folder / "warehouse.duckdb")
    run_dbt(wh, *SELECT)  # also runs every dbt test on these models
    return wh


def shifts(wh):
    rows = query(wh, "SELECT slot_id, start_at_utc, end_at_utc, elapsed_hours, is_overnight, is_24_hour, "
                     "is_published, is_filled, is_placeholder FROM marts.fct_shifts ORDER BY slot_id")
    return {r[0]: r[1:] for r in rows}


@pytest.mark.parametrize(
    "slot_id, start_utc, end_utc, hours",
    [
        # 2026-10-31 17:00 CDT = 22:00Z; 2026-11-01 07:00 CST = 13:00Z
        (6001, dt.datetime(2026, 10, 31, 22), dt.datetime(2026, 11, 1, 13), 15.0),
        # 2027-03-13 17:00 CST = 23:00Z; 2027-03-14 07:00 CDT = 12:00Z
        (6002, dt.datetime(2027, 3, 13, 23), dt.datetime(2027, 3, 14, 12), 13.0),
        # Phoenix -7 both nights
        (6003, dt.datetime(2026, 11, 1, 0), dt.datetime(2026, 11, 1, 14), 14.0),
        (6004, dt.datetime(2027, 3, 14, 0), dt.datetime(2027, 3, 14, 14), 14.0),
        # 2026-11-05 07:00 MST = 14:00Z to the next day 14:00Z
        (6005, dt.datetime(2026, 11, 5, 14), dt.datetime(2026, 11, 6, 14), 24.0),
        # 02:30 does not exist: read with the offset before the change (CST -6) = 08:30Z, i.e.
        # 03:30 CDT; 07:00 CDT = 12:00Z
        (6013, dt.datetime(2027, 3, 14, 8, 30), dt.datetime(2027, 3, 14, 12), 3.5),
        # 01:30 twice: the second, CST -6 = 07:30Z; 05:00 CST = 11:00Z
        (6014, dt.datetime(2026, 11, 1, 7, 30), dt.datetime(2026, 11, 1, 11), 3.5),
    ],
)
def test_real_instants_and_hours(warehouse, slot_id, start_utc, end_utc, hours):
    start, end, elapsed, *_ = shifts(warehouse)[slot_id]
    assert (start, end, elapsed) == (start_utc, end_utc, hours)


def test_flags(warehouse):
    rows = shifts(warehouse)
    # is_overnight, is_24_hour, is_published, is_filled, is_placeholder
    assert rows[6001][3:] == (True, False, True, True, False)
    assert rows[6005][3:] == (True, True, True, True, False)
    assert rows[6006][3:] == (True, False, True, True, True)
    assert rows[6007][3:] == (False, False, True, False, False)
    assert rows[6015][3:] == (True, False, False, True, False)
    local = query(warehouse, "SELECT local_start_at, local_end_at, time_zone FROM marts.fct_shifts WHERE slot_id = 6001")
    assert local == [(dt.datetime(2026, 10, 31, 17), dt.datetime(2026, 11, 1, 7), "America/Chicago")]


def test_coverage(warehouse):
    rows = query(warehouse, "SELECT coverage_issue, slot_id, other_slot_id, request_id, personnel_id "
                            "FROM marts.fct_coverage ORDER BY ALL")
    assert rows == [
        ("double_booked", 6008, 6009, None, 12),
        ("scheduled_during_request", 6011, None, 7001, 11),
        ("unfilled", 6007, None, None, None),
    ]


def test_placeholder_is_not_a_person(warehouse):
    rows = query(warehouse, "SELECT display_name, is_placeholder FROM marts.dim_personnel WHERE personnel_id IN (11, 19) ORDER BY 1")
    assert rows == [("Ana Reyes", False), ("Anesthesia On Call", True)]


def test_snapshot_answers_who_was_on_call_as_the_schedule_stood(warehouse, tmp_path):
    wh = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse, wh)
    changed = system()
    # 2026-11-01 10:00 CST: slot 6001 (Ana's fall-back call) handed to Ben
    swap_at = "2026-11-01T10:00:00-06:00"
    changed["slots"][0].update(personnel_id=12, updated_at=swap_at)
    load_system(tmp_path / "src", changed, wh)
    run_dbt(wh, *SELECT)

    history = query(wh, "SELECT personnel_id, valid_from, valid_to FROM marts.fct_shift_history "
                        "WHERE slot_id = 6001 ORDER BY valid_from")
    first = dt.datetime(2026, 10, 15, 14, tzinfo=UTC)  # TS = 09:00 -05:00
    swap = dt.datetime(2026, 11, 1, 16, tzinfo=UTC)
    assert [(p, f.astimezone(UTC), t and t.astimezone(UTC)) for p, f, t in history] == [
        (11, first, swap),
        (12, swap, None),
    ]

    who = """SELECT personnel_id FROM marts.fct_shift_history
             WHERE valid_from <= $as_of AND (valid_to IS NULL OR valid_to > $as_of)
               AND start_at <= $moment AND end_at > $moment AND assignment_id = 101"""  # OB Call
    three_am = dt.datetime(2026, 11, 1, 9, tzinfo=UTC)  # 03:00 CST
    assert query(wh, who, {"as_of": dt.datetime(2026, 10, 31, 17, tzinfo=UTC), "moment": three_am}) == [(11,)]
    assert query(wh, who, {"as_of": dt.datetime(2026, 11, 2, 18, tzinfo=UTC), "moment": three_am}) == [(12,)]
    # slots that did not change keep exactly one version
    assert query(wh, "SELECT count(*) FROM marts.fct_shift_history WHERE slot_id <> 6001") == [(14,)]
