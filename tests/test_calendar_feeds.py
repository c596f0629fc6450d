"""The providers' calendar feeds: the mart's rule, the iCalendar file, its time zones, the tokens.

A hand-made system is built three times (dbt snapshots make one version of a slot per change),
and every expected value is worked out by hand in the comments (UTC offsets: Chicago CDT -5 /
CST -6, Phoenix MST -7 all year).
"""

from __future__ import annotations

import datetime as dt
import random

import duckdb
import icalendar
import pytest
import vobject

from lb_pipelines.feeds.calendar import CalendarEvent, calendar_for_token, render_calendar, vtimezone
from lb_pipelines.feeds.tokens import issue_token, list_tokens, person_of_token, revoke_token, token_sha256
from lb_pipelines.warehouse.bi_publish import publish_for_bi
from tiny_system import fresh, slot
from warehouse_helpers import load_system, query, run_dbt

UTC = dt.timezone.utc
CST = dt.timezone(dt.timedelta(hours=-6))
BUILD = ["build", "--select", "+fct_calendar_events", "--indirect-selection", "cautious"]
T2 = "2026-11-03T10:00:00-06:00"  # the second build's changes
T3 = "2026-11-04T10:00:00-06:00"  # the third build's
NOW = dt.datetime(2026, 11, 25, 12, tzinfo=CST)  # 30 days back: 2026-10-26 18:00Z
ANA, BEN, CY, PLACEHOLDER = 11, 12, 13, 19


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def systems() -> list[dict]:
    """The same system as Lightning Bolt held it at three builds."""
    s = fresh()
    s["assignments"].append(dict(s["assignments"][2], id=202, name="ED Night", default_start="19:00", default_end="07:00"))
    sched = s["schedules"][0]  # published at TS
    s["schedules"] = [
        dict(sched, id=1001, department_id=1, start_date="2026-10-01", end_date="2027-03-31"),
        dict(sched, id=2001, department_id=2, start_date="2026-10-01", end_date="2027-03-31"),
        dict(sched, id=1002, department_id=1, start_date="2027-04-01", end_date="2027-04-30", status="draft", published_at=None),
        dict(sched, id=1003, department_id=1, start_date="2026-12-01", end_date="2026-12-31"),  # unpublished later
        dict(sched, id=1004, department_id=1, start_date="2027-01-01", end_date="2027-01-31", status="draft", published_at=None),
    ]
    s["slots"] = [
        slot(8001, 1001, "2026-11-20", 102, ANA, "07:00", "15:00"),  # moved to 08:00-16:00
        slot(8002, 1001, "2026-11-21", 102, ANA, "07:00", "15:00"),  # notes change only
        slot(8003, 1001, "2026-11-22", 101, ANA, "17:00", "07:00"),  # handed to Ben
        slot(8004, 1001, "2026-11-23", 102, BEN, "07:00", "15:00"),  # deleted
        slot(8005, 1001, "2026-10-20", 102, ANA, "07:00", "15:00"),  # deleted, long past: ages out
        slot(8006, 2001, "2026-11-10", 202, CY, "19:00", "07:00"),  # Phoenix night...
        slot(8007, 1001, "2026-11-10", 101, CY, "17:00", "07:00"),  # ...and a Chicago night, same date
        slot(8008, 1001, "2027-03-13", 101, ANA, "17:00", "07:00"),  # across the spring-forward night
        slot(8009, 1001, "2026-11-24", 101, PLACEHOLDER, "17:00", "07:00"),  # nobody's calendar
        slot(8010, 1002, "2027-04-02", 102, ANA, "07:00", "15:00"),  # draft schedule, never published
        slot(8011, 1003, "2026-12-02", 102, BEN, "07:00", "15:00"),  # its schedule goes back to draft
        slot(8012, 1001, "2026-11-26", 102, ANA, "07:00", "15:00"),  # to Ben, then back to Ana
        slot(8013, 1004, "2027-01-05", 102, ANA, "07:00", "15:00"),  # to Ben while still a draft
        slot(8014, 1001, "2026-10-21", 102, ANA, "07:00", "15:00"),  # long past: ages out
    ]
    first = s
    second = fresh_copy(first)
    by_id = {r["id"]: r for r in second["slots"]}
    by_id[8001].update(start_time="08:00", end_time="16:00", updated_at=T2)
    by_id[8002].update(notes="Swap with OR 3 if needed", updated_at=T2)
    by_id[8003].update(personnel_id=BEN, updated_at=T2)
    by_id[8012].update(personnel_id=BEN, updated_at=T2)
    by_id[8013].update(personnel_id=BEN, updated_at=T2)
    second["slots"] = [r for r in second["slots"] if r["id"] not in (8004, 8005)]
    next(r for r in second["schedules"] if r["id"] == 1003).update(status="draft", published_at=None)
    third = fresh_copy(second)
    next(r for r in third["slots"] if r["id"] == 8012).update(personnel_id=ANA, updated_at=T3)
    next(r for r in third["schedules"] if r["id"] == 1004).update(status="published", published_at=T3)
    return [first, second, third]


