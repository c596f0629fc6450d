"""The export rules as SQL, with small hand-made export-model rows and values worked out by hand.

Each test builds the dbt export model's table by hand in an in-memory DuckDB, so one rule at a
time can be seen: which rows go out, which are problems, the window in each time zone, the
order, and how cells are written.
"""

import csv
import datetime as dt
import io

import duckdb
import pytest

from lb_pipelines.automation.pay_periods import PayPeriod
from lb_pipelines.integrations import exporting
from lb_pipelines.integrations.settings_base import WindowSettings
from lb_pipelines.integrations.epic_on_call_finder import export as epic
from lb_pipelines.integrations.epic_on_call_finder.settings import EpicOnCallFinderSettings
from lb_pipelines.integrations.kronos_wfd import export as wfd
from lb_pipelines.integrations.kronos_wfd.settings import KronosWfdSettings

CHICAGO, PHOENIX = "America/Chicago", "America/Phoenix"


def rows_of(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


# --- Epic On-Call Finder ---------------------------------------------------------------------

EPIC_TABLE = """CREATE TABLE exports.export_epic_on_call_finder (
    slot_id BIGINT, mapping_line INTEGER, time_zone VARCHAR, slot_date DATE, start_at TIMESTAMPTZ,
    outcome VARCHAR, problem_reason VARCHAR, personnel_id BIGINT, is_placeholder BOOLEAN, unique_id VARCHAR,
    custom1 VARCHAR,
    custom2 VARCHAR, custom3 VARCHAR, custom4 VARCHAR, emp_id VARCHAR,
    "TEAM_ID" VARCHAR, "TEAM_NAME" VARCHAR, "ROLE" VARCHAR, "CALL_ORDER" INTEGER, "START" VARCHAR,
    "END" VARCHAR, "PROVIDER_NAME" VARCHAR, "CONTACT" VARCHAR, "NOTES" VARCHAR, "TEAM_COMMENT" VARCHAR)"""


def epic_row(slot_id, day, *, tz=CHICAGO, start="07:00", custom1="SER1", name="Ana Reyes", person=11,
             outcome="deliver", placeholder=False, call_order=1, team="OCF-1", notes="", reason=None, line=2):
    start_at = f"{day} {start}:00"
    return (slot_id, line, tz, day, start_at, outcome, reason, person, placeholder, None, custom1, None, None, None,
            None,
            team, "Team", "Attending", call_order, f"{day[5:7]}/{day[8:]}/{day[:4]} {start}", "later",
            name, "4011", notes, "")


@pytest.fixture
def epic_warehouse():
    with duckdb.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("CREATE SCHEMA exports")
        conn.execute(EPIC_TABLE)
        yield conn


def build_epic(conn, rows, now, days_back=1, days_forward=2):
    conn.executemany(f"INSERT INTO exports.export_epic_on_call_finder VALUES ({', '.join(['?'] * 25)})", rows)
    settings = EpicOnCallFinderSettings(window=WindowSettings(days_back=days_back, days_forward=days_forward))
    return epic.build_file(conn, settings, now)


def test_epic_window_is_today_in_each_departments_own_time_zone(epic_warehouse):
    # 2026-11-03 05:30 UTC: it is still 11/02 in Chicago (23:30) and in Phoenix (22:30).
    # Window 1 back, 2 forward: 11/01 .. 11/04 in both zones; UTC's own "today" would be 11/03.
    now = dt.datetime(2026, 11, 3, 5, 30, tzinfo=dt.UTC)
    export = build_epic(epic_warehouse, [
        epic_row(1, "2026-10-31"),  # a day before the window
        epic_row(2, "2026-11-01"),  # first day of the window (UTC's window would start 11/02)
        epic_row(3, "2026-11-04", tz=PHOENIX, team="OCF-2"),  # last day
        epic_row(4, "2026-11-05", tz=PHOENIX, team="OCF-2"),  # a day after (inside UTC's window)
    ], now)
    assert [r[0] for r in rows_of(export.content)[1:]] == ["OCF-1", "OCF-2"]
    assert [r[4] for r in rows_of(export.content)[1:]] == ["11/01/2026 07:00", "11/04/2026 07:00"]


def test_epic_ids_placeholders_problems_and_gaps(epic_warehouse):
    now = dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.UTC)
    export = build_epic(epic_warehouse, [
        epic_row(1, "2026-11-02", custom1="  SER9 ", start="07:00"),  # spaces around the id: trimmed
        epic_row(2, "2026-11-02", custom1="", name="Ben Okafor", person=12, start="08:00"),  # no Epic id: a problem
        epic_row(3, "2026-11-02", custom1=None, name="Anesthesia On Call", person=19, placeholder=True, start="09:00"),
        epic_row(4, "2026-11-02", outcome="coverage_gap", custom1=None, name=None, person=None, start="10:00"),
        epic_row(5, "2026-11-02", outcome="problem", person=77, reason="person 77 is inactive", start="11:00"),
    ], now)
    body = rows_of(export.content)[1:]
    assert [(r[6], r[7]) for r in body] == [("SER9", "Ana Reyes"), ("", "Anesthesia On Call")]
    assert export.rows == 2 and export.coverage_gaps == 1
    assert [(p.kind, p.record, p.field, p.reason) for p in export.problems] == [
        ("person_without_vendor_id", "slot 2 (OCF-1 11/02/2026 08:00)", "custom1",
         "person 12 has no custom1 (the Epic provider id)"),  # by id: a reason reaches run storage
        ("person_not_exportable", "slot 5 (OCF-1 11/02/2026 11:00)", "personnel_id", "person 77 is inactive"),
    ]


