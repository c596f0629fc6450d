"""New Innovations duty hours' file: layout, the window, and the delta against the last delivery.

The first file holds every row (as ADD); later files only the changes against the last file
delivered (scope "full"). A shift's key is its slot and its person, so a shift handed to
someone else is a DELETE for the first resident and an ADD for the second. The window has a
back edge and no forward one; a row that only ages out of it is left alone at New
Innovations, not deleted: the delivered set is compared within the window only. The rules run
where the data is (DuckDB); this module only names them and reads the results.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from lb_pipelines.delivery.deltas import render_delta
from lb_pipelines.integrations.exporting import ExportFile, person_problems_sql, problems_from, text_cells
from lb_pipelines.warehouse.sql import identifier

SLUG = "new_innovations"
SCOPE = "full"  # one delivered set for the whole window
VALUE_COLUMNS = (
    "SLOT_ID", "PERSON_ID", "DUTY_HOUR_NAME", "ASSIGNMENT_NAME", "START", "END", "LOCATION", "NOTES",
)
COLUMNS = ("ACTION", *VALUE_COLUMNS)
# Masked in the asset's preview: the slot's notes are free text ("covering for Dr. ...").
PERSONAL_COLUMNS = frozenset({"NOTES"})

KEY = ("SLOT_ID", "PERSON_ID")  # a shift handed to someone else is a DELETE and an ADD

# In the window: from today − days_back on, "today" in the slot's own department time zone.
# Applied to what is true now and, with the same words, to the rows delivered before (they
# keep slot_date and time_zone for it), so a row that ages out is neither sent nor deleted.
IN_WINDOW = "slot_date >= CAST(timezone(time_zone, $now) AS DATE) - $days_back"

# The export model's rows in the window, each with what becomes of it (file_outcome) and the
# file's value columns as text, PERSON_ID from the field the settings name (`{id}`, a validated
# column name):
#   deliver | coverage_gap, placeholder (not rows, counted) | problem (a person who cannot be
#   exported) | person_without_vendor_id (skipped, a problem; the rest of the file still goes out).
# The UTC date test first narrows the rows cheaply (see exporting.IN_WINDOW).
WINDOW_ROWS_SQL = """
SELECT slot_date, time_zone, outcome, problem_reason, personnel_id,
    CASE WHEN outcome = 'deliver' AND nullif(trim({id}), '') IS NULL THEN 'person_without_vendor_id'
         ELSE outcome END AS file_outcome,
    slot_id AS "SLOT_ID",
    nullif(trim({id}), '') AS "PERSON_ID",
    {cells}
FROM exports.export_new_innovations
WHERE slot_date >= CAST(timezone('UTC', $now) AS DATE) - ($days_back + 1)
  AND {in_window}
"""
# What is true now: the file's rows, with the columns the window's test needs.
DUTY_HOURS_SQL = f"""
(SELECT slot_date, time_zone, {", ".join(identifier(c) for c in VALUE_COLUMNS)} FROM ({{window}})
 WHERE file_outcome = 'deliver')"""


# A problem row names its slot; the person is named by Lightning Bolt id, never by name.
PROBLEM_RECORD = """'slot ' || "SLOT_ID" || ' (' || strftime(slot_date, '%Y-%m-%d') || ')'"""
PROBLEM_ORDER = '"SLOT_ID"'
VENDOR_ID = "the New Innovations person id"


def file_name(now: dt.datetime) -> str:
    return f"ni_duty_hours_{now:%Y%m%d%H%M}.csv"


def build_file(conn: duckdb.DuckDBPyConnection, settings, now: dt.datetime) -> ExportFile:
    """The file (in full the first time, then the delta), its problems, its counts and the
    snapshot to keep once it is delivered. Reads only; the caller delivers."""
    id_field = settings.personnel_id_field  # one of a fixed list of column names (validated)
    plain = [c for c in VALUE_COLUMNS if c not in ("SLOT_ID", "PERSON_ID")]
    window = WINDOW_ROWS_SQL.format(id=id_field, cells=text_cells(plain), in_window=IN_WINDOW)
    params = {"now": now, "days_back": settings.window.days_back}
    delta = render_delta(
        conn, SLUG, SCOPE, DUTY_HOURS_SQL.format(window=window), KEY, VALUE_COLUMNS, params,
        delivered_filter=IN_WINDOW,
    )
    outcomes = dict(
        conn.execute(f"SELECT file_outcome, count(*) FROM ({window}) GROUP BY file_outcome", params).fetchall()
    )
    problems = problems_from(
        conn, person_problems_sql(window, PROBLEM_RECORD, VENDOR_ID, PROBLEM_ORDER), params | {"id_field": id_field}
    )
    return ExportFile(
        integration=SLUG,
        scope=SCOPE,
        file_name=file_name(now),
        content=delta.content,
        rows=delta.rows,
        personal_columns=PERSONAL_COLUMNS,
        problems=problems,
        coverage_gaps=outcomes.get("coverage_gap", 0),
        new_state=delta.new_state,
        extra_metadata={
            "window": f"{settings.window.days_back} days back, every later published slot",
            **delta.metadata,  # full_file, ADD, UPDATE, DELETE
            "duty_hours_in_window": delta.new_state.rows,
            "placeholders_left_out": outcomes.get("placeholder", 0),
        },
    )