def fresh_copy(system: dict) -> dict:
    return {entity: [dict(record) for record in records] for entity, records in system.items()}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calendar")
    wh = folder / "warehouse.duckdb"
    for number, system in enumerate(systems(), 1):
        load_system(folder / f"src{number}", system, wh)
        run_dbt(wh, *BUILD)  # the snapshot takes this build's versions; dbt's tests run too
    return wh


@pytest.fixture(scope="module")
def tokens(warehouse):
    """One token for each real person, issued on the live warehouse."""
    with duckdb.connect(str(warehouse)) as conn:
        return {person: issue_token(conn, person, "phone", NOW) for person in (ANA, BEN, CY)}


def events(warehouse) -> dict[tuple[int, int], tuple]:
    rows = query(warehouse, "SELECT personnel_id, slot_id, status, sequence, final_state, uid "
                            "FROM marts.fct_calendar_events ORDER BY ALL")
    return {(p, s): tuple(rest) for p, s, *rest in rows}


# --- the rule ----------------------------------------------------------------------------------


def test_the_rule_on_every_case(warehouse):
    assert events(warehouse) == {
        (ANA, 8001): ("CONFIRMED", 1, "held", "lb-slot-8001@lb-pipelines"),  # new times: 0 -> 1
        (ANA, 8002): ("CONFIRMED", 0, "held", "lb-slot-8002@lb-pipelines"),  # notes only: stays 0
        (ANA, 8003): ("CANCELLED", 1, "other", "lb-slot-8003@lb-pipelines"),  # handed over
        (BEN, 8003): ("CONFIRMED", 0, "held", "lb-slot-8003@lb-pipelines"),  # ...to Ben: new to him
        (BEN, 8004): ("CANCELLED", 1, "deleted", "lb-slot-8004@lb-pipelines"),
        (ANA, 8005): ("CANCELLED", 1, "deleted", "lb-slot-8005@lb-pipelines"),
        (CY, 8006): ("CONFIRMED", 0, "held", "lb-slot-8006@lb-pipelines"),
        (CY, 8007): ("CONFIRMED", 0, "held", "lb-slot-8007@lb-pipelines"),
        (ANA, 8008): ("CONFIRMED", 0, "held", "lb-slot-8008@lb-pipelines"),
        # 8009 (a placeholder's) and 8010 (a draft never published) are nobody's events
        (BEN, 8011): ("CANCELLED", 1, "unpublished", "lb-slot-8011@lb-pipelines"),
        (ANA, 8012): ("CONFIRMED", 2, "held", "lb-slot-8012@lb-pipelines"),  # hand-over, return
        (BEN, 8012): ("CANCELLED", 1, "other", "lb-slot-8012@lb-pipelines"),
        # Ana held 8013 only while its schedule was a draft: never in her calendar
        (BEN, 8013): ("CONFIRMED", 0, "held", "lb-slot-8013@lb-pipelines"),
        (ANA, 8014): ("CONFIRMED", 0, "held", "lb-slot-8014@lb-pipelines"),
    }