def test_epic_order_is_team_start_then_call_order_as_a_number(epic_warehouse):
    now = dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.UTC)
    export = build_epic(epic_warehouse, [
        epic_row(1, "2026-11-02", call_order=10, name="Cy"),
        epic_row(2, "2026-11-02", call_order=2, name="Ben"),
        epic_row(3, "2026-11-02", call_order=1, name="Ana", start="17:00"),
        epic_row(4, "2026-11-02", call_order=1, name="Dee", team="OCF-0"),
    ], now)
    assert [(r[0], r[3], r[7]) for r in rows_of(export.content)[1:]] == [
        ("OCF-0", "1", "Dee"), ("OCF-1", "2", "Ben"), ("OCF-1", "10", "Cy"), ("OCF-1", "1", "Ana"),
    ]


def test_epic_cells_are_rfc_4180(epic_warehouse):
    now = dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.UTC)
    export = build_epic(epic_warehouse, [
        epic_row(1, "2026-11-02", name='Reyes, Ana "AR"', notes="call 4411\nthen 4412"),
    ], now)
    assert export.content.startswith(b"TEAM_ID,TEAM_NAME,ROLE,CALL_ORDER,START,END,PROVIDER_ID,")
    line = export.content.split(b"\r\n", 1)[1]
    assert line == (b'OCF-1,Team,Attending,1,11/02/2026 07:00,later,SER1,"Reyes, Ana ""AR""",4011,'
                    b'"call 4411\nthen 4412",\r\n')  # the empty TEAM_COMMENT is an empty cell, not ""


# --- Kronos WFD ------------------------------------------------------------------------------

WFD_TABLE = """CREATE TABLE exports.export_kronos_wfd (
    slot_id BIGINT, slot_date DATE, outcome VARCHAR, problem_reason VARCHAR, personnel_id BIGINT,
    unique_id VARCHAR, custom1 VARCHAR, custom2 VARCHAR, custom3 VARCHAR, custom4 VARCHAR, emp_id VARCHAR,
    labor_categories VARCHAR[], "SHIFT_DATE" VARCHAR, "START" VARCHAR, "END" VARCHAR, "SEGMENT_TYPE" VARCHAR,
    "WORK_RULE_TRANSFER" VARCHAR, "PAY_CODE_EDIT" VARCHAR, "OPEN_SHIFT" VARCHAR, "BUSINESS_STRUCTURE" VARCHAR,
    "COST_CENTER_TRANSFER" VARCHAR, "COMMENT" VARCHAR)"""
PERIOD = PayPeriod(dt.date(2026, 11, 1), dt.date(2026, 11, 14))


def wfd_row(slot_id, day, emp_id="100011", *, outcome="deliver", person=11, labor=("Anesthesia", "Call"),
            end="07:00", open_shift="N"):
    return (slot_id, day, outcome, None, person, None, None, None, None, None, emp_id, list(labor) if labor else None,
            day, f"{day}T17:00", f"{day}T{end}", "REQUIRED", "", "On Call", open_shift, None, None, "Call")


def build_wfd(conn, rows, delimiter="|"):
    conn.execute("DELETE FROM exports.export_kronos_wfd")
    conn.executemany(f"INSERT INTO exports.export_kronos_wfd VALUES ({', '.join(['?'] * 22)})", rows)
    settings = KronosWfdSettings(pay_period={"anchor": "2026-11-01", "length_days": 14},
                                 valid_comments=["Call"], labor_category_delimiter=delimiter)
    return wfd.build_period_file(conn, settings, PERIOD, dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC))


