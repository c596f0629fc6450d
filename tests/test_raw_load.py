"""Loading the raw schema: counts, window replacement, the change log, idempotence, bad input.

Every expected value comes from the hand-made system in tiny_system.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from lb_pipelines.lightning_bolt.source.contract import ENTITIES, Window
from lb_pipelines.lightning_bolt.source.directory import DirectorySource
from lb_pipelines.lightning_bolt.source.records import SourceRecordError
from lb_pipelines.warehouse.raw_load import load_entity
from tiny_system import fresh, write_system

HAND_COUNTS = {
    "departments": 2,
    "personnel": 4,
    "assignments": 3,
    "schedules": 2,
    "slots": 6,
    "requests": 2,
    "tallies": 2,
    "change_log": 3,
    "view_settings": 1,
}
NOV_2 = Window(dt.date(2026, 11, 2), dt.date(2026, 11, 2))


def load_all(conn, folder: Path, window: Window | None = None) -> dict:
    source = DirectorySource(folder)
    return {e: load_entity(conn, source, e, window=window) for e in ENTITIES}


def snapshot(conn) -> dict:
    return {
        e: conn.execute(f"SELECT * FROM raw.{e} ORDER BY ALL").fetchall() for e in ENTITIES
    } | {"problems": conn.execute("SELECT * FROM raw.load_problems ORDER BY ALL").fetchall()}


def test_every_entity_loads_with_hand_counted_rows(tiny_source):
    conn = duckdb.connect()
    results = load_all(conn, tiny_source)
    assert {e: r.rows for e, r in results.items()} == HAND_COUNTS
    assert {e: r.table_rows for e, r in results.items()} == HAND_COUNTS
    assert all(not r.problems for r in results.values())
    # typed columns, ready for staging
    row = conn.execute("SELECT date, updated_at, personnel_id FROM raw.slots WHERE id = 5004").fetchall()[0]
    assert row[0] == dt.date(2026, 11, 3)
    assert row[1] == dt.datetime(2026, 10, 15, 14, 0, tzinfo=dt.timezone.utc)
    assert row[2] is None  # unfilled stays null
    assert conn.execute("SELECT department_ids FROM raw.personnel WHERE id = 11").fetchall()[0][0] == [1]
    settings = conn.execute("SELECT settings ->> '$.columns[1]' FROM raw.view_settings").fetchall()[0][0]
    assert settings == "provider"


def test_two_runs_give_identical_raw_tables(tiny_source):
    conn = duckdb.connect()
    load_all(conn, tiny_source)
    first = snapshot(conn)
    second_results = load_all(conn, tiny_source)
    assert snapshot(conn) == first
    assert second_results["change_log"].rows == 0  # nothing new after id 3


def test_window_load_replaces_exactly_the_window(tiny_source):
    conn = duckdb.connect()
    load_all(conn, tiny_source)
    system = fresh()
    slots = {s["id"]: s for s in system["slots"]}
    slots[5002]["personnel_id"] = 11  # changed inside the window
    del slots[5003]  # deleted inside the window
    slots[5001]["notes"] = "changed outside the window"  # must not be picked up
    slots[5007] = dict(slots[5002], id=5007, assignment_id=102, start_time="07:00", end_time="15:00")
    system["slots"] = list(slots.values())
    write_system(tiny_source, system)

    result = load_entity(conn, DirectorySource(tiny_source), "slots", window=NOV_2)

    assert result.rows == 2  # 5002 and 5007 are dated 2026-11-02
    rows = dict(conn.execute("SELECT id, personnel_id FROM raw.slots").fetchall())
    assert sorted(rows) == [5001, 5002, 5004, 5005, 5006, 5007]
    assert rows[5002] == 11
    notes_5001 = conn.execute("SELECT notes FROM raw.slots WHERE id = 5001").fetchall()[0][0]
    assert notes_5001 is None


def test_range_entities_replace_what_overlaps_the_window(tiny_source):
    conn = duckdb.connect()
    load_all(conn, tiny_source)
    system = fresh()
    system["requests"] = [r for r in system["requests"] if r["id"] != 7001]  # 11-10..11-14 withdrawn
    write_system(tiny_source, system)
    # A window that misses 11-10..11-14 keeps the old request; one that overlaps it removes it.
    load_entity(conn, DirectorySource(tiny_source), "requests", window=NOV_2)
    assert conn.execute("SELECT count(*) FROM raw.requests WHERE id = 7001").fetchall()[0][0] == 1
    load_entity(conn, DirectorySource(tiny_source), "requests", window=Window(dt.date(2026, 11, 14), dt.date(2026, 11, 20)))
    assert conn.execute("SELECT id FROM raw.requests ORDER BY id").fetchall() == [(7002,)]


def test_change_log_loads_only_new_entries(tiny_source):
    conn = duckdb.connect()
    load_all(conn, tiny_source)
    system = fresh()
    system["change_log"].append(
        {"id": 4, "changed_at": "2026-11-02T08:00:00-06:00", "user": "scheduler.kim", "action": "update",
         "entity": "slot", "entity_id": 5004, "schedule_id": 1001, "date": "2026-11-03",
         "field": "personnel_id", "old_value": None, "new_value": "11"}
    )
    write_system(tiny_source, system)
    result = load_entity(conn, DirectorySource(tiny_source), "change_log")
    assert (result.since_id, result.rows, result.table_rows) == (3, 1, 4)


def _write_slot_lines(folder: Path, lines: list[str]) -> None:
    (folder / "slots.jsonl").write_text("\n".join(lines) + "\n")


def test_malformed_json_line_names_file_and_line_and_keeps_previous_rows(tiny_source):
    conn = duckdb.connect()
    load_all(conn, tiny_source)
    lines = (tiny_source / "slots.jsonl").read_text().splitlines()
    lines[2] = lines[2][:40]  # line 3 cut short
    _write_slot_lines(tiny_source, lines)
    with pytest.raises(SourceRecordError) as error:
        load_entity(conn, DirectorySource(tiny_source), "slots")
    assert "slots.jsonl line 3" in str(error.value)
    assert "malformed JSON" in str(error.value)
    assert conn.execute("SELECT count(*) FROM raw.slots").fetchall()[0][0] == 6  # rolled back


@pytest.mark.parametrize(
    "entity, record_index, line, field, change, reason",
    [
        ("slots", 3, 4, "assignment_id", "drop", "required field is missing"),
        ("personnel", 1, 2, "last_name", None, "required field is null"),
        ("slots", 0, 1, "date", "11/01/2026", "expected a date YYYY-MM-DD"),
        ("slots", 4, 5, "personnel_id", "13", "expected an integer"),
        ("schedules", 0, 1, "published_at", "2026-10-15T09:00:00", "with offset"),
    ],
)
def test_bad_record_names_file_line_field_and_reason(tiny_source, entity, record_index, line, field, change, reason):
    system = fresh()
    record = system[entity][record_index]
    if change == "drop":
        del record[field]
    else:
        record[field] = change
    write_system(tiny_source, system)
    with pytest.raises(SourceRecordError) as error:
        load_entity(duckdb.connect(), DirectorySource(tiny_source), entity)
    message = str(error.value)
    assert f"{entity}.jsonl line {line}" in message
    assert f"field '{field}'" in message
    assert reason in message



@pytest.mark.parametrize(
    "field, value, got",
    [
        ("cell_phone", 3125550111, "a number"),
        ("email", ["ana.reyes@example.org"], "a list"),
        ("last_name", {"family": "Reyes"}, "a JSON object"),
    ],
)
def test_bad_personal_field_says_what_is_wrong_without_the_value(tiny_source, field, value, got):
    """A step's error message is kept in run storage: it names the person's record, not their contact."""
    system = fresh()
    system["personnel"][0][field] = value  # Ana, person 11, line 1
    write_system(tiny_source, system)
    with pytest.raises(SourceRecordError) as error:
        load_entity(duckdb.connect(), DirectorySource(tiny_source), "personnel")
    message = str(error.value)
    assert message.endswith(f"personnel.jsonl line 1, field '{field}': expected a string, got {got}")
    assert "3125550111" not in message and "reyes" not in message.lower()


def test_bad_id_or_date_keeps_the_value_in_the_message(tiny_source):
    system = fresh()
    system["slots"][4]["personnel_id"] = "13"
    write_system(tiny_source, system)
    with pytest.raises(SourceRecordError) as error:
        load_entity(duckdb.connect(), DirectorySource(tiny_source), "slots")
    assert str(error.value).endswith("slots.jsonl line 5, field 'personnel_id': expected an integer, got '13'")


def test_unknown_assignment_and_department_are_loaded_and_counted(tiny_source):
    system = fresh()
    system["slots"][3]["assignment_id"] = 999  # slot 5004
    system["assignments"][2]["department_id"] = 9  # ED 24h → slots 5005 and 5006
    write_system(tiny_source, system)
    conn = duckdb.connect()
    results = load_all(conn, tiny_source)

    assert results["slots"].rows == 6  # nothing dropped
    slot_problems = {(p["record_id"], p["field"], p["value"]) for p in results["slots"].problems}
    assert slot_problems == {("5004", "assignment_id", "999"), ("5005", "department_id", "9"), ("5006", "department_id", "9")}
    assert [(p["record_id"], p["field"]) for p in results["assignments"].problems] == [("201", "department_id")]
    stored = conn.execute("SELECT count(*) FROM raw.load_problems").fetchall()[0][0]
    assert stored == 4


def test_fixing_the_reference_clears_the_problem(tiny_source):
    system = fresh()
    system["slots"][3]["assignment_id"] = 999
    write_system(tiny_source, system)
    conn = duckdb.connect()
    load_all(conn, tiny_source)
    system["assignments"].append(dict(system["assignments"][1], id=999, name="OR Late"))
    write_system(tiny_source, system)
    load_entity(conn, DirectorySource(tiny_source), "assignments")  # slots' problems are re-checked
    assert conn.execute("SELECT count(*) FROM raw.load_problems").fetchall()[0][0] == 0