def test_the_cases_really_have_versions(warehouse):
    versions = dict(query(warehouse, "SELECT slot_id, count(*) FROM marts.fct_shift_history GROUP BY 1"))
    assert (versions[8001], versions[8002], versions[8012], versions[8006]) == (2, 2, 3, 1)


def test_a_moved_slot_shows_its_new_times_and_when_it_changed(warehouse):
    row = query(warehouse, "SELECT start_at, end_at, local_start_at, time_zone, assignment_name, last_modified "
                           "FROM marts.fct_calendar_events WHERE slot_id = 8001")
    # 2026-11-20 08:00-16:00 CST = 14:00Z-22:00Z; changed at T2 = 16:00Z
    assert row == [(utc(2026, 11, 20, 14), utc(2026, 11, 20, 22), dt.datetime(2026, 11, 20, 8),
                    "America/Chicago", "OR Day", utc(2026, 11, 3, 16))]


def test_a_cancelled_event_keeps_the_last_times_the_person_held(warehouse):
    # 8003, 2026-11-22 17:00 CST = 23:00Z, as Ana held it before the hand-over at T2
    row = query(warehouse, "SELECT start_at, last_modified FROM marts.fct_calendar_events "
                           "WHERE slot_id = 8003 AND personnel_id = 11")
    assert row == [(utc(2026, 11, 22, 23), utc(2026, 11, 3, 16))]


# --- the feed ----------------------------------------------------------------------------------


def feed(warehouse, tokens, person, **kwargs) -> bytes:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return calendar_for_token(conn, tokens[person][1], NOW, **kwargs)


def parsed_by_icalendar(ics: bytes) -> dict[str, tuple]:
    calendar = icalendar.Calendar.from_ical(ics)
    return {
        str(e["UID"]): (int(e["SEQUENCE"]), str(e["STATUS"]), e.decoded("DTSTART").astimezone(UTC),
                        e.decoded("DTEND").astimezone(UTC))
        for e in calendar.walk("VEVENT")
    }


def parsed_by_vobject(ics: bytes) -> dict[str, tuple]:
    calendar = vobject.readOne(ics.decode("utf-8"))
    return {
        e.uid.value: (int(e.sequence.value), e.status.value, e.dtstart.value.astimezone(UTC),
                      e.dtend.value.astimezone(UTC))
        for e in calendar.contents.get("vevent", [])
    }


def test_two_parsers_read_the_same_events(warehouse, tokens):
    ics = feed(warehouse, tokens, ANA)
    expected = {
        "lb-slot-8001@lb-pipelines": (1, "CONFIRMED", utc(2026, 11, 20, 14), utc(2026, 11, 20, 22)),
        "lb-slot-8002@lb-pipelines": (0, "CONFIRMED", utc(2026, 11, 21, 13), utc(2026, 11, 21, 21)),
        # 2026-11-22 17:00 CST = 23:00Z to 2026-11-23 07:00 CST = 13:00Z
        "lb-slot-8003@lb-pipelines": (1, "CANCELLED", utc(2026, 11, 22, 23), utc(2026, 11, 23, 13)),
        # 2027-03-13 17:00 CST = 23:00Z to 2027-03-14 07:00 CDT = 12:00Z: 13 real hours
        "lb-slot-8008@lb-pipelines": (0, "CONFIRMED", utc(2027, 3, 13, 23), utc(2027, 3, 14, 12)),
        "lb-slot-8012@lb-pipelines": (2, "CONFIRMED", utc(2026, 11, 26, 13), utc(2026, 11, 26, 21)),
        # 8005 (cancelled) and 8014 (confirmed) ended 2026-10-20/21, before 2026-10-26 18:00Z: aged out
    }
    assert parsed_by_icalendar(ics) == expected
    assert parsed_by_vobject(ics) == expected


