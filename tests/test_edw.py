"""The enterprise data warehouse zip, from the tiny system: every count and cell below is by hand."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import frictionless
import pytest

import tiny_system
from warehouse_helpers import load_system

from lb_pipelines.integrations.edw.export import EdwExport, build_edw_zip

DAY = dt.date(2026, 11, 2)
CSV_ROWS = {
    "schedules.csv": 6,  # one per slot
    "requests.csv": 2,
    "assignments.csv": 3,
    "personnel.csv": 4,
    "departments.csv": 2,
    "tallies.csv": 2,
    "change_logs.csv": 3,
    "view_settings.csv": 1,
}
# The files that copy one raw table each (schedules.csv joins two).
RAW_TABLES = {
    "requests": "requests", "assignments": "assignments", "personnel": "personnel",
    "departments": "departments", "tallies": "tallies", "change_logs": "change_log",
    "view_settings": "view_settings",
}
# How a loader reads each Table Schema type into DuckDB.
DUCKDB_TYPE = {
    "integer": "BIGINT", "string": "VARCHAR", "boolean": "BOOLEAN", "number": "DOUBLE",
    "date": "DATE", "datetime": "TIMESTAMPTZ", "object": "JSON",
}


@pytest.fixture
def warehouse(lb_env: Path) -> Path:
    return load_system(lb_env / "src", tiny_system.fresh(), lb_env / "wh.duckdb")


def build(warehouse: Path) -> EdwExport:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return build_edw_zip(conn, DAY)


@pytest.fixture
def package(warehouse: Path, lb_env: Path) -> Path:
    """The zip, extracted: the folder holding datapackage.json."""
    folder = lb_env / "edw"
    with zipfile.ZipFile(io.BytesIO(build(warehouse).content)) as archive:
        archive.extractall(folder)
    return folder


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_typed(folder: Path) -> duckdb.DuckDBPyConnection:
    """A fresh DuckDB with one table per resource, typed as the datapackage declares."""
    conn = duckdb.connect()
    for resource in json.loads((folder / "datapackage.json").read_text())["resources"]:
        columns = {}
        for field in resource["schema"]["fields"]:
            if field["type"] == "array":
                columns[field["name"]] = DUCKDB_TYPE[field["arrayItem"]["type"]] + "[]"
            else:
                columns[field["name"]] = DUCKDB_TYPE[field["type"]]
        struct = ", ".join(f"'{name}': '{type_}'" for name, type_ in columns.items())
        conn.execute(
            f"CREATE TABLE {resource['name']} AS SELECT * FROM read_csv('{folder / resource['path']}', "
            f"header = true, auto_detect = false, delim = ',', quote = '\"', columns = {{{struct}}})"
        )
    return conn


def test_zip_holds_the_nine_files_with_hand_counted_rows(warehouse: Path) -> None:
    export = build(warehouse)
    assert export.file_name == "lb_edw_20261102.zip"
    assert export.row_counts == CSV_ROWS
    assert export.sha256 == hashlib.sha256(export.content).hexdigest()
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        assert sorted(archive.namelist()) == sorted([*CSV_ROWS, "datapackage.json"])
        for name, rows in CSV_ROWS.items():
            lines = archive.read(name).decode("utf-8").splitlines()
            assert len(lines) == rows + 1, name  # the header, then one line per row (no multi-line cells here)
            assert "_loaded_at" not in lines[0]
        package = json.loads(archive.read("datapackage.json"))
    assert {r["path"]: r["rows"] for r in package["resources"]} == CSV_ROWS


def test_frictionless_accepts_the_package(package: Path) -> None:
    report = frictionless.validate(str(package / "datapackage.json"))
    assert report.valid, report.flatten(["resourceName", "rowNumber", "fieldName", "type", "note"])
    assert len(report.tasks) == 9 - 1  # one per CSV
    cli = Path(sys.executable).parent / "frictionless"
    done = subprocess.run([str(cli), "validate", "datapackage.json"], cwd=package, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_frictionless_rejects_a_tampered_file(package: Path) -> None:
    path = package / "requests.csv"
    original = path.read_bytes()
    path.write_bytes(original.replace(b"Vacation", b"Vacatiom"))  # one byte: same size, same rows
    assert path.read_bytes() != original
    report = frictionless.validate(str(package / "datapackage.json"))
    assert not report.valid
    assert [e[0] for e in report.flatten(["type"])] == ["hash-count"]


def test_package_loads_typed_with_the_warehouse_values(package: Path, warehouse: Path) -> None:
    loaded = load_typed(package)
    result = loaded.execute("SELECT * FROM schedules WHERE id = 5002")
    slot = dict(zip([d[0] for d in result.description], result.fetchall()[0]))
    assert slot["date"] == dt.date(2026, 11, 2)
    assert slot["schedule_published_at"] == dt.datetime(2026, 10, 15, 14, tzinfo=dt.timezone.utc)
    assert slot["notes"] == "Backup: pager 4411"
    assert loaded.execute("SELECT personnel_id FROM schedules WHERE id = 5004").fetchall() == [(None,)]
    assert loaded.execute("SELECT is_placeholder, department_ids FROM personnel WHERE id IN (11, 19) ORDER BY id").fetchall() == [
        (False, [1]),
        (True, [1]),
    ]
    assert loaded.execute("SELECT value FROM tallies ORDER BY personnel_id").fetchall() == [(1.0,), (48.0,)]
    (settings,) = loaded.execute("SELECT settings FROM view_settings").fetchall()[0]
    assert json.loads(settings) == {"departments": [1], "columns": ["assignment", "provider"]}

    # Beyond the hand-checked cells: every one-table file equals its raw table, value for value.
    with duckdb.connect(str(warehouse), read_only=True) as raw:
        for table, raw_table in RAW_TABLES.items():
            expected = raw.execute(f"SELECT * EXCLUDE (_loaded_at) FROM raw.{raw_table} ORDER BY ALL").fetchall()
            assert loaded.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() == expected, table


def test_the_same_content_gives_the_same_bytes(
    warehouse: Path, lb_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = build(warehouse), build(warehouse)
    assert first.content == second.content
    assert first.sha256 == second.sha256
    # The same records loaded a day later, in reverse order, into another file: rows leave in key
    # order, and _loaded_at (the only other difference) does not leave.
    reversed_system = {entity: records[::-1] for entity, records in tiny_system.fresh().items()}
    monkeypatch.setenv("LB_NOW", "2026-11-03T12:00:00-06:00")
    other = load_system(lb_env / "src2", reversed_system, lb_env / "wh2.duckdb")
    assert build(other).content == first.content
    with zipfile.ZipFile(io.BytesIO(first.content)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_schedules_carry_the_schedule_status_beside_each_slot(package: Path) -> None:
    rows = read_csv(package / "schedules.csv")
    assert list(rows[0]) == [
        "id", "schedule_id", "date", "assignment_id", "personnel_id", "start_time", "end_time", "notes",
        "updated_at", "schedule_department_id", "schedule_start_date", "schedule_end_date",
        "schedule_status", "schedule_published_at", "schedule_version",
    ]
    assert [r["id"] for r in rows] == ["5001", "5002", "5003", "5004", "5005", "5006"]
    by_id = {r["id"]: r for r in rows}
    assert by_id["5005"]["schedule_status"] == "draft"  # all statuses leave: this is the warehouse export
    assert by_id["5005"]["schedule_published_at"] == ""
    assert by_id["5005"]["schedule_department_id"] == "2"
    assert by_id["5001"]["schedule_status"] == "published"
    assert by_id["5001"]["schedule_published_at"] == "2026-10-15T14:00:00Z"
    assert by_id["5001"]["updated_at"] == "2026-10-15T14:00:00Z"
