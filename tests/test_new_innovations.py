"""New Innovations duty hours, day by day: a hand-made system, dbt, the export and the real ledger.

One warehouse for the module, built by dbt once. Each run's file is built by the
integration and delivered through the ledger to an outbox, as its asset does, with the clock
pinned. Every expected row is worked out by hand below.

  08:00  the first file: every row an ADD.
         Then the schedule changes (a schedule published, a time edited, a gap filled, a slot
         removed, one handed to someone else, another schedule unpublished).
  09:00  the delivery fails (the outbox cannot be written): nothing advances.
  10:00  delivered: the changes, as DELETE / UPDATE / ADD.
  11:00  nothing changed: a header-only file.
  next day 08:00: one delivered row ages out of the window: still a header-only file.

Settings: PERSON_ID from unique_id, days_back 1. Mapping:
  101 OB Anesthesia Call -> In-House Call, "OB Anesthesia Resident Call", notes "24h rule applies", Mercy North - L&D
  102 OR Day             -> Clinical - Scheduled, no NI name (so "OR Day"), Mercy North - Main OR
  201 ED 24h (Phoenix)   -> In-House Call, "ED Resident 24h", Desert - ED
  103 Admin is not mapped.
Day 1 is 2026-11-02 in Chicago and in Phoenix, so the window starts on 2026-11-01 and has no
forward edge.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from lb_pipelines import clock
from lb_pipelines.delivery.targets import DeliveryError, OutboxTarget
from lb_pipelines.integrations.config_files import ConfigError
from lb_pipelines.integrations.exporting import ExportFile, csv_preview, preview, send_export
from lb_pipelines.integrations.new_innovations import INTEGRATION
from lb_pipelines.integrations.new_innovations.export import COLUMNS, PERSONAL_COLUMNS, build_file
from pipeline_helpers import write_config
from tiny_system import TS, fresh, slot
from warehouse_helpers import load_system, run_dbt

SLUG = "new_innovations"
SETTINGS = """
personnel_id_field: unique_id
window: {days_back: 1}
delivery: {type: outbox}
"""
MAPPING = """assignment_id,duty_hour_name,ni_assignment_name,notes,location
101,In-House Call,OB Anesthesia Resident Call,24h rule applies,Mercy North - L&D
102,Clinical - Scheduled,,,Mercy North - Main OR
201,In-House Call,ED Resident 24h,,Desert - ED
"""
HEADER = ["ACTION", "SLOT_ID", "PERSON_ID", "DUTY_HOUR_NAME", "ASSIGNMENT_NAME", "START", "END", "LOCATION", "NOTES"]


def system():
    s = fresh()  # Ana 11 (U11), Ben 12, Cy 13 (U13, Phoenix), 19 the placeholder
    s["personnel"][1]["unique_id"] = None  # Ben: no New Innovations id
    for person in s["personnel"][:3]:
        person["personnel_type"] = "Resident"
    s["personnel"].append(dict(s["personnel"][0], id=14, first_name="Eve", unique_id="U14", active=False))
    a = s["assignments"][0]
    s["assignments"].append(dict(a, id=103, name="Admin", assignment_type="Admin", default_start="08:00", default_end="12:00"))
    sch = s["schedules"][0]
    s["schedules"] = [
        dict(sch, id=1001, department_id=1, start_date="2026-10-01", end_date="2026-11-30", status="published"),
        dict(sch, id=2001, department_id=2, start_date="2026-11-01", end_date="2026-11-30", status="published"),
        dict(sch, id=1002, department_id=1, start_date="2027-03-01", end_date="2027-03-31", status="draft", published_at=None),
    ]
    s["slots"] = [
        slot(5001, 1001, "2026-10-31", 101, 11, "17:00", "07:00"),  # before the window
        slot(5002, 1001, "2026-11-01", 101, 11, "17:00", "07:00", "Backup: pager 4411"),  # first day of the window
        slot(5003, 1001, "2026-11-02", 102, 11, "07:00", "15:00"),
        slot(5004, 1001, "2026-11-03", 102, None, "07:00", "15:00"),  # unfilled: counted, not a row
        slot(5005, 1001, "2026-11-04", 102, 12, "07:00", "15:00"),  # Ben has no unique_id: a problem
        slot(5006, 1001, "2026-11-05", 101, 19, "17:00", "07:00"),  # a placeholder: counted, not a row
        slot(5007, 2001, "2026-11-04", 201, 13, "07:00", "07:00"),  # Phoenix, 24 h
        slot(5008, 1001, "2026-11-06", 101, 11, "17:00", "07:00"),
        slot(5009, 1001, "2026-11-07", 103, 11, "08:00", "12:00"),  # unmapped assignment
        slot(5010, 1002, "2027-03-15", 102, 11, "07:00", "15:00"),  # draft schedule
        slot(5011, 1001, "2026-11-30", 102, 11, "07:00", "15:00"),
        slot(5012, 2001, "2026-11-10", 201, 13, "07:00", "07:00"),
        slot(5013, 1001, "2026-11-08", 102, 14, "07:00", "15:00"),  # Eve is inactive: a problem
    ]
    return s


def changed_system():
    """Publish the March schedule, edit a time, fill the gap, remove a slot, hand one to someone
    else, unpublish Phoenix's schedule."""
    s = system()
    schedules, slots = {x["id"]: x for x in s["schedules"]}, {x["id"]: x for x in s["slots"]}
    schedules[1002].update(status="published", published_at=TS)
    schedules[2001].update(status="draft", published_at=None)  # takes 5007 and 5012 out
    slots[5003]["end_time"] = "16:00"
    slots[5004]["personnel_id"] = 11
    slots[5008]["personnel_id"] = 13
    s["slots"] = [x for x in s["slots"] if x["id"] != 5011]  # removed from Lightning Bolt
    return s