def test_the_spring_forward_night_is_thirteen_hours_in_local_time(warehouse, tokens):
    calendar = icalendar.Calendar.from_ical(feed(warehouse, tokens, ANA))
    night = next(e for e in calendar.walk("VEVENT") if e["UID"] == "lb-slot-8008@lb-pipelines")
    assert night["DTSTART"].to_ical() == b"20270313T170000" and night["DTSTART"].params["TZID"] == "America/Chicago"
    assert night["DTEND"].to_ical() == b"20270314T070000"
    assert night.decoded("DTEND") - night.decoded("DTSTART") == dt.timedelta(hours=14)  # wall clock...
    assert night.decoded("DTEND").astimezone(UTC) - night.decoded("DTSTART").astimezone(UTC) == dt.timedelta(hours=13)


def test_phoenix_and_chicago_on_the_same_night(warehouse, tokens):
    ics = feed(warehouse, tokens, CY)
    calendar = icalendar.Calendar.from_ical(ics)
    zones = {str(z["TZID"]): z for z in calendar.walk("VTIMEZONE")}
    assert sorted(zones) == ["America/Chicago", "America/Phoenix"]
    assert [c.name for c in zones["America/Phoenix"].subcomponents] == ["STANDARD"]
    assert "RRULE" not in zones["America/Phoenix"].subcomponents[0]
    assert sorted(c["RRULE"].to_ical() for c in zones["America/Chicago"].subcomponents) == [
        b"FREQ=YEARLY;BYDAY=1SU;BYMONTH=11", b"FREQ=YEARLY;BYDAY=2SU;BYMONTH=3"]
    expected = {
        # 2026-11-10 19:00 MST = 2026-11-11 02:00Z; 07:00 MST = 14:00Z
        "lb-slot-8006@lb-pipelines": (0, "CONFIRMED", utc(2026, 11, 11, 2), utc(2026, 11, 11, 14)),
        # 2026-11-10 17:00 CST = 23:00Z; 07:00 CST = 13:00Z
        "lb-slot-8007@lb-pipelines": (0, "CONFIRMED", utc(2026, 11, 10, 23), utc(2026, 11, 11, 13)),
    }
    assert parsed_by_icalendar(ics) == expected
    assert parsed_by_vobject(ics) == expected
    text = ics.decode()
    assert "DTSTART;TZID=America/Phoenix:20261110T190000" in text
    assert "DTSTART;TZID=America/Chicago:20261110T170000" in text


def test_the_calendar_header_and_what_an_event_says(warehouse, tokens):
    text = feed(warehouse, tokens, BEN).decode()
    for line in ("VERSION:2.0", "CALSCALE:GREGORIAN", "METHOD:PUBLISH", "REFRESH-INTERVAL;VALUE=DURATION:PT15M",
                 "X-PUBLISHED-TTL:PT15M", "DTSTAMP:20261125T180000Z", "TRANSP:OPAQUE", "SUMMARY:OB Anesthesia Call"):
        assert line + "\r\n" in text
    assert "PRODID:" in text and "X-WR-CALNAME:" in text
    # nothing personal: no name, no phone, no notes
    for personal in ("Okafor", "Ben", "555", "@example.org", "Swap"):
        assert personal not in text
    # Ben: 8003 (confirmed), 8004 (deleted), 8011 (unpublished), 8012 (handed back), 8013 (confirmed)
    statuses = {e.uid.value: e.status.value for e in vobject.readOne(text).vevent_list}
    assert statuses == {
        "lb-slot-8003@lb-pipelines": "CONFIRMED", "lb-slot-8004@lb-pipelines": "CANCELLED",
        "lb-slot-8011@lb-pipelines": "CANCELLED", "lb-slot-8012@lb-pipelines": "CANCELLED",
        "lb-slot-8013@lb-pipelines": "CONFIRMED",
    }


