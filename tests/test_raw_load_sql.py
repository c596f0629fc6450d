"""The directory load in SQL (raw_load_sql.py) against the record-by-record load: the same rows,
and a file with a bad record still named by line and field (it goes the Python way)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from lb_pipelines.lightning_bolt.source.contract import ENTITIES, Window
from lb_pipelines.lightning_bolt.source.directory import DirectorySource
from lb_pipelines.lightning_bolt.source.records import SourceRecordError
from lb_pipelines.warehouse import raw_load_sql
from lb_pipelines.warehouse.raw_load import load_entity

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


class RecordByRecord:
    """The directory's records through the Python path (any source that is not a directory)."""

    def __init__(self, folder: Path):
        self.inner = DirectorySource(folder)
        self.description = self.inner.description

    def read(self, *args, **kwargs):
        return self.inner.read(*args, **kwargs)


def rows(conn, entity):
    return conn.execute(f"SELECT * EXCLUDE (_loaded_at) FROM raw.{entity} ORDER BY ALL").fetchall()


@pytest.mark.parametrize("window", [None, Window(dt.date(2026, 11, 20), dt.date(2026, 11, 24))])
def test_the_sql_load_holds_exactly_what_the_record_by_record_load_holds(tmp_path, window):
    with duckdb.connect(str(tmp_path / "sql.duckdb")) as fast, duckdb.connect(str(tmp_path / "py.duckdb")) as slow:
        for entity in ENTITIES:
            a = load_entity(fast, DirectorySource(SAMPLE), entity, window=window)
            b = load_entity(slow, RecordByRecord(SAMPLE), entity, window=window)
            assert (a.rows, a.table_rows) == (b.rows, b.table_rows), entity
            assert rows(fast, entity) == rows(slow, entity), entity
        assert fast.execute("SELECT count(*) FROM raw.slots").fetchall()[0][0] > 400  # not an empty comparison


def test_the_sample_files_take_the_sql_way(tmp_path):
    """Every entity without a free-form JSON field is read and checked by DuckDB (not a fallback)."""
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        for entity, spec in ENTITIES.items():
            if raw_load_sql.sql_loadable(spec):
                counted = sum(1 for line in (SAMPLE / spec.file_name).read_text().splitlines() if line.strip())
                assert raw_load_sql.read_checked(conn, spec, SAMPLE / spec.file_name) == counted, entity
    assert not raw_load_sql.sql_loadable(ENTITIES["view_settings"])  # its JSON stays Python's


def slot(**changes):
    record = {"id": 1, "schedule_id": 10, "assignment_id": 100, "personnel_id": 1000, "date": "2026-11-02",
              "start_time": "07:00", "end_time": "17:00", "notes": None, "updated_at": "2026-10-01T08:00:00-05:00"}
    return {**record, **changes}


@pytest.mark.parametrize("bad, field, reason", [
    ({"date": "2026-02-30"}, "date", "expected a date YYYY-MM-DD"),
    ({"start_time": "7:00"}, "start_time", "expected a time HH:MM"),
    ({"assignment_id": 1.0}, "assignment_id", "expected an integer"),
    ({"assignment_id": True}, "assignment_id", "expected an integer"),
    ({"updated_at": "2026-10-01T08:00:00"}, "updated_at", "expected an ISO 8601 timestamp with offset"),
    ({"schedule_id": None}, "schedule_id", "required field is null"),
])
def test_a_bad_record_is_named_by_line_and_field_as_before(tmp_path, bad, field, reason):
    spec = ENTITIES["slots"]
    fields = {f.name for f in spec.fields}
    good = {k: v for k, v in slot().items() if k in fields} | {f.name: None for f in spec.fields if f.name not in slot()}
    lines = [good, dict(good, id=2), dict(good, id=3, **bad)]
    (tmp_path / "slots.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        assert raw_load_sql.read_checked(conn, spec, tmp_path / "slots.jsonl") is None  # refused in SQL
        with pytest.raises(SourceRecordError) as refused:
            load_entity(conn, DirectorySource(tmp_path), "slots")
    assert refused.value.where.endswith("slots.jsonl line 3") and refused.value.field == field
    assert refused.value.reason.startswith(reason)


def test_a_byte_order_mark_goes_the_python_way(tmp_path):
    spec = ENTITIES["departments"]
    (tmp_path / "departments.jsonl").write_bytes(b"\xef\xbb\xbf" + (SAMPLE / "departments.jsonl").read_bytes())
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        assert raw_load_sql.read_checked(conn, spec, tmp_path / "departments.jsonl") is None
        with pytest.raises(SourceRecordError, match="line 1"):
            load_entity(conn, DirectorySource(tmp_path), "departments")


def test_a_line_that_is_not_an_object_goes_the_python_way(tmp_path):
    spec = ENTITIES["departments"]
    first = (SAMPLE / "departments.jsonl").read_text().splitlines()[0]
    (tmp_path / "departments.jsonl").write_text(first + "\n[1, 2]\n")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        assert raw_load_sql.read_checked(conn, spec, tmp_path / "departments.jsonl") is None
        with pytest.raises(SourceRecordError, match="line 2: expected a JSON object"):
            load_entity(conn, DirectorySource(tmp_path), "departments")