@pytest.fixture
def wfd_warehouse():
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA exports")
        conn.execute(WFD_TABLE)
        yield conn


def test_wfd_rows_problems_and_counts(wfd_warehouse):
    export = build_wfd(wfd_warehouse, [
        wfd_row(5002, "2026-11-03", labor=("Anesthesia", "OR")),
        wfd_row(5001, "2026-11-02", " 100011 "),  # the person number is trimmed
        wfd_row(5003, "2026-11-04", None, person=12),  # no emp_id: a problem
        wfd_row(5004, "2026-11-05", None, outcome="open_shift", person=None, labor=None, open_shift="Y"),
        wfd_row(5005, "2026-11-06", None, outcome="coverage_gap", person=None),
        wfd_row(5006, "2026-11-07", None, outcome="placeholder", person=19),
        wfd_row(5007, "2026-11-20"),  # the next pay period
    ], delimiter=" / ")
    assert rows_of(export.content)[1:] == [
        ["ADD", "5001", "100011", "2026-11-02", "2026-11-02T17:00", "2026-11-02T07:00", "REQUIRED", "", "On Call",
         "N", "", "", "Anesthesia / Call", "Call"],
        ["ADD", "5002", "100011", "2026-11-03", "2026-11-03T17:00", "2026-11-03T07:00", "REQUIRED", "", "On Call",
         "N", "", "", "Anesthesia / OR", "Call"],
        ["ADD", "5004", "", "2026-11-05", "2026-11-05T17:00", "2026-11-05T07:00", "REQUIRED", "", "On Call",
         "Y", "", "", "", "Call"],
    ]
    assert [(p.kind, p.record, p.field, p.reason) for p in export.problems] == [
        ("person_without_vendor_id", "slot 5003 (2026-11-04)", "emp_id",
         "person 12 has no emp_id (the Kronos person number)")]
    meta = export.extra_metadata
    assert (meta["full_file"], meta["ADD"], meta["UPDATE"], meta["DELETE"]) == (True, 3, 0, 0)
    assert (export.coverage_gaps, meta["placeholders_left_out"], meta["shifts_in_period"]) == (1, 1, 3)
    assert export.new_state.rows == 3


# --- The preview in run storage --------------------------------------------------------------


def test_preview_masks_the_personal_columns_and_keeps_ids_teams_and_times():
    columns = ["TEAM_ID", "START", "PROVIDER_ID", "PROVIDER_NAME", "CONTACT", "NOTES"]
    rows = [
        ["OCF-1", "11/02/2026 07:00", "SER011", "Ana Reyes", "312-555-0111", "Covering for Ben Okafor"],
        ["OCF-1", "11/02/2026 17:00", "", "Anesthesia On Call", "", None],  # no contact: shown empty
    ]
    text = exporting.preview(columns, rows, total=12, personal={"PROVIDER_NAME", "CONTACT", "NOTES"}).value
    assert text.splitlines() == [
        "| TEAM_ID | START | PROVIDER_ID | PROVIDER_NAME | CONTACT | NOTES |",
        "|---|---|---|---|---|---|",
        "| OCF-1 | 11/02/2026 07:00 | SER011 | ••• | ••• | ••• |",
        "| OCF-1 | 11/02/2026 17:00 |  | ••• |  |  |",
        "",
        "… and 2 more rows",
        "",
        "Masked (•••): PROVIDER_NAME, CONTACT, NOTES. Their values are in the file and the warehouse.",
    ]


def test_each_export_masks_names_contact_and_free_text():
    assert epic.PERSONAL_COLUMNS == {"PROVIDER_NAME", "CONTACT", "NOTES", "TEAM_COMMENT"}
    assert epic.PERSONAL_COLUMNS <= set(epic.COLUMNS)
    assert wfd.PERSONAL_COLUMNS == set()  # PERSON_NUMBER is an id, COMMENT one of valid_comments


def test_epic_preview_of_a_built_file_shows_no_name_or_contact(epic_warehouse):
    now = dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.UTC)
    export = build_epic(epic_warehouse, [epic_row(1, "2026-11-02", name="Ana Reyes", notes="Backup: Ben Okafor")], now)
    assert b"Ana Reyes" in export.content
    text = exporting.preview(*exporting.csv_preview(export.content), personal=export.personal_columns).value
    assert "| OCF-1 | Team | Attending | 1 | 11/02/2026 07:00 | later | SER1 | ••• | ••• | ••• |  |" in text
    assert "Reyes" not in text and "4011" not in text and "Okafor" not in text
