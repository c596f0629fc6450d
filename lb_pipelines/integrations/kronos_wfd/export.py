"""Kronos Workforce Dimensions' file: layout, the shifts of one pay period, and its delta.

The first file of a pay period holds every row (as ADD); later files hold only the changes
against the last file delivered for that period. A shift's key is its slot and its person, so
a shift handed to someone else is a DELETE for the first person and an ADD for the second.
The rules run where the data is (DuckDB); this module only names them and reads the results.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from lb_pipelines.automation.pay_periods import PayPeriod
from lb_pipelines.delivery.deltas import render_delta
from lb_pipelines.integrations.exporting import ExportFile, person_problems_sql, problems_from, text_cells
from lb_pipelines.warehouse.sql import identifier

SLUG = "kronos_wfd"
VALUE_COLUMNS = (
    "SLOT_ID", "PERSON_NUMBER", "SHIFT_DATE", "START", "END", "SEGMENT_TYPE", "WORK_RULE_TRANSFER",
    "PAY_CODE_EDIT", "OPEN_SHIFT", "BUSINESS_STRUCTURE", "COST_CENTER_TRANSFER", "LABOR_CATEGORIES", "COMMENT",
)
COLUMNS = ("ACTION", *VALUE_COLUMNS)
# None is masked in the asset's preview: PERSON_NUMBER is an id, and COMMENT is one of the
# settings' valid_comments ("Scheduled", "Call"), not free text.
PERSONAL_COLUMNS: frozenset[str] = frozenset()

KEY = ("SLOT_ID", "PERSON_NUMBER")  # a shift handed to someone else is a DELETE and an ADD

# The export model's rows of one pay period, each with what becomes of it (file_outcome) and
# the file's value columns as text, the person number from the field the settings name (`{id}`,
# a validated column name):
#   deliver | open_shift (goes out without a person) | coverage_gap | placeholder (not rows, counted)
#   | problem (a person who cannot be exported) | person_without_vendor_id (skipped, a problem).
PERIOD_ROWS_SQL = """
SELECT outcome, problem_reason, personnel_id,
    CASE WHEN outcome = 'deliver' AND coalesce(trim({id}), '') = '' THEN 'person_without_vendor_id'
         ELSE outcome END AS file_outcome,
    slot_id AS "SLOT_ID",
    CASE WHEN outcome = 'open_shift' THEN NULL ELSE nullif(trim({id}), '') END AS "PERSON_NUMBER",
    {cells},
    nullif(array_to_string(labor_categories, $delimiter), '') AS "LABOR_CATEGORIES"
FROM exports.export_kronos_wfd
WHERE slot_date BETWEEN $start AND $end
"""
# Each query below reads the period itself: one pass each is cheaper than keeping the rows.
SHIFTS_SQL = f"""
(SELECT {", ".join(identifier(c) for c in VALUE_COLUMNS)} FROM ({{period}})
 WHERE file_outcome IN ('deliver', 'open_shift'))"""


# A problem row names its slot; the person is named by Lightning Bolt id, never by name.
PROBLEM_RECORD = """'slot ' || "SLOT_ID" || ' (' || "SHIFT_DATE" || ')'"""
PROBLEM_ORDER = '"SLOT_ID"'
VENDOR_ID = "the Kronos person number"


def file_name(period: PayPeriod, now: dt.datetime) -> str:
    return f"kronos_wfd_{period.start:%Y%m%d}_{now:%Y%m%d%H%M}.csv"


def build_period_file(conn: duckdb.DuckDBPyConnection, settings, period: PayPeriod, now: dt.datetime) -> ExportFile:
    """The file of one pay period (in full the first time, then the delta), its problems, its counts
    and the snapshot to keep once it is delivered. Reads only; the caller delivers."""
    id_field = settings.personnel_id_field  # one of a fixed list of column names (validated)
    plain = [c for c in VALUE_COLUMNS if c not in ("SLOT_ID", "PERSON_NUMBER", "LABOR_CATEGORIES")]
    period_rows = PERIOD_ROWS_SQL.format(id=id_field, cells=text_cells(plain))
    shifts = SHIFTS_SQL.format(period=period_rows)
    params = {"start": period.start, "end": period.end, "delimiter": settings.labor_category_delimiter}
    delta = render_delta(conn, SLUG, period.key, shifts, KEY, VALUE_COLUMNS, params)
    outcomes = dict(
        conn.execute(f"SELECT file_outcome, count(*) FROM ({period_rows}) GROUP BY file_outcome", params).fetchall()
    )
    problems = problems_from(
        conn, person_problems_sql(period_rows, PROBLEM_RECORD, VENDOR_ID, PROBLEM_ORDER), params | {"id_field": id_field}
    )
    return ExportFile(
        integration=SLUG,
        scope=period.key,
        file_name=file_name(period, now),
        content=delta.content,
        rows=delta.rows,
        personal_columns=PERSONAL_COLUMNS,
        problems=problems,
        coverage_gaps=outcomes.get("coverage_gap", 0),
        new_state=delta.new_state,
        extra_metadata={
            "pay_period": f"{period.start}..{period.end}",
            **delta.metadata,  # full_file, ADD, UPDATE, DELETE
            "shifts_in_period": delta.new_state.rows,
            "placeholders_left_out": outcomes.get("placeholder", 0),
        },
    )
