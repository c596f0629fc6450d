"""Epic OpTime's file: its layout and the rules that turn export rows into file rows.

OpTime shows the OR snapboard which providers are scheduled. Epic replaces the whole window
with each file, so every file is full. The vendor layout lives here and in
`export_epic_optime.sql` beside it, nowhere else. The rules run where the data is (DuckDB);
this module names them and reads the results.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from lb_pipelines.integrations.exporting import (
    IN_WINDOW,
    ExportFile,
    csv_file,
    person_problems_sql,
    problems_from,
    text_cells,
)
from lb_pipelines.warehouse.sql import identifier

SLUG = "epic_optime"
COLUMNS = (
    "IMPORT_GROUP", "RESOURCE_TYPE_ID", "SER_ID", "PROVIDER_NAME", "ROLE", "ASSIGNMENT", "START", "END",
)
# Masked in the asset's preview (run storage names people by id). SER_ID is an id; ROLE and
# ASSIGNMENT come from the mapping and Lightning Bolt's assignment names, not free text.
PERSONAL_COLUMNS = frozenset({"PROVIDER_NAME"})

# The export model's rows in the window ("today" in each slot's own department time zone,
# whatever zone the file's times are written in), each with what becomes of it (file_outcome)
# and the file's columns as text, SER_ID from the field the settings name (`{id}`, a validated
# column name):
#   deliver | coverage_gap (unfilled: not a row, counted) | placeholder (not a row, counted)
#   | problem (a person who cannot be exported)
#   | person_without_vendor_id (skipped, a problem; the rest of the file still goes out).
WINDOW_ROWS_SQL = """
SELECT slot_id, personnel_id, start_at, problem_reason, mapping_time_zone,
    CASE WHEN outcome = 'deliver' AND nullif(trim({id}), '') IS NULL
         THEN 'person_without_vendor_id' ELSE outcome END AS file_outcome,
    {cells},
    nullif(trim({id}), '') AS "SER_ID"
FROM exports.export_epic_optime
WHERE {in_window}
"""
# Each query below reads the window itself: one pass each is cheaper than keeping the rows.
# Order: import group, start instant (so rows of one group in several zones stay in real
# time order), resource type, SER id, slot id: the same rows always give the same bytes.
FILE_SQL = f"""
SELECT {", ".join(identifier(c) for c in COLUMNS)} FROM ({{window}})
WHERE file_outcome = 'deliver'
ORDER BY "IMPORT_GROUP", start_at, "RESOURCE_TYPE_ID", "SER_ID", slot_id
"""

# A problem row names its slot; the person is named by Lightning Bolt id, never by name.
PROBLEM_RECORD = """'slot ' || slot_id || ' (' || "IMPORT_GROUP" || ' ' || "START" || ')'"""
PROBLEM_ORDER = '"IMPORT_GROUP", start_at, slot_id'
VENDOR_ID = "the Epic SER id"

COUNTS_SQL = """
SELECT
    count(*) FILTER (WHERE file_outcome = 'coverage_gap'),
    count(*) FILTER (WHERE file_outcome = 'placeholder'),
    count(*) FILTER (WHERE file_outcome = 'deliver' AND mapping_time_zone IS NOT NULL)
FROM ({window})
"""


def file_name(now: dt.datetime) -> str:
    """`now` as the clock gives it (LB_NOW's own offset when pinned)."""
    return f"epic_optime_{now:%Y%m%d%H%M}.csv"


def build_file(conn: duckdb.DuckDBPyConnection, settings, now: dt.datetime) -> ExportFile:
    """The full file for the window, its problems and counts. Reads only; the caller delivers."""
    id_field = settings.personnel_id_field  # one of a fixed list of column names (validated)
    window = settings.window
    rows = WINDOW_ROWS_SQL.format(
        id=id_field, cells=text_cells([c for c in COLUMNS if c != "SER_ID"]), in_window=IN_WINDOW
    )
    params = {"now": now, "days_back": window.days_back, "days_forward": window.days_forward}
    content, row_count = csv_file(conn, FILE_SQL.format(window=rows), params)
    problems = problems_from(
        conn, person_problems_sql(rows, PROBLEM_RECORD, VENDOR_ID, PROBLEM_ORDER), params | {"id_field": id_field}
    )
    gaps, placeholders, translated = conn.execute(COUNTS_SQL.format(window=rows), params).fetchall()[0]
    return ExportFile(
        integration=SLUG,
        scope="full",
        file_name=file_name(now),
        content=content,
        rows=row_count,
        personal_columns=PERSONAL_COLUMNS,
        problems=problems,
        coverage_gaps=gaps,
        extra_metadata={
            "window": f"{window.days_back} days back, {window.days_forward} forward",
            "placeholders_left_out": placeholders,
            "rows_in_mapping_time_zone": translated,
        },
    )