def test_cancelled_events_age_out(warehouse, tokens):
    # 40 days back reaches 2026-10-16 18:00Z: 8005 (cancelled) and 8014 (confirmed) are back
    uids = set(parsed_by_icalendar(feed(warehouse, tokens, ANA, days_back=40)))
    assert {"lb-slot-8005@lb-pipelines", "lb-slot-8014@lb-pipelines"} <= uids
    uids = set(parsed_by_icalendar(feed(warehouse, tokens, ANA)))
    assert not {"lb-slot-8005@lb-pipelines", "lb-slot-8014@lb-pipelines"} & uids


def test_the_same_events_give_the_same_bytes():
    events = [
        CalendarEvent(f"lb-slot-{n}@lb-pipelines", n % 3, "CONFIRMED", utc(2026, 11, n, 13), utc(2026, 11, n, 21),
                      "America/Chicago" if n % 2 else "America/Phoenix", "OR Day", utc(2026, 10, 1))
        for n in range(1, 11)
    ]
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    assert render_calendar(events, NOW) == render_calendar(shuffled, NOW)


def test_no_events_is_an_empty_calendar_both_parsers_read():
    ics = render_calendar([], NOW)
    assert parsed_by_icalendar(ics) == parsed_by_vobject(ics) == {}
    assert b"BEGIN:VTIMEZONE" not in ics


def test_the_second_pass_of_a_repeated_hour_is_written_in_utc():
    # 2026-11-01 01:30 CST (07:30Z) is the second 01:30 that night; a TZID would mean the first (CDT)
    event = CalendarEvent("x", 0, "CONFIRMED", utc(2026, 11, 1, 7, 30), utc(2026, 11, 1, 11),
                          "America/Chicago", "OR Day")
    ics = render_calendar([event], NOW)
    assert b"DTSTART:20261101T073000Z" in ics and b"DTEND;TZID=America/Chicago:20261101T050000" in ics
    assert parsed_by_vobject(ics)["x"][2:] == (utc(2026, 11, 1, 7, 30), utc(2026, 11, 1, 11))


# --- VTIMEZONE ---------------------------------------------------------------------------------


def observances(tzid, years):
    return [
        (c.name, c.decoded("DTSTART"), c["TZOFFSETFROM"].to_ical(), c["TZOFFSETTO"].to_ical(), str(c["TZNAME"]),
         c["RRULE"].to_ical() if "RRULE" in c else None)
        for c in vtimezone(tzid, years).subcomponents
    ]


def test_vtimezone_chicago():
    # 2nd Sunday of March 02:00 -0600 -> -0500; 1st Sunday of November 02:00 -0500 -> -0600
    assert observances("America/Chicago", range(2026, 2028)) == [
        ("DAYLIGHT", dt.datetime(2026, 3, 8, 2), "-0600", "-0500", "CDT", b"FREQ=YEARLY;BYDAY=2SU;BYMONTH=3"),
        ("STANDARD", dt.datetime(2026, 11, 1, 2), "-0500", "-0600", "CST", b"FREQ=YEARLY;BYDAY=1SU;BYMONTH=11"),
    ]


def test_vtimezone_phoenix_has_no_rule():
    assert observances("America/Phoenix", (2026, 2027)) == [
        ("STANDARD", dt.datetime(2026, 1, 1), "-0700", "-0700", "MST", None),
    ]


def test_vtimezone_london_last_sundays():
    # last Sunday of March 01:00 GMT -> BST; last Sunday of October 02:00 BST -> GMT
    assert observances("Europe/London", range(2026, 2031)) == [
        ("DAYLIGHT", dt.datetime(2026, 3, 29, 1), "+0000", "+0100", "BST", b"FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3"),
        ("STANDARD", dt.datetime(2026, 10, 25, 2), "+0100", "+0000", "GMT", b"FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10"),
    ]


def test_vtimezone_without_one_rule_falls_back_to_rdates():
    # Sao Paulo: daylight time began 15 Oct 2017 but 4 Nov 2018, and ended for good in 2019
    components = vtimezone("America/Sao_Paulo", range(2017, 2021)).subcomponents
    assert all("RRULE" not in c for c in components)
    daylight = next(c for c in components if c.name == "DAYLIGHT")
    assert daylight.decoded("DTSTART") == dt.datetime(2017, 10, 15, 0)
    assert daylight["RDATE"].to_ical() == b"20181104T000000"