def row(action, slot_id, person, duty, name, start, end, location, notes=""):
    return [action, str(slot_id), person, duty, name, start, end, location, notes]


CALL = ("In-House Call", "OB Anesthesia Resident Call")
OR_DAY = ("Clinical - Scheduled", "OR Day")
ED = ("In-House Call", "ED Resident 24h")
L_AND_D, MAIN_OR, DESERT_ED = "Mercy North - L&D", "Mercy North - Main OR", "Desert - ED"

ANA_5002 = ("5002", "U11", *CALL, "2026-11-01 17:00", "2026-11-02 07:00", L_AND_D, "24h rule applies - Backup: pager 4411")
ANA_5003 = ("5003", "U11", *OR_DAY, "2026-11-02 07:00", "2026-11-02 15:00", MAIN_OR)
CY_5007 = ("5007", "U13", *ED, "2026-11-04 07:00", "2026-11-05 07:00", DESERT_ED)
ANA_5008 = ("5008", "U11", *CALL, "2026-11-06 17:00", "2026-11-07 07:00", L_AND_D, "24h rule applies")
ANA_5011 = ("5011", "U11", *OR_DAY, "2026-11-30 07:00", "2026-11-30 15:00", MAIN_OR)
CY_5012 = ("5012", "U13", *ED, "2026-11-10 07:00", "2026-11-11 07:00", DESERT_ED)


@dataclass
class Day:
    export: ExportFile
    path: Path | None  # None: the delivery failed
    error: str | None = None
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Scenario:
    root: Path
    warehouse: Path
    days: dict[str, Day]


def _load(root: Path, warehouse: Path, source_system) -> None:
    load_system(root / "source", source_system, warehouse)  # leaves every integration's mapping empty
    config = INTEGRATION.load(root / "config")
    with duckdb.connect(str(warehouse)) as conn:
        assert INTEGRATION.write_config(conn, config) == []


