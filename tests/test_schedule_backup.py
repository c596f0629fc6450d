"""Schedule backup rows worked out by hand for a small system, through its real asset.

The warehouse is built as the pipeline builds it (raw load, then dbt for the export model and
what it reads); the file asset then renders and delivers through the ledger. (`make run` on
the sample, in tests/test_integration_contract.py, runs it inside the whole job.)

The clock is pinned just after midnight in Chicago, when it is still the evening before in
Phoenix: LB_NOW 2026-11-02 00:30 CST (06:30 UTC) is 2026-11-01 23:30 in Phoenix. So the window
(today and the next three days) is 2026-11-02..05 for the Chicago department and 2026-11-01..04
for the Phoenix one.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import openpyxl
import pytest
from pydantic import ValidationError

from lb_pipelines.delivery.ledger import ensure_delivery_tables
from lb_pipelines.delivery.targets import DeliveryError, OutboxTarget
from lb_pipelines.integrations.assets import file_export_asset
from lb_pipelines.integrations.exporting import MASK, send_export
from lb_pipelines.integrations.schedule_backup.export import build_file
from lb_pipelines.integrations.schedule_backup.settings import ScheduleBackupSettings
from lb_pipelines.integrations.schedule_backup.workbook import EMPTY_SHEET, unique_sheet_name, write_workbook
from lb_pipelines.integrations.schedule_backup import INTEGRATION
from lb_pipelines.warehouse.resource import WarehouseResource
from pipeline_helpers import metadata_of, step_failures, write_config
from tiny_system import fresh, slot
from warehouse_helpers import load_system, run_dbt

NOW = "2026-11-02T00:30:00-06:00"
SETTINGS = """
cadence: "*/10 * * * *"
delivery: {type: outbox}
alerts: {to: [downtime@example.org]}
"""
HEADER = ["DEPARTMENT", "DATE", "ASSIGNMENT", "START", "END", "PROVIDER", "CELL", "PAGER", "EMAIL", "NOTES"]
ANES, ED = "Anesthesiology - Mercy North", "ED/Urgent Care - Desert"


def system():
    s = fresh()  # Ana 11, Ben 12 (no cell, no pager), Cy 13 (Phoenix; no email), 19 placeholder
    s["departments"][1]["name"] = ED  # a "/" is not allowed in a sheet name
    ana = s["personnel"][0]
    s["personnel"].append(dict(ana, id=14, first_name="Dee", last_name="Park", cell_phone="312-555-0114",
                               pager="4014", email="dee.park@example.org", active=False))
    a = s["assignments"][0]
    s["assignments"].append(dict(a, id=103, name="Retired Call", active=False))
    sch = s["schedules"][0]
    s["schedules"] = [
        dict(sch, id=1001, department_id=1, start_date="2026-11-01", end_date="2026-11-30", status="published"),
        dict(sch, id=2001, department_id=2, start_date="2026-11-01", end_date="2026-11-30", status="published"),
        dict(sch, id=1003, department_id=1, start_date="2026-11-01", end_date="2026-11-30", status="draft", published_at=None),
    ]
    s["slots"] = [
        slot(6001, 1001, "2026-11-01", 101, 11, "17:00", "07:00"),  # yesterday in Chicago: out
        slot(6002, 1001, "2026-11-02", 101, 19, "17:00", "07:00", "Backup: pager 4411"),  # placeholder
        slot(6003, 1001, "2026-11-02", 102, None, "07:00", "15:00"),  # unfilled
        slot(6004, 1001, "2026-11-02", 102, 12, "07:00", "15:00"),  # Ben: e-mail only
        slot(6005, 1001, "2026-11-03", 102, 14, "07:00", "15:00"),  # Dee is inactive
        slot(6006, 1001, "2026-11-04", 101, 99, "17:00", "07:00"),  # nobody Lightning Bolt knows
        slot(6007, 1001, "2026-11-05", 102, 11, "07:00", "15:00"),  # today + 3: the last day
        slot(6008, 1001, "2026-11-06", 102, 11, "07:00", "15:00"),  # today + 4: out
        slot(6009, 1003, "2026-11-03", 101, 11, "17:00", "07:00"),  # draft schedule: out
        slot(6010, 1001, "2026-11-03", 103, 11, "17:00", "07:00"),  # inactive assignment: out
        slot(7001, 2001, "2026-11-01", 201, 13, "07:00", "07:00"),  # still today in Phoenix
        slot(7002, 2001, "2026-11-04", 201, 13, "07:00", "07:00", "=call charge RN"),  # today + 3
        slot(7003, 2001, "2026-11-05", 201, 13, "07:00", "07:00"),  # today + 4 in Phoenix: out
    ]
    return s


EXPECTED = [
    [ANES, "2026-11-02", "OR Day", "2026-11-02 07:00", "2026-11-02 15:00", "Ben Okafor", "", "", "ben.okafor@example.org", ""],
    [ANES, "2026-11-02", "OR Day", "2026-11-02 07:00", "2026-11-02 15:00", "UNFILLED", "", "", "", ""],
    [ANES, "2026-11-02", "OB Anesthesia Call", "2026-11-02 17:00", "2026-11-03 07:00", "Anesthesia On Call", "312-555-0199", "4999", "", "Backup: pager 4411"],
    [ANES, "2026-11-03", "OR Day", "2026-11-03 07:00", "2026-11-03 15:00", "Dee Park (INACTIVE)", "312-555-0114", "4014", "dee.park@example.org", ""],
    [ANES, "2026-11-04", "OB Anesthesia Call", "2026-11-04 17:00", "2026-11-05 07:00", "UNKNOWN PERSON 99", "", "", "", ""],
    [ANES, "2026-11-05", "OR Day", "2026-11-05 07:00", "2026-11-05 15:00", "Ana Reyes", "312-555-0111", "4011", "ana.reyes@example.org", ""],
    [ED, "2026-11-01", "ED 24h", "2026-11-01 07:00", "2026-11-02 07:00", "Cy Nguyen", "602-555-0113", "", "", ""],
    [ED, "2026-11-04", "ED 24h", "2026-11-04 07:00", "2026-11-05 07:00", "Cy Nguyen", "602-555-0113", "", "", "=call charge RN"],
]


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    root = tmp_path_factory.mktemp("backup")
    warehouse_file = load_system(root / "source", system(), root / "warehouse.duckdb")
    run_dbt(warehouse_file, "run", "--select", "+export_schedule_backup")
    with pytest.MonkeyPatch.context() as env:
        for var, value in {
            "LB_NOW": NOW, "LB_WAREHOUSE": str(warehouse_file), "LB_OUTBOX_DIR": str(root / "outbox"),
            "LB_CONFIG_DIR": str(root / "config"),
        }.items():
            env.setenv(var, value)
        write_config(root / "config", "schedule_backup", SETTINGS)
        result = dg.materialize(
            [file_export_asset(INTEGRATION)],
            resources={"warehouse": WarehouseResource(database=str(warehouse_file))},
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    assert result.success, step_failures(result)
    return root, result


@contextmanager
def warehouse(root: Path):
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        yield conn


def csv_rows(content: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"))))
    assert rows[0] == HEADER
    return rows[1:]


def as_text(column: int, value) -> str:
    """A workbook cell as the CSV writes it: DATE (column 1) a date, START and END date-times."""
    if column == 1:
        return f"{value:%Y-%m-%d}"
    if column in (3, 4):
        return f"{value:%Y-%m-%d %H:%M}"
    return "" if value is None else str(value)


def column_width(ws, letter: str) -> float:
    """The width of column `letter`, also when the file gives it for a range of columns (XlsxWriter
    writes adjacent columns of the same width as one <col min max>, which openpyxl keys by the
    range's first column)."""
    index = openpyxl.utils.column_index_from_string(letter)
    [width] = [d.width for d in list(ws.column_dimensions.values()) if d.min <= index <= d.max]
    return width


def test_csv_rows_by_hand(delivered):
    root, _ = delivered
    [path] = (root / "outbox" / "schedule_backup").glob("*.csv")
    assert path.name == "schedule_backup_202611020030.csv"
    assert csv_rows(path.read_bytes()) == EXPECTED
    assert path.read_bytes().count(b"\r\n") == len(EXPECTED) + 1  # RFC 4180 line ends


def test_workbook_read_back(delivered):
    root, _ = delivered
    path = root / "outbox" / "schedule_backup" / "schedule_backup_202611020030.xlsx"
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [ANES, "ED-Urgent Care - Desert"]
    anes, ed = book.worksheets
    for ws in (anes, ed):
        assert ws.freeze_panes == "A2"
        assert [c.value for c in ws[1]] == HEADER and ws["A1"].font.b
    # Readable: each text column as wide as its longest value (or its header), plus 2.
    assert column_width(anes, "C") == len("OB Anesthesia Call") + 2
    assert column_width(ed, "C") == len("ASSIGNMENT") + 2
    assert column_width(anes, "A") == len(ANES) + 2
    assert anes.max_row == 1 + 6 and ed.max_row == 1 + 2
    date, start, end = anes["B2"], anes["D2"], anes["E4"]
    assert isinstance(date.value, dt.date) and date.value.date() == dt.date(2026, 11, 2)
    assert date.number_format == "yyyy-mm-dd"
    assert start.value == dt.datetime(2026, 11, 2, 7, 0) and start.number_format == "yyyy-mm-dd hh:mm"
    assert end.value == dt.datetime(2026, 11, 3, 7, 0)  # the overnight call ends the next day
    assert anes["F3"].value == "UNFILLED" and anes["F4"].value == "Anesthesia On Call"
    assert ed["J3"].value == "=call charge RN" and ed["J3"].data_type == "s"  # text, not a formula


def test_csv_and_workbook_hold_the_same_rows(delivered):
    root, _ = delivered
    folder = root / "outbox" / "schedule_backup"
    from_csv = csv_rows((folder / "schedule_backup_202611020030.csv").read_bytes())
    book = openpyxl.load_workbook(folder / "schedule_backup_202611020030.xlsx", read_only=True)
    from_book = [
        [as_text(i, v) for i, v in enumerate(row)]
        for ws in book.worksheets
        for row in ws.iter_rows(min_row=2, max_col=len(HEADER), values_only=True)
    ]
    assert from_book == from_csv


def test_one_delivery_two_ledger_rows_and_masked_metadata(delivered):
    root, result = delivered
    meta = metadata_of(result, ["schedule_backup", "file"])
    assert (meta["rows"], meta["problems"], meta["coverage_gaps"], meta["status"]) == (8, 2, 1, "delivered")
    assert (meta["departments"], meta["unfilled"], meta["placeholders"]) == (2, 1, 1)
    # Run storage names people by id: the personal columns are masked; the department is not.
    assert f"| {ANES} | 2026-11-02 | OR Day | 2026-11-02 07:00 | 2026-11-02 15:00 | {MASK} |  |  | {MASK} |  |" in meta["preview"]
    for personal in ("Ben Okafor", "ben.okafor@example.org", "Anesthesia On Call", "312-555-0199", "Backup: pager 4411", "Dee Park"):
        assert personal not in meta["preview"] and personal not in meta["problem_rows"]
    folder = root / "outbox" / "schedule_backup"
    with warehouse(root) as conn:
        ledger = conn.execute(
            "SELECT delivery_id, file_name, rows, status, sha256 FROM delivery.ledger "
            "WHERE integration = 'schedule_backup' ORDER BY file_name"
        ).fetchall()
    assert len({row[0] for row in ledger}) == 1
    assert [row[1:] for row in ledger] == [
        (name, 8, "delivered", hashlib.sha256((folder / name).read_bytes()).hexdigest())
        for name in ("schedule_backup_202611020030.csv", "schedule_backup_202611020030.xlsx")
    ]
    assert meta["sha256"] == ledger[0][4]


def test_unknown_and_inactive_people_are_in_the_backup_and_reported(delivered):
    root, _ = delivered
    with warehouse(root) as conn:
        problems = conn.execute(
            "SELECT kind, record, field, reason FROM delivery.problems WHERE integration = 'schedule_backup'"
        ).fetchall()
    assert sorted(problems) == [
        ("inactive_person", "slot 6005 (OR Day 2026-11-03 07:00)", "personnel_id",
         "person 14 is inactive; the slot is in the backup, the name marked (INACTIVE)"),
        ("unknown_person", "slot 6006 (OB Anesthesia Call 2026-11-04 17:00)", "personnel_id",
         "personnel_id 99 is not in Lightning Bolt's personnel; the slot is in the backup as UNKNOWN PERSON 99"),
    ]


def test_window_is_today_in_each_departments_own_zone(delivered):
    root, _ = delivered
    # Half an hour before midnight in Chicago (22:30 in Phoenix): 2026-11-01 in both, so the
    # window is 2026-11-01..04 for both departments.
    now = dt.datetime(2026, 11, 2, 5, 30, tzinfo=dt.timezone.utc)
    with warehouse(root) as conn:
        export = build_file(conn, ScheduleBackupSettings(), now)
    assert export.file_name == "schedule_backup_202611020530.csv"
    assert [(r[0], r[3]) for r in csv_rows(export.content)] == [
        (ANES, "2026-11-01 17:00"),  # 6001 is today now
        (ANES, "2026-11-02 07:00"), (ANES, "2026-11-02 07:00"), (ANES, "2026-11-02 17:00"),
        (ANES, "2026-11-03 07:00"), (ANES, "2026-11-04 17:00"),  # 6007 (11-05) is today + 4
        (ED, "2026-11-01 07:00"), (ED, "2026-11-04 07:00"),
    ]


def test_departments_setting_keeps_only_those_and_reports_unknown_ids(delivered):
    root, _ = delivered
    now = dt.datetime.fromisoformat(NOW)
    with warehouse(root) as conn:
        export = build_file(conn, ScheduleBackupSettings(departments=[2, 5]), now)
    assert csv_rows(export.content) == EXPECTED[-2:]
    assert [(p.kind, p.record, p.field, p.reason) for p in export.problems] == [
        ("unknown_department_in_settings", "settings.yaml", "departments",
         "department 5 is not in Lightning Bolt's departments; the backup has nothing for it"),
    ]
    [workbook] = export.also
    assert openpyxl.load_workbook(io.BytesIO(workbook.content)).sheetnames == ["ED-Urgent Care - Desert"]


class FailsOnWorkbook(OutboxTarget):
    """The outbox, except that the .xlsx cannot be written."""

    def deliver(self, integration, file_name, content):
        if file_name.endswith(".xlsx"):
            raise DeliveryError(f"outbox: could not write {file_name}: disk full")
        return super().deliver(integration, file_name, content)


def test_a_failed_workbook_is_not_marked_delivered(delivered, tmp_path):
    root, _ = delivered
    with warehouse(root) as conn:
        export = build_file(conn, ScheduleBackupSettings(), dt.datetime.fromisoformat(NOW))
    ledger_db = tmp_path / "ledger.duckdb"

    @contextmanager
    def connect():
        with duckdb.connect(str(ledger_db)) as conn:
            yield conn

    with pytest.raises(DeliveryError, match="disk full"):
        send_export(connect, FailsOnWorkbook(tmp_path / "outbox"), export, "run-1")
    with connect() as conn:
        ensure_delivery_tables(conn)
        rows = conn.execute("SELECT delivery_id, file_name, status, location FROM delivery.ledger ORDER BY file_name").fetchall()
        problems = conn.execute("SELECT count(*) FROM delivery.problems").fetchall()[0][0]
    assert rows[0][0] == rows[1][0]
    assert [r[1:3] for r in rows] == [
        ("schedule_backup_202611020030.csv", "delivered"),  # it did arrive
        ("schedule_backup_202611020030.xlsx", "failed"),
    ]
    assert rows[1][3] is None
    assert [p.name for p in (tmp_path / "outbox" / "schedule_backup").iterdir()] == ["schedule_backup_202611020030.csv"]
    assert problems == 2  # the delivery's problems are recorded whatever its status


def test_settings_defaults_and_validation():
    defaults = ScheduleBackupSettings()
    assert (defaults.cadence, defaults.window.days_back, defaults.window.days_forward, defaults.departments) == (
        "0 5 * * *", 0, 3, [])
    assert ScheduleBackupSettings(cadence="*/10 * * * *").cadence == "*/10 * * * *"
    assert ScheduleBackupSettings.model_validate({"window": {"days_forward": 1}}).window.days_back == 0
    for bad in ({"departments": [101, 101]}, {"departments": [0]}, {"departments": ["ICU"]},
                {"cadence": "every ten minutes"}, {"department": [101]}):
        with pytest.raises(ValidationError):
            ScheduleBackupSettings.model_validate(bad)


def test_sheet_names_are_valid_and_unique():
    taken: set[str] = set()
    names = [unique_sheet_name(n, taken) for n in (
        "OB/GYN - Prairie South", "Hospital Medicine - Sonoran West", "Cardiology", "CARDIOLOGY",
        "[ICU]: nights?", "History", "'Quoted'", "", "Hospital Medicine - Sonoran Westside",
    )]
    assert names == [
        "OB-GYN - Prairie South", "Hospital Medicine - Sonoran We…", "Cardiology", "CARDIOLOGY (2)",
        "-ICU-- nights-", "History (department)", "Quoted", "Department",
        "Hospital Medicine - Sonora… (2)",
    ]
    assert all(len(n) <= 31 for n in names)


def test_workbook_prints_filters_and_is_the_same_for_the_same_rows(delivered):
    root, _ = delivered
    now = dt.datetime.fromisoformat(NOW)
    with warehouse(root) as conn:
        first, again = (build_file(conn, ScheduleBackupSettings(), now).also[0].content for _ in range(2))
    assert first == again  # created at the run's time: the same rows give the same bytes
    book = openpyxl.load_workbook(io.BytesIO(first))
    assert book.properties.created == dt.datetime(2026, 11, 2, 6, 30)  # NOW in UTC
    anes, ed = book.worksheets
    assert (anes.auto_filter.ref, ed.auto_filter.ref) == ("A1:J7", "A1:J3")
    for ws in (anes, ed):
        assert ws.print_title_rows == "$1:$1"  # the header on every printed page
        assert ws.page_setup.orientation == "landscape" and ws.sheet_properties.pageSetUpPr.fitToPage
        # One page wide (fitToWidth unset is 1, the default), as many pages tall as it takes.
        assert ws.page_setup.fitToWidth in (None, 1) and ws.page_setup.fitToHeight == 0


def test_a_backup_without_rows_is_one_header_only_sheet():
    book = openpyxl.load_workbook(io.BytesIO(write_workbook(HEADER, [], {})))
    assert book.sheetnames == [EMPTY_SHEET]
    assert [c.value for c in book.active[1]] == HEADER and book.active.max_row == 1


def test_a_note_a_workbook_cannot_hold_still_goes_out():
    """A vertical tab (pasted from a word processor) is kept in the CSV, left out of the cell:
    a workbook's XML cannot carry it, and one such note must not stop the backup."""
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA exports")
    conn.execute(
        """CREATE TABLE exports.export_schedule_backup AS SELECT
            1 AS slot_id, 1 AS department_id, 'America/Chicago' AS time_zone, DATE '2026-11-02' AS slot_date,
            TIMESTAMPTZ '2026-11-02 07:00:00-06' AS start_at, TIMESTAMP '2026-11-02 07:00' AS local_start_at,
            TIMESTAMP '2026-11-02 15:00' AS local_end_at, 'filled' AS person_status, NULL AS person_problem,
            11 AS personnel_id, 'OR' AS "DEPARTMENT", DATE '2026-11-02' AS "DATE", 'OR Day' AS "ASSIGNMENT",
            '2026-11-02 07:00' AS "START", '2026-11-02 15:00' AS "END", 'Ana Reyes' AS "PROVIDER",
            NULL AS "CELL", NULL AS "PAGER", NULL AS "EMAIL", 'Call\x0bback' AS "NOTES" """
    )
    export = build_file(conn, ScheduleBackupSettings(), dt.datetime.fromisoformat(NOW))
    assert csv_rows(export.content)[0][-1] == "Call\x0bback"
    book = openpyxl.load_workbook(io.BytesIO(export.also[0].content))
    assert book["OR"]["J2"].value == "Callback"
