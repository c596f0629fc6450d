"""Epic OpTime rows worked out by hand for a small system, through the real pipeline.

The clock is pinned to 2026-10-31 00:30 CDT (-05:00) = 05:30 UTC = 2026-10-30 22:30 MST, so
"today" is 2026-10-31 in Chicago (window 2026-10-31 .. 2026-11-14) and 2026-10-30 in Phoenix
(window 2026-10-30 .. 2026-11-13). Chicago falls back on 2026-11-01 at 02:00 (CDT -5 → CST
-6); New York does the same an hour earlier in real time; Phoenix stays MST -7.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lb_pipelines.integrations.epic_optime.settings import EpicOpTimeMappingRow
from lb_pipelines.integrations.registry import integration
from pipeline_helpers import metadata_of, run_pipeline, step_failures, write_config
from tiny_system import fresh, slot, write_system
from warehouse_helpers import query

SETTINGS = """
personnel_id_field: custom1
delivery: {type: outbox}
alerts: {to: [optime-admins@example.org]}
"""
# Line 6: a misspelt zone; line 7: a second row for assignment 102 (OpTime takes one per assignment).
MAPPING = """assignment_id,import_group,resource_type_id,role,timezone
101,IG-MERCY,RT-ANES-MD,Attending,America/New_York
104,IG-SONORAN,RT-ANES-MD,Attending,America/Phoenix
102,IG-MERCY,RT-CRNA,CRNA,
201,IG-DESERT,RT-ED,Physician,
103,IG-MERCY,RT-ADMIN,,America/Chicgo
102,IG-MERCY-2,RT-CRNA,CRNA,
"""
HEADER = ["IMPORT_GROUP", "RESOURCE_TYPE_ID", "SER_ID", "PROVIDER_NAME", "ROLE", "ASSIGNMENT", "START", "END"]


def system():
    s = fresh()  # Ana 11 SER011, Ben 12 no custom1, Cy 13 SER013, 19 a placeholder
    ana = s["personnel"][0]
    s["personnel"] += [
        dict(ana, id=14, first_name="Dee", last_name="Park", abbreviation="DP", custom1="SER014", emp_id="100014"),
        dict(ana, id=15, first_name="Eli", last_name="Stone", abbreviation="ES", custom1="SER015", active=False),
    ]
    a = s["assignments"][0]
    s["assignments"] += [
        dict(a, id=103, name="Admin", assignment_type="Admin", default_start="08:00", default_end="12:00"),
        dict(a, id=104, name="Cardiac Anesthesia Call"),
    ]
    sch = s["schedules"][0]
    s["schedules"] = [
        dict(sch, id=1001, department_id=1, start_date="2026-10-01", end_date="2026-11-30", status="published"),
        dict(sch, id=2001, department_id=2, start_date="2026-10-01", end_date="2026-11-30", status="published"),
        dict(sch, id=1003, department_id=1, start_date="2026-11-01", end_date="2026-11-14", status="draft", published_at=None),
    ]
    s["slots"] = [
        # Chicago (department 1)
        slot(6001, 1001, "2026-10-31", 101, 11, "17:00", "07:00"),  # fall-back night, to New York
        slot(6002, 1001, "2026-10-31", 104, 14, "17:00", "07:00"),  # fall-back night, to Phoenix
        slot(6016, 1001, "2026-10-31", 102, 13, "19:00", "07:00"),  # fall-back night, local
        slot(6003, 1001, "2026-11-02", 102, None, "07:00", "15:00"),  # unfilled: a coverage gap
        slot(6005, 1001, "2026-11-02", 101, 19, "17:00", "07:00"),  # placeholder
        slot(6004, 1001, "2026-11-03", 102, 12, "07:00", "15:00"),  # Ben: no SER id
        slot(6014, 1001, "2026-11-05", 102, 15, "07:00", "15:00"),  # Eli: inactive
        slot(6015, 1001, "2026-11-06", 102, 99, "07:00", "15:00"),  # nobody Lightning Bolt knows
        slot(6013, 1001, "2026-11-04", 103, 11, "08:00", "12:00"),  # its mapping row is refused
        slot(6009, 1003, "2026-11-05", 102, 11, "07:00", "15:00"),  # draft schedule
        slot(6006, 1001, "2026-10-30", 102, 11, "07:00", "15:00"),  # yesterday: out
        slot(6019, 1001, "2026-10-30", 102, None, "07:00", "15:00"),  # yesterday, unfilled: not counted
        slot(6018, 1001, "2026-11-14", 101, 13, "07:00", "15:00"),  # today + 14: in
        slot(6021, 1001, "2026-11-14", 102, 11, "07:00", "15:00"),  # today + 14: in
        slot(6007, 1001, "2026-11-14", 102, 14, "07:00", "15:00"),  # today + 14: in
        slot(6008, 1001, "2026-11-15", 102, 11, "07:00", "15:00"),  # today + 15: out
        # Phoenix (department 2): its today is 2026-10-30
        slot(6020, 2001, "2026-10-29", 201, 13, "07:00", "07:00"),  # yesterday there: out
        slot(6010, 2001, "2026-10-30", 201, 13, "07:00", "07:00"),  # today there: in
        slot(6011, 2001, "2026-11-13", 201, 13, "07:00", "07:00"),  # today + 14 there: in
        slot(6012, 2001, "2026-11-14", 201, 13, "07:00", "07:00"),  # today + 15 there: out
    ]
    return s


# Worked out by hand, in the order import group, start instant, resource type, SER id, slot id.
EXPECTED = [
    # Phoenix wall clock (no time zone in the mapping), 24-hour calls.
    ["IG-DESERT", "RT-ED", "SER013", "Cy Nguyen", "Physician", "ED 24h", "2026-10-30 07:00", "2026-10-31 07:00"],
    ["IG-DESERT", "RT-ED", "SER013", "Cy Nguyen", "Physician", "ED 24h", "2026-11-13 07:00", "2026-11-14 07:00"],
    # 6001: 17:00 CDT = 22:00 UTC = 18:00 EDT; 07:00 CST = 13:00 UTC = 08:00 EST (15 h real).
    ["IG-MERCY", "RT-ANES-MD", "SER011", "Ana Reyes", "Attending", "OB Anesthesia Call", "2026-10-31 18:00", "2026-11-01 08:00"],
    # 6016: no zone in the mapping: Chicago's wall clock as scheduled (19:00 CDT .. 07:00 CST, 13 h real).
    ["IG-MERCY", "RT-CRNA", "SER013", "Cy Nguyen", "CRNA", "OR Day", "2026-10-31 19:00", "2026-11-01 07:00"],
    # 11-14 07:00 CST = 13:00 UTC for the three: 6018 is read in New York (08:00 EST) yet comes
    # first (same instant, RT-ANES-MD < RT-CRNA); then SER011 (slot 6021) before SER014 (slot 6007).
    ["IG-MERCY", "RT-ANES-MD", "SER013", "Cy Nguyen", "Attending", "OB Anesthesia Call", "2026-11-14 08:00", "2026-11-14 16:00"],
    ["IG-MERCY", "RT-CRNA", "SER011", "Ana Reyes", "CRNA", "OR Day", "2026-11-14 07:00", "2026-11-14 15:00"],
    ["IG-MERCY", "RT-CRNA", "SER014", "Dee Park", "CRNA", "OR Day", "2026-11-14 07:00", "2026-11-14 15:00"],
    # 6002: 22:00 UTC = 15:00 MST; 13:00 UTC = 06:00 MST next day: 15 h on Phoenix's clock too.
    ["IG-SONORAN", "RT-ANES-MD", "SER014", "Dee Park", "Attending", "Cardiac Anesthesia Call", "2026-10-31 15:00", "2026-11-01 06:00"],
]


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    root = tmp_path_factory.mktemp("optime")
    with pytest.MonkeyPatch.context() as env:
        for var, value in {
            "LB_NOW": "2026-10-31T00:30:00-05:00", "LB_SOURCE_DIR": str(root / "source"),
            "LB_WAREHOUSE": str(root / "warehouse.duckdb"), "LB_OUTBOX_DIR": str(root / "outbox"),
            "LB_CONFIG_DIR": str(root / "config"), "LB_BI_DIR": str(root / "bi"),
        }.items():
            env.setenv(var, value)
        env.delenv("LB_API_URL", raising=False)
        write_system(root / "source", system())
        write_config(root / "config", "epic_optime", SETTINGS, MAPPING)
        # The main job, as `make run`: on a fresh warehouse the integration's own job fails in
        # dbt (relationship tests reach marts outside its selection that were never built).
        result = run_pipeline()
    assert result.success, step_failures(result)
    return root, result


def file_rows(root) -> tuple[str, list[list[str]], bytes]:
    [path] = (root / "outbox" / "epic_optime").glob("*.csv")
    content = path.read_bytes()
    return path.name, list(csv.reader(io.StringIO(content.decode("utf-8"), newline=""))), content


def test_file_rows_by_hand(delivered):
    root, _ = delivered
    name, rows, content = file_rows(root)
    assert name == "epic_optime_202610310030.csv"  # LB_NOW's own zone (05:30 in UTC)
    assert rows[0] == HEADER
    assert rows[1:] == EXPECTED
    assert content.count(b"\r\n") == len(EXPECTED) + 1  # RFC 4180 line ends


def problems_of(root, scope: str) -> list[tuple]:
    """(kind, record, field, reason) of the problems stored for one scope: the file's or the config's."""
    return query(
        root / "warehouse.duckdb",
        "SELECT kind, record, field, reason FROM delivery.problems"
        " WHERE integration = 'epic_optime' AND scope = ? ORDER BY record",
        [scope],
    )


def _real_hours(row: list[str], zone: str) -> float:
    """START → END of a file row read as wall-clock times in `zone`, in real elapsed hours."""
    local = (dt.datetime.strptime(row[i], "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(zone)) for i in (6, 7))
    start, end = (t.astimezone(dt.timezone.utc) for t in local)  # Python subtracts one zone's times as wall clock
    return (end - start).total_seconds() / 3600


def test_translated_times_keep_the_real_length_across_the_fall_back_night(delivered):
    root, _ = delivered
    _, rows, _ = file_rows(root)
    calls = {(r[0], r[6][:10]): r for r in rows[1:] if r[5].endswith("Call")}
    new_york, phoenix = calls[("IG-MERCY", "2026-10-31")], calls[("IG-SONORAN", "2026-10-31")]
    # Both were scheduled 17:00 → 07:00 in Chicago over the fall-back night: 15 h real.
    assert _real_hours(new_york, "America/New_York") == 15  # 18:00 EDT → 08:00 EST: 14 h on the clock
    assert _real_hours(phoenix, "America/Phoenix") == 15  # 15:00 → 06:00 MST: 15 h on the clock
    # Shifting Chicago's wall clock by the zones' difference at the start (-2 h) would have
    # written 05:00, an hour short: the times come from the instants.
    assert phoenix[6:] == ["2026-10-31 15:00", "2026-11-01 06:00"]
    # A row without a zone keeps Chicago's wall clock as scheduled (19:00 CDT → 07:00 CST, 13 h real).
    local = next(r for r in rows[1:] if r[5] == "OR Day" and r[6].startswith("2026-10-31"))
    assert local[6:] == ["2026-10-31 19:00", "2026-11-01 07:00"]
    assert _real_hours(local, "America/Chicago") == 13


def test_metadata_problems_and_ledger(delivered):
    root, result = delivered
    meta = metadata_of(result, ["epic_optime", "file"])
    assert (meta["rows"], meta["problems"], meta["coverage_gaps"], meta["status"]) == (8, 3, 1, "delivered")
    assert meta["placeholders_left_out"] == 1
    assert meta["rows_in_mapping_time_zone"] == 3  # 6001, 6018 (New York) and 6002 (Phoenix)
    assert meta["window"] == "0 days back, 14 forward"
    # Run storage names people by id: provider names are masked in the preview.
    assert "| IG-DESERT | RT-ED | SER013 | ••• | Physician | ED 24h | 2026-10-30 07:00 | 2026-10-31 07:00 |" in meta["preview"]
    for name in ("Cy Nguyen", "Ana Reyes", "Dee Park", "Okafor", "Stone"):
        assert name not in meta["preview"]
        assert name not in meta["problem_rows"]
    assert problems_of(root, "full") == [
        ("person_without_vendor_id", "slot 6004 (IG-MERCY 2026-11-03 07:00)", "custom1", "person 12 has no custom1 (the Epic SER id)"),
        ("person_not_exportable", "slot 6014 (IG-MERCY 2026-11-05 07:00)", "personnel_id", "person 15 is inactive"),
        ("person_not_exportable", "slot 6015 (IG-MERCY 2026-11-06 07:00)", "personnel_id",
         "personnel_id 99 is not in Lightning Bolt's personnel"),
    ]
    ledger = query(
        root / "warehouse.duckdb", "SELECT file_name, rows, status FROM delivery.ledger WHERE integration = 'epic_optime'"
    )
    assert ledger == [("epic_optime_202610310030.csv", 8, "delivered")]
    checks = {(c.asset_key.path[0], c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert checks[("epic_optime", "no_problem_rows")] is False


def test_bad_mapping_rows_are_reported_with_file_and_line(delivered):
    root, result = delivered
    problems = problems_of(root, "config")
    assert problems == [
        ("bad_mapping_row", "mapping.csv line 6", "timezone",
         "'America/Chicgo' is not an IANA time zone name (such as America/Chicago; the case matters); "
         "leave the cell empty for the department's own time"),
        ("bad_mapping_row", "mapping.csv line 7", "assignment_id",
         "assignment 102 is already mapped on line 4; this integration takes one row per assignment"),
    ]
    mapped = query(
        root / "warehouse.duckdb", "SELECT assignment_id, mapping_line FROM config.epic_optime__mapping ORDER BY 2"
    )
    assert mapped == [(101, 2), (104, 3), (102, 4), (201, 5)]
    assert metadata_of(result, ["config", "epic_optime"])["problems"] == 2
    # The analyst's message names the file itself and the line.
    loaded = integration("epic_optime").load(root / "config")
    first = loaded.mapping.problems[0]
    assert (first.file.relative_to(root), first.line, first.field) == (
        Path("config/epic_optime/mapping.csv"), 6, "timezone"
    )
    assert str(first).endswith("mapping.csv: line 6, timezone: " + problems[0][3])


def mapping_row(zone: str) -> EpicOpTimeMappingRow:
    return EpicOpTimeMappingRow.model_validate(
        {"assignment_id": 1, "import_group": "G", "resource_type_id": "R", "timezone": zone}
    )


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "UTC", "Etc/GMT+5"])
def test_real_zones_are_accepted(zone):
    assert mapping_row(zone).timezone == zone


@pytest.mark.parametrize(
    "zone", ["america/chicago", "Central", "CST6", "localtime", "posix/America/Chicago", "+05:00"]
)
def test_names_that_are_not_iana_zones_are_refused(zone):
    with pytest.raises(ValueError, match="is not an IANA time zone name"):
        mapping_row(zone)
