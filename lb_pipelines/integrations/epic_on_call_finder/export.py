"""Epic On-Call Finder's file: its layout and the rules that turn export rows into file rows.

Epic replaces the whole window with each file, so every file is full. The vendor layout lives
here and in `dbt_project/models/exports/export_epic_on_call_finder.sql`, nowhere else. The
rules run where the data is (DuckDB); this module names them and reads the results.
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

SLUG = "epic_on_call_finder"
COLUMNS = (
    "TEAM_ID", "TEAM_NAME", "ROLE", "CALL_ORDER", "START", "END",
    "PROVIDER_ID", "PROVIDER_NAME", "CONTACT", "NOTES", "TEAM_COMMENT",
)
# Masked in the asset's preview (run storage names people by id): the name, the pager or cell,
# the slot's notes ("Covering for Dr. ...") and the team comment, free text that may name someone
# or give a number to call.
PERSONAL_COLUMNS = frozenset({"PROVIDER_NAME", "CONTACT", "NOTES", "TEAM_COMMENT"})

# The export model's rows in the window ("today" in each slot's own department time zone), each
# with what becomes of it (file_outcome) and the file's columns as text, PROVIDER_ID from the
# field the settings name (`{id}`, a validated column name):
#   deliver (a placeholder goes out with an empty PROVIDER_ID and its own name and contact)
#   | coverage_gap (unfilled: not a row, counted) | problem (a person who cannot be exported)
#   | person_without_vendor_id (skipped, a problem; the rest of the file still goes out).
WINDOW_ROWS_SQL = """
SELECT slot_id, mapping_line, personnel_id, start_at, "CALL_ORDER" AS call_rank, problem_reason,
    CASE WHEN outcome = 'deliver' AND NOT is_placeholder AND nullif(trim({id}), '') IS NULL
         THEN 'person_without_vendor_id' ELSE outcome END AS file_outcome,
    {cells},
    CASE WHEN is_placeholder THEN NULL ELSE nullif(trim({id}), '') END AS "PROVIDER_ID"
FROM exports.export_epic_on_call_finder
WHERE {in_window}
"""
# Each query below reads the window itself: one pass each is cheaper than keeping the rows.
FILE_SQL = f"""
SELECT {", ".join(identifier(c) for c in COLUMNS)} FROM ({{window}})
WHERE file_outcome = 'deliver'
ORDER BY "TEAM_ID", start_at, call_rank, "PROVIDER_NAME", slot_id, mapping_line
"""


# A problem row names its slot; the person is named by Lightning Bolt id, never by name.
PROBLEM_RECORD = """'slot ' || slot_id || ' (' || "TEAM_ID" || ' ' || "START" || ')'"""
PROBLEM_ORDER = '"TEAM_ID", start_at, slot_id, mapping_line'
VENDOR_ID = "the Epic provider id"


def file_name(now: dt.datetime) -> str:
    return f"epic_ocf_{now:%Y%m%d%H%M}.csv"


def build_file(conn: duckdb.DuckDBPyConnection, settings, now: dt.datetime) -> ExportFile:
    """The full file for the window, its problems and coverage gaps. Reads only; the caller delivers."""
    id_field = settings.personnel_id_field  # one of a fixed list of column names (validated)
    window = settings.window
    rows = WINDOW_ROWS_SQL.format(
        id=id_field, cells=text_cells([c for c in COLUMNS if c != "PROVIDER_ID"]), in_window=IN_WINDOW
    )
    params = {"now": now, "days_back": window.days_back, "days_forward": window.days_forward}
    content, row_count = csv_file(conn, FILE_SQL.format(window=rows), params)
    problems = problems_from(
        conn, person_problems_sql(rows, PROBLEM_RECORD, VENDOR_ID, PROBLEM_ORDER), params | {"id_field": id_field}
    )
    gaps = conn.execute(f"SELECT count(*) FROM ({rows}) WHERE file_outcome = 'coverage_gap'", params).fetchall()[0][0]
    return ExportFile(
        integration=SLUG,
        scope="full",
        file_name=file_name(now),
        content=content,
        rows=row_count,
        personal_columns=PERSONAL_COLUMNS,
        problems=problems,
        coverage_gaps=gaps,
        extra_metadata={"window": f"{window.days_back} days back, {window.days_forward} forward"},
    )