def _rerun_tables(warehouse: Path) -> None:
    """The tables the first `dbt run` built, built again from dbt's own compiled SQL, parents
    first: what a second `dbt run` of them does, without dbt's start-up (two shared cores)."""
    target = warehouse.parent / "dbt_target"
    nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    results = json.loads((target / "run_results.json").read_text())["results"]
    with duckdb.connect(str(warehouse)) as conn:
        for result in results:  # in the order they finished: a model starts after its parents
            materialized = nodes[result["unique_id"]]["config"]["materialized"]
            assert materialized in ("view", "table"), result["unique_id"]  # views read the tables again
            if materialized == "table":
                conn.execute(f"CREATE OR REPLACE TABLE {result['relation_name']} AS {result['compiled_code']}")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    root = tmp_path_factory.mktemp("new_innovations")
    warehouse = root / "warehouse.duckdb"
    write_config(root / "config", SLUG, SETTINGS, MAPPING)
    settings = INTEGRATION.load(root / "config").settings
    blocked = root / "blocked"
    blocked.write_text("a file where the outbox folder should be")

    @contextlib.contextmanager
    def connect():
        with duckdb.connect(str(warehouse)) as conn:
            yield conn

    days: dict[str, Day] = {}
    with pytest.MonkeyPatch.context() as env:

        def deliver(name: str, now: str, outbox: Path) -> None:
            env.setenv("LB_NOW", now)
            with connect() as conn:
                export = build_file(conn, settings, clock.now())
            try:
                entry = send_export(connect, OutboxTarget(outbox), export, run_id=name)
            except DeliveryError as exc:
                days[name] = Day(export, None, str(exc))
                return
            path = Path(entry.receipt.location)
            rows = list(csv.reader(io.StringIO(path.read_text(), newline="")))
            assert rows[0] == HEADER
            days[name] = Day(export, path, None, rows[1:])

        _load(root, warehouse, system())
        run_dbt(warehouse, "run", "--select", "+export_new_innovations")
        deliver("first", "2026-11-02T08:00:00-06:00", root / "outbox")
        _load(root, warehouse, changed_system())
        _rerun_tables(warehouse)
        deliver("failed", "2026-11-02T09:00:00-06:00", blocked / "outbox")
        deliver("changes", "2026-11-02T10:00:00-06:00", root / "outbox")
        deliver("no_change", "2026-11-02T11:00:00-06:00", root / "outbox")
        deliver("next_day", "2026-11-03T08:00:00-06:00", root / "outbox")  # 5002 (11/01) ages out
    return Scenario(root, warehouse, days)


def test_the_first_file_holds_every_row_as_add(scenario):
    first = scenario.days["first"]
    assert first.path.name == "ni_duty_hours_202611020800.csv"
    assert first.rows == [
        row("ADD", *ANA_5002), row("ADD", *ANA_5003), row("ADD", *CY_5007),
        row("ADD", *ANA_5008), row("ADD", *ANA_5011), row("ADD", *CY_5012),
    ]
    assert first.path.read_bytes().count(b"\r\n") == 7  # RFC 4180 line ends, header included
    meta = first.export.extra_metadata
    assert (meta["full_file"], meta["ADD"], meta["UPDATE"], meta["DELETE"]) == (True, 6, 0, 0)
    assert (meta["duty_hours_in_window"], meta["placeholders_left_out"], first.export.coverage_gaps) == (6, 1, 1)


def test_people_who_cannot_go_out_are_problems_named_by_id(scenario):
    first = scenario.days["first"]
    assert [(p.kind, p.record, p.field, p.reason) for p in first.export.problems] == [
        ("person_without_vendor_id", "slot 5005 (2026-11-04)", "unique_id",
         "person 12 has no unique_id (the New Innovations person id)"),
        ("person_not_exportable", "slot 5013 (2026-11-08)", "personnel_id", "person 14 is inactive"),
    ]
    with duckdb.connect(str(scenario.warehouse), read_only=True) as conn:
        stored = conn.execute(
            "SELECT kind, record FROM delivery.problems WHERE integration = ? AND run_id = 'first' ORDER BY record",
            [SLUG],
        ).fetchall()
    assert stored == [("person_without_vendor_id", "slot 5005 (2026-11-04)"),
                      ("person_not_exportable", "slot 5013 (2026-11-08)")]


CHANGES = [
    row("DELETE", *CY_5007),  # its schedule was unpublished: the old values go out
    row("DELETE", *ANA_5008),  # handed to Cy: Ana's row is deleted ...
    row("DELETE", *ANA_5011),  # removed from Lightning Bolt
    row("DELETE", *CY_5012),  # unpublished, as 5007
    row("UPDATE", "5003", "U11", *OR_DAY, "2026-11-02 07:00", "2026-11-02 16:00", MAIN_OR),  # edited end
    row("ADD", "5004", "U11", *OR_DAY, "2026-11-03 07:00", "2026-11-03 15:00", MAIN_OR),  # the gap, filled
    row("ADD", "5008", "U13", *CALL, "2026-11-06 17:00", "2026-11-07 07:00", L_AND_D, "24h rule applies"),  # ... Cy's added
    row("ADD", "5010", "U11", *OR_DAY, "2027-03-15 07:00", "2027-03-15 15:00", MAIN_OR),  # newly published, far ahead
]


