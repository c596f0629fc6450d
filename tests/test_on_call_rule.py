"""The on-call engine's rule on hand-made cases: who is on call now, and next, per team.

One warehouse, built once from a hand-made system (Chicago, schedule 1001 published for November
2026 and 1003 for March 2027) and PerfectServe's mapping (any vendor would do: the rule is
shared). personnel_id_field custom1: Ana (11) is SER011, Cy (13) SER013, Ben (12) has none,
19 is the placeholder "Anesthesia On Call" (pager 4999, cell 312-555-0199).

Mapping: assignment 101 (OB call) feeds two teams: OB-TEAM as Attending (call order 1) and
LD-TEAM as Anesthesia (1); 102 (OR day) feeds OB-TEAM as Day (call order 2).

Slots (local Chicago times; CST is UTC-6 in November, CDT UTC-5 after 2027-03-14 02:00):
  6001  101  Nov 9  17:00 -> Nov 10 07:00  Ana     (23:00 UTC -> 13:00 UTC)
  6002  102  Nov 10 07:00 -> 15:00         Cy      (13:00 -> 21:00 UTC)
  6008  102  Nov 10 16:00 -> 20:00         Ana     (22:00 -> 02:00 UTC)
  6003  101  Nov 10 17:00 -> Nov 11 07:00  placeholder 19
  6004  102  Nov 11 07:00 -> 15:00         nobody (unfilled: a gap)
  6005  101  Nov 11 17:00 -> Nov 12 07:00  Ben (no custom1: a problem, never on a list)
  6006  101  Mar 13 2027 17:00 -> Mar 14 07:00  Ana: 13 real hours across spring forward
            (23:00 UTC Mar 13 -> 12:00 UTC Mar 14)
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from lb_pipelines.integrations.on_call import feed_entries, on_call_lists
from lb_pipelines.integrations.registry import integration
from pipeline_helpers import write_config
from tiny_system import fresh, slot
from warehouse_helpers import load_system, run_dbt

UTC = dt.timezone.utc
MAPPING = """assignment_id,team_id,role,priority
101,OB-TEAM,Attending,1
101,LD-TEAM,Anesthesia,1
102,OB-TEAM,Day,2
"""
SETTINGS = "personnel_id_field: custom1\nwindow: {days_back: 0, days_forward: 1}\n"


def system():
    s = fresh()
    s["schedules"].append({"id": 1003, "department_id": 1, "start_date": "2027-03-01", "end_date": "2027-03-31",
                           "status": "published", "published_at": "2026-10-15T09:00:00-05:00", "version": 1})
    s["slots"] = [
        slot(6001, 1001, "2026-11-09", 101, 11, "17:00", "07:00"),
        slot(6002, 1001, "2026-11-10", 102, 13, "07:00", "15:00"),
        slot(6008, 1001, "2026-11-10", 102, 11, "16:00", "20:00"),
        slot(6003, 1001, "2026-11-10", 101, 19, "17:00", "07:00"),
        slot(6004, 1001, "2026-11-11", 102, None, "07:00", "15:00"),
        slot(6005, 1001, "2026-11-11", 101, 12, "17:00", "07:00"),
        slot(6006, 1003, "2027-03-13", 101, 11, "17:00", "07:00"),
    ]
    return s


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("on_call")
    warehouse = load_system(folder / "src", system(), folder / "warehouse.duckdb")
    declared = integration("perfectserve")
    write_config(folder / "config", "perfectserve", SETTINGS, MAPPING)
    config = declared.load(folder / "config")
    with duckdb.connect(str(warehouse)) as conn:
        assert declared.write_config(conn, config) == []
    run_dbt(warehouse, "run", "--select", "+export_perfectserve")
    conn = duckdb.connect(str(warehouse), read_only=True)
    yield conn, config.settings
    conn.close()


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def lists(world, now: str, days_forward: int = 1):
    conn, settings = world
    settings = settings.model_copy(update={"window": settings.window.model_copy(update={"days_forward": days_forward})})
    return on_call_lists(conn, "perfectserve", settings, at(now))


def summary(found, team):
    return [(e.slot_id, e.position, e.on_call_now, e.role, e.call_order) for e in found.entries[team]]


def test_one_second_before_the_0700_handover_the_night_person_is_on_call_and_the_day_person_is_next(world):
    found = lists(world, "2026-11-10T06:59:59-06:00")
    # OB-TEAM: Ana (6001) now; then by start: Cy's OR day 07:00, Ana 16:00, the placeholder 17:00;
    # Nov 11's slots are in the window too, but 6004 is a gap and 6005 a problem: not on a list.
    assert summary(found, "OB-TEAM") == [
        (6001, 1, True, "Attending", 1), (6002, 2, False, "Day", 2), (6008, 3, False, "Day", 2),
        (6003, 4, False, "Attending", 1),
    ]
    assert summary(found, "LD-TEAM") == [(6001, 1, True, "Anesthesia", 1), (6003, 2, False, "Anesthesia", 1)]
    assert found.entries["OB-TEAM"][0].vendor_user_id == "SER011"
    assert found.entries["OB-TEAM"][0].end_at == dt.datetime(2026, 11, 10, 13, 0, tzinfo=UTC)


def test_at_0700_exactly_the_day_person_is_on_call_and_the_night_person_is_gone(world):
    found = lists(world, "2026-11-10T07:00:00-06:00")
    assert summary(found, "OB-TEAM") == [(6002, 1, True, "Day", 2), (6008, 2, False, "Day", 2),
                                         (6003, 3, False, "Attending", 1)]
    # LD-TEAM has nobody until 17:00: its list starts with the next one, nobody is on call now.
    assert summary(found, "LD-TEAM") == [(6003, 1, False, "Anesthesia", 1)]
    assert found.counts["teams_with_nobody_now"] == 1


def test_two_on_call_at_once_are_in_call_order_not_start_order(world):
    found = lists(world, "2026-11-10T17:30:00-06:00")
    # Ana's 16:00-20:00 Day (call order 2) started first, the placeholder's call (order 1) is first call.
    assert summary(found, "OB-TEAM")[:2] == [(6003, 1, True, "Attending", 1), (6008, 2, True, "Day", 2)]


def test_one_assignment_feeds_two_teams_and_a_placeholder_carries_its_contact_details(world):
    found = lists(world, "2026-11-10T18:00:00-06:00")
    for team in ("OB-TEAM", "LD-TEAM"):
        first = found.entries[team][0]
        assert (first.slot_id, first.on_call_now, first.is_placeholder) == (6003, True, True)
        assert (first.display_name, first.pager, first.cell_phone) == ("Anesthesia On Call", "4999", "312-555-0199")
        assert first.vendor_user_id is None


def test_an_unfilled_slot_is_a_gap_and_a_person_without_the_vendor_id_is_a_problem(world):
    found = lists(world, "2026-11-11T08:00:00-06:00")
    # 6004 (07:00-15:00, nobody) is the gap on call now; 6005 (Ben) is left off both 101 teams.
    assert found.gaps == [("OB-TEAM", 6004, dt.datetime(2026, 11, 11, 13, 0, tzinfo=UTC), True)]
    assert summary(found, "OB-TEAM") == []
    assert summary(found, "LD-TEAM") == []
    assert sorted((p.kind, p.record, p.field) for p in found.problems) == [
        ("person_without_vendor_id", "slot 6005 (team LD-TEAM, Anesthesia)", "custom1"),
        ("person_without_vendor_id", "slot 6005 (team OB-TEAM, Attending)", "custom1"),
    ]
    assert found.counts["coverage_gaps_now"] == 1


def test_the_feed_says_nobody_for_the_gap(world):
    conn, _ = world
    now = feed_entries(conn, at("2026-11-11T08:00:00-06:00"))
    assert [(r["vendor"], r["team_id"], r["slot_id"], r["personnel_id"], r["file_outcome"]) for r in now] == [
        ("perfectserve", "OB-TEAM", 6004, None, "coverage_gap"),
    ]


def test_the_feed_lists_a_person_the_vendor_has_no_id_for_the_vendor_list_does_not(world):
    conn, _ = world
    now = at("2026-11-11T18:00:00-06:00")  # Ben's call (6005): he has no custom1
    feed = feed_entries(conn, now)
    assert [(r["team_id"], r["slot_id"], r["personnel_id"], r["vendor_user_id"]) for r in feed] == [
        ("LD-TEAM", 6005, 12, None), ("OB-TEAM", 6005, 12, None),
    ]
    assert summary(lists(world, "2026-11-11T18:00:00-06:00"), "OB-TEAM") == []


def test_an_overnight_call_across_the_spring_forward_night_hands_over_at_0700_cdt(world):
    # 06:59 CDT on Mar 14 is 11:59 UTC: Ana is still on; at 07:00 CDT (12:00 UTC) she is not.
    before = lists(world, "2027-03-14T06:59:00-05:00", days_forward=0)
    assert summary(before, "OB-TEAM") == [(6006, 1, True, "Attending", 1)]
    entry = before.entries["OB-TEAM"][0]
    assert (entry.start_at, entry.end_at) == (dt.datetime(2027, 3, 13, 23, 0, tzinfo=UTC),
                                              dt.datetime(2027, 3, 14, 12, 0, tzinfo=UTC))
    assert (entry.end_at - entry.start_at) == dt.timedelta(hours=13)
    # 02:30 does not exist that night; 03:30 CDT (08:30 UTC) is in the middle of the call.
    assert summary(lists(world, "2027-03-14T08:30:00+00:00", days_forward=0), "OB-TEAM")[0][2] is True
    assert summary(lists(world, "2027-03-14T07:00:00-05:00", days_forward=0), "OB-TEAM") == []


def test_the_feed_of_a_day_lists_what_overlaps_it_on_the_local_clock(world):
    conn, _ = world
    day = feed_entries(conn, at("2026-11-01T00:00:00-05:00"), day=dt.date(2026, 11, 10))
    # Nov 10 in Chicago: 6001 (ends 07:00 that day), 6002, 6008 and 6003 (starts 17:00), per team.
    assert [(r["team_id"], r["slot_id"], r["position"]) for r in day] == [
        ("LD-TEAM", 6001, 1), ("LD-TEAM", 6003, 2),
        ("OB-TEAM", 6001, 1), ("OB-TEAM", 6002, 2), ("OB-TEAM", 6008, 3), ("OB-TEAM", 6003, 4),
    ]


def test_a_change_to_last_nights_call_still_on_concerns_the_vendor(lb_env):
    """days_back 0, yet a call that started yesterday 17:00 is on call at 06:00 today: its change
    must start a push (the change-log sensor reaches one day back for every on-call vendor)."""
    from lb_pipelines.automation.change_log import Reference, matters
    from lb_pipelines.automation.change_log_sensor import interests

    write_config(lb_env / "config", "perfectserve", "window: {days_back: 0, days_forward: 1}\n", MAPPING)
    [interest] = [i for i in interests() if i.integration == "perfectserve"]
    assert interest.days_back == 1
    ref = Reference(
        slots={6001: {"id": 6001, "schedule_id": 1001, "date": "2026-11-09", "assignment_id": 101}},
        schedules={1001: {"id": 1001, "status": "published", "department_id": 1,
                          "start_date": "2026-11-01", "end_date": "2026-11-30"}},
        department_time_zone={1: "America/Chicago"}, assignment_department={101: 1},
    )
    change = {"id": 9, "changed_at": "2026-11-10T05:50:00-06:00", "user": "scheduler.kim", "action": "update",
              "entity": "slot", "entity_id": 6001, "schedule_id": 1001, "date": "2026-11-09",
              "field": "personnel_id", "old_value": "11", "new_value": "13"}
    assert matters(change, ref, interest, at("2026-11-10T06:00:00-06:00")) is True
