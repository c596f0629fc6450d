"""Kronos Workforce Central's file: its layout and the shifts of one pay period, in full.

Kronos WFC takes the hours of one pay period. Every file holds the whole period as it stands
(no deltas): the receiving import replaces the period's scheduled hours with it. The file is
named after the period and the day it was made, so a second run on the same day replaces the
first file of that day (through the ledger's atomic rename); a run on a later day gives a new
file. The rules run where the data is (DuckDB): the cost center in the dbt model beside this
module, the pay period and the inclusion matrix below, as parameters.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from lb_pipelines.automation.pay_periods import PayPeriod
from lb_pipelines.integrations.exporting import ExportFile, csv_file, problems_from, text_cells
from lb_pipelines.integrations.kronos_wfc.settings import KronosWfcSettings
from lb_pipelines.warehouse.sql import identifier

SLUG = "kronos_wfc"
COLUMNS = ("PERSON_NUMBER", "DATE", "START", "END", "HOURS", "PAY_CODE", "DEPARTMENT_ID", "COST_CENTER")
# None is masked in the asset's preview: PERSON_NUMBER is an id, the rest times, codes and facilities.
PERSONAL_COLUMNS: frozenset[str] = frozenset()

# The export model's rows of one pay period (a shift belongs to the period of its local start
# date), each with what becomes of it (file_outcome) and the file's columns as text, the person
# number from the field the settings name (`{id}`, a validated column name):
#   deliver | coverage_gap (unfilled: not a row, counted) | placeholder (not a row, counted)
#   | not_included (its (personnel_type, assignment_type) pair is not in the settings' matrix:
#     not a row, counted) | problem (an unknown person, or an included one who is inactive)
#   | missing_department_id | person_without_vendor_id (skipped, problems), in this order.
# $included is the matrix as [personnel_type, assignment_type] pairs, lower-case.
PERIOD_ROWS_SQL = """
SELECT slot_id, start_at, lb_department_id, personnel_id, problem_reason,
    CASE
        WHEN outcome IN ('coverage_gap', 'placeholder') THEN outcome
        WHEN outcome = 'problem' AND personnel_type IS NULL THEN 'problem'  -- unknown: no pair to test
        WHEN NOT list_contains($included, [lower(trim(personnel_type)), lower(trim(assignment_type))])
            THEN 'not_included'
        WHEN outcome = 'problem' THEN 'problem'  -- an inactive person whose shift would go out
        WHEN "DEPARTMENT_ID" IS NULL THEN 'missing_department_id'
        WHEN nullif(trim({id}), '') IS NULL THEN 'person_without_vendor_id'
        ELSE 'deliver'
    END AS file_outcome,
    nullif(trim({id}), '') AS "PERSON_NUMBER",
    {cells}
FROM exports.export_kronos_wfc
WHERE slot_date BETWEEN $start AND $end
"""
# Each query below reads the period itself: one pass each is cheaper than keeping the rows.
# Order: person, start instant, slot: the same shifts always give the same bytes.
FILE_SQL = f"""
SELECT {", ".join(identifier(c) for c in COLUMNS)} FROM ({{period}})
WHERE file_outcome = 'deliver'
ORDER BY "PERSON_NUMBER", start_at, slot_id
"""

PROBLEMS_SQL = """
SELECT
    CASE file_outcome WHEN 'problem' THEN 'person_not_exportable' ELSE file_outcome END AS kind,
    'slot ' || slot_id || ' (' || "DATE" || ')' AS record,
    CASE file_outcome WHEN 'problem' THEN 'personnel_id'
         WHEN 'missing_department_id' THEN 'kronos_department_id' ELSE $id_field END AS field,
    CASE file_outcome WHEN 'problem' THEN problem_reason
         WHEN 'missing_department_id' THEN 'department ' || lb_department_id
             || ' has no kronos_department_id (the Kronos DEPARTMENT_ID)'
         ELSE 'person ' || personnel_id || ' has no ' || $id_field || ' (the Kronos person number)'
    END AS reason
FROM ({period})
WHERE file_outcome IN ('problem', 'missing_department_id', 'person_without_vendor_id')
ORDER BY start_at, slot_id
"""

COUNTS_SQL = "SELECT file_outcome, count(*) FROM ({period}) GROUP BY file_outcome"


def file_name(period: PayPeriod, now: dt.datetime) -> str:
    """The period's first day and the day of the run: one file a period and day."""
    return f"kronos_wfc_{period.start:%Y%m%d}_{now:%Y%m%d}.csv"


def build_period_file(
    conn: duckdb.DuckDBPyConnection, settings: KronosWfcSettings, period: PayPeriod, now: dt.datetime
) -> ExportFile:
    """The full file of one pay period, its problems and counts. Reads only; the caller delivers."""
    id_field = settings.personnel_id_field  # one of a fixed list of column names (validated)
    cells = text_cells([c for c in COLUMNS if c != "PERSON_NUMBER"])
    period_rows = PERIOD_ROWS_SQL.format(id=id_field, cells=cells)
    params = {"start": period.start, "end": period.end, "included": settings.included_pairs}
    content, rows = csv_file(conn, FILE_SQL.format(period=period_rows), params)
    problems = problems_from(conn, PROBLEMS_SQL.format(period=period_rows), params | {"id_field": id_field})
    counts = dict(conn.execute(COUNTS_SQL.format(period=period_rows), params).fetchall())
    return ExportFile(
        integration=SLUG,
        scope=period.key,
        file_name=file_name(period, now),
        content=content,
        rows=rows,
        personal_columns=PERSONAL_COLUMNS,
        problems=problems,
        coverage_gaps=counts.get("coverage_gap", 0),
        extra_metadata={
            "pay_period": f"{period.start}..{period.end}",
            "inclusion_matrix": "; ".join(
                f"{entry.personnel_type}: {', '.join(entry.assignment_types)}" for entry in settings.include
            ),
            "left_out_by_inclusion_matrix": counts.get("not_included", 0),
            "placeholders_left_out": counts.get("placeholder", 0),
        },
    )