@pytest.mark.parametrize("tzid, years", [("America/Chicago", range(2025, 2029)), ("Europe/London", range(2026, 2031)),
                                         ("America/Sao_Paulo", range(2017, 2021)), ("America/Phoenix", range(2026, 2028))])
def test_vtimezone_gives_the_offsets_of_zoneinfo_every_hour(tzid, years):
    from zoneinfo import ZoneInfo

    ours = vtimezone(tzid, years).to_tz(lookup_tzid=False)  # built from our observances, not by name
    real = ZoneInfo(tzid)
    moment = utc(years[0], 12, 31)  # from the first transition in the range on
    while moment.year <= years[-1]:
        assert moment.astimezone(ours).utcoffset() == moment.astimezone(real).utcoffset(), moment
        moment += dt.timedelta(hours=1)


# --- tokens ------------------------------------------------------------------------------------


def test_a_token_gives_its_persons_calendar_and_an_unknown_one_nothing(warehouse, tokens):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert person_of_token(conn, tokens[BEN][1], NOW) == BEN
        assert calendar_for_token(conn, "not-a-token", NOW) is None
        assert calendar_for_token(conn, "", NOW) is None
        assert calendar_for_token(conn, tokens[ANA][0], NOW) is None  # the public id is not the token


def test_only_the_hash_is_stored(warehouse, tokens):
    token_id, token = tokens[CY]
    rows = query(warehouse, "SELECT * FROM delivery.calendar_tokens")
    assert not [row for row in rows if any(token in str(value) for value in row)]
    assert query(warehouse, "SELECT token_sha256 FROM delivery.calendar_tokens WHERE token_id = ?", [token_id]) == [
        (token_sha256(token),)]
    assert len(token) >= 43  # 32 random bytes
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        listed = {t.token_id: t for t in list_tokens(conn)}
    assert listed[token_id].personnel_id == CY and not hasattr(listed[token_id], "token_sha256")


def test_revoked_token_gives_nothing_through_the_bi_copy(warehouse, tokens, tmp_path):
    with duckdb.connect(str(warehouse)) as conn:
        token_id, token = issue_token(conn, CY, "old phone", NOW)
    published = publish_for_bi(warehouse, tmp_path / "bi")
    with duckdb.connect(str(published.database), read_only=True) as conn:
        assert calendar_for_token(conn, token, NOW).startswith(b"BEGIN:VCALENDAR")
    with duckdb.connect(str(warehouse)) as conn:
        assert revoke_token(conn, token_id, NOW) is True
        assert revoke_token(conn, token_id, NOW) is False  # already revoked
        assert revoke_token(conn, "nosuchtoken", NOW) is False
    published = publish_for_bi(warehouse, tmp_path / "bi")
    with duckdb.connect(str(published.database), read_only=True) as conn:
        assert calendar_for_token(conn, token, NOW) is None
        assert person_of_token(conn, tokens[CY][1], NOW) == CY  # his other token still works


def test_no_token_for_a_placeholder_or_an_unknown_id(warehouse):
    with duckdb.connect(str(warehouse)) as conn:
        with pytest.raises(ValueError, match="personnel_id 19 is not a person") as placeholder:
            issue_token(conn, PLACEHOLDER, None, NOW)
        with pytest.raises(ValueError, match="personnel_id 999 is not a person"):
            issue_token(conn, 999, None, NOW)
    assert "Anesthesia On Call" not in str(placeholder.value)


def test_a_fresh_warehouse_has_the_token_table(tmp_path):
    wh = load_system(tmp_path / "src", fresh(), tmp_path / "warehouse.duckdb")  # as the dbt asset: ensure_delivery_tables
    with duckdb.connect(str(wh), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM delivery.calendar_tokens").fetchall() == [(0,)]
        assert list_tokens(conn) == []
        assert person_of_token(conn, "anything", NOW) is None