def test_published_edited_filled_removed_and_reassigned_slots(scenario):
    changes = scenario.days["changes"]
    assert changes.path.name == "ni_duty_hours_202611021000.csv"
    assert changes.rows == CHANGES
    meta = changes.export.extra_metadata
    assert (meta["full_file"], meta["ADD"], meta["UPDATE"], meta["DELETE"]) == (False, 3, 1, 4)
    assert meta["duty_hours_in_window"] == 5  # 5002, 5003, 5004, 5008 (Cy's), 5010
    assert changes.export.coverage_gaps == 0


def test_a_failed_delivery_advances_nothing_and_its_changes_arrive_next(scenario):
    failed, changes = scenario.days["failed"], scenario.days["changes"]
    assert failed.path is None and "could not write" in failed.error
    assert not (scenario.root / "outbox" / SLUG / "ni_duty_hours_202611020900.csv").exists()
    # Compared with the first file again: the same changes, so the same file.
    assert changes.export.content == failed.export.content
    assert changes.rows == CHANGES


def test_a_run_with_no_change_writes_a_header_only_file(scenario):
    quiet = scenario.days["no_change"]
    assert quiet.path.name == "ni_duty_hours_202611021100.csv"
    assert quiet.rows == [] and quiet.export.rows == 0
    assert quiet.path.read_bytes() == (",".join(HEADER) + "\r\n").encode()


def test_a_row_ageing_out_of_the_back_window_is_not_deleted(scenario):
    # 2026-11-03: the window starts on 11/02, so slot 5002 (11/01) leaves it. Nothing changed in
    # Lightning Bolt: no DELETE, a header-only file, and the kept state forgets 5002.
    next_day = scenario.days["next_day"]
    assert next_day.path.name == "ni_duty_hours_202611030800.csv"
    assert next_day.rows == []
    meta = next_day.export.extra_metadata
    assert (meta["ADD"], meta["UPDATE"], meta["DELETE"], meta["duty_hours_in_window"]) == (0, 0, 0, 4)
    with duckdb.connect(str(scenario.warehouse), read_only=True) as conn:
        ledger = conn.execute(
            "SELECT run_id, status, rows FROM delivery.ledger WHERE integration = ? ORDER BY delivered_at", [SLUG]
        ).fetchall()
        kept = conn.execute("SELECT rows FROM delivery.delivered_state WHERE integration = ?", [SLUG]).fetchall()
    assert ledger == [("first", "delivered", 6), ("failed", "failed", 8), ("changes", "delivered", 8),
                      ("no_change", "delivered", 0), ("next_day", "delivered", 0)]
    assert kept == [(4,)]


def test_the_preview_masks_the_notes(scenario):
    first = scenario.days["first"]
    assert set(COLUMNS) >= PERSONAL_COLUMNS == {"NOTES"}
    text = preview(*csv_preview(first.export.content), personal=first.export.personal_columns).value
    assert "| ADD | 5002 | U11 | In-House Call | OB Anesthesia Resident Call | 2026-11-01 17:00 |" in text
    assert "pager 4411" not in text and "24h rule" not in text


def test_the_window_has_no_forward_edge_to_set(tmp_path):
    write_config(tmp_path, SLUG, "window: {days_back: 3, days_forward: 30}\n", MAPPING)
    with pytest.raises(ConfigError) as refused:
        INTEGRATION.load(tmp_path)
    [(key, reason)] = refused.value.errors
    assert key == "window" and "no forward edge" in reason and "days_forward 30" in reason


def test_one_mapping_row_per_assignment(tmp_path):
    write_config(tmp_path, SLUG, "enabled: true\n", MAPPING + "101,Night Float,,,Mercy North - L&D\n")
    config = INTEGRATION.load(tmp_path)
    assert [(p.line, p.field) for p in config.mapping.problems] == [(5, "assignment_id")]
    assert sorted(r.assignment_id for r in config.mapping.rows) == [101, 102, 201]
    assert config.settings.window.days_back == 14 and config.settings.personnel_id_field == "unique_id"
