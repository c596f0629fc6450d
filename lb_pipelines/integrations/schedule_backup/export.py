"""The schedule backup: who works when for the next days, for reading when Lightning Bolt is down.

Every published slot of every active assignment in the window goes out, filled or not (no
mapping), as one delivery of two files with the same rows in the same order: a CSV (DuckDB
writes it) and a workbook with one sheet per department (`workbook.py`). The layout lives here
and in `export_schedule_backup.sql` beside it, nowhere else.

A slot whose person Lightning Bolt does not know, or whose person is inactive, still goes out
(the backup must show every slot, and the nurse can still try the name and numbers) and is also
reported as a problem, so that an administrator fixes the schedule before it is needed.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any, Iterator

import duckdb

from lb_pipelines.delivery.ledger import OutgoingFile, Problem
from lb_pipelines.integrations.exporting import IN_WINDOW, ExportFile, csv_file, problems_from, text_cells
from lb_pipelines.integrations.schedule_backup.workbook import Sheet, unique_sheet_name, write_workbook
from lb_pipelines.warehouse.sql import identifier

SLUG = "schedule_backup"
COLUMNS = ("DEPARTMENT", "DATE", "ASSIGNMENT", "START", "END", "PROVIDER", "CELL", "PAGER", "EMAIL", "NOTES")
# Masked in the asset's preview (run storage names people by id): names, contacts, and the
# slot's notes (free text that may name someone or give a number to call).
PERSONAL_COLUMNS = frozenset({"PROVIDER", "CELL", "PAGER", "EMAIL", "NOTES"})
# The workbook's typed cells: DATE a date, START and END date-times, formatted as in the CSV.
CELL_FORMATS = {1: "yyyy-mm-dd", 3: "yyyy-mm-dd hh:mm", 4: "yyyy-mm-dd hh:mm"}
_FIXED_WIDTHS = {"DATE": 12, "START": 17, "END": 17}
_MAX_WIDTH = 50  # longer text (notes) is cut off on screen, not in the cell

# The export model's rows in the window: today - days_back .. today + days_forward, "today" in
# each slot's own department zone, and only the settings' departments when it names any.
WINDOW_ROWS_SQL = f"""
SELECT * FROM exports.export_schedule_backup
WHERE {IN_WINDOW}
  AND (len($departments) = 0 OR list_contains($departments, department_id))
"""
# Both files, in this order: department, date, start, assignment, provider (slot: a tie-break,
# so the same rows always give the same order).
ORDER_BY = 'ORDER BY "DEPARTMENT", department_id, "DATE", local_start_at, "ASSIGNMENT", "PROVIDER", slot_id'

CSV_SQL = f"SELECT {text_cells(COLUMNS)} FROM ({WINDOW_ROWS_SQL}) {ORDER_BY}"


_NOT_IN_XML = r"'[\x00-\x08\x0B\x0C\x0E-\x1F]'"  # control characters (RE2 escapes, as SQL text)


def _workbook_text(column: str) -> str:
    """A text cell as a workbook can hold it: no control characters (XML cannot carry them),
    at most 32,767 characters (Excel's limit), empty as no value."""
    cleaned = f"left(regexp_replace({identifier(column)}, {_NOT_IN_XML}, '', 'g'), 32767)"
    return f"nullif({cleaned}, '') AS {identifier(column)}"


_TYPED = {"DATE": '"DATE"', "START": "local_start_at", "END": "local_end_at"}
WORKBOOK_SQL = (
    "SELECT department_id, "
    + ", ".join(_TYPED.get(c) or _workbook_text(c) for c in COLUMNS)
    + f" FROM ({WINDOW_ROWS_SQL}) {ORDER_BY}"
)
_MEASURED = [c for c in COLUMNS if c not in _FIXED_WIDTHS]
WIDTHS_SQL = (
    "SELECT department_id, "
    + ", ".join(f"coalesce(max(length({identifier(c)})), 0)" for c in _MEASURED)
    + f" FROM ({WINDOW_ROWS_SQL}) GROUP BY department_id"
)

PROBLEMS_SQL = f"""
SELECT person_status AS kind,
    'slot ' || slot_id || ' (' || "ASSIGNMENT" || ' ' || "START" || ')' AS record,
    'personnel_id' AS field,
    person_problem || CASE person_status
        WHEN 'unknown_person' THEN '; the slot is in the backup as UNKNOWN PERSON ' || personnel_id
        ELSE '; the slot is in the backup, the name marked (INACTIVE)' END AS reason
FROM ({WINDOW_ROWS_SQL})
WHERE person_status IN ('unknown_person', 'inactive_person')
{ORDER_BY}
"""
# A department id in the settings that Lightning Bolt does not have: nothing backed up for it.
UNKNOWN_DEPARTMENTS_SQL = """
SELECT 'unknown_department_in_settings', 'settings.yaml', 'departments',
    'department ' || id || ' is not in Lightning Bolt''s departments; the backup has nothing for it'
FROM (SELECT unnest($departments) AS id)
WHERE id NOT IN (SELECT id FROM raw.departments)
ORDER BY id
"""

COUNTS_SQL = f"""
SELECT count(*) FILTER (WHERE person_status = 'unfilled'),
    count(*) FILTER (WHERE person_status = 'placeholder'),
    count(DISTINCT department_id)
FROM ({WINDOW_ROWS_SQL})
"""


def file_names(now: dt.datetime) -> tuple[str, str]:
    """(csv, xlsx), `now` as the clock gives it (LB_NOW's own offset when pinned)."""
    stem = f"schedule_backup_{now:%Y%m%d%H%M}"
    return f"{stem}.csv", f"{stem}.xlsx"


def _widths(longest: tuple[int, ...]) -> list[float]:
    measured = dict(zip(_MEASURED, longest))
    return [
        _FIXED_WIDTHS.get(c) or min(max(len(c), measured[c]) + 2, _MAX_WIDTH)
        for c in COLUMNS
    ]


def _fetched(cursor: duckdb.DuckDBPyConnection, batch: int = 10_000) -> Iterator[tuple]:
    while rows := cursor.fetchmany(batch):
        yield from rows


def _sheets(conn: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> Iterator[Sheet]:
    """One sheet per department with rows, in file order, streamed from DuckDB."""
    widths = {row[0]: _widths(row[1:]) for row in conn.execute(WIDTHS_SQL, params).fetchall()}
    taken: set[str] = set()
    rows = _fetched(conn.execute(WORKBOOK_SQL, params))
    for department_id, group in itertools.groupby(rows, key=lambda row: row[0]):
        first = next(group)
        title = unique_sheet_name(first[1], taken)
        yield Sheet(title, widths[department_id], (row[1:] for row in itertools.chain([first], group)))


def build_file(conn: duckdb.DuckDBPyConnection, settings, now: dt.datetime) -> ExportFile:
    """The CSV and the workbook for the window, with the problems found. Reads only; the caller delivers."""
    window = settings.window
    params = {
        "now": now, "days_back": window.days_back, "days_forward": window.days_forward,
        "departments": list(settings.departments),
    }
    csv_name, xlsx_name = file_names(now)
    content, row_count = csv_file(conn, CSV_SQL, params)
    problems: list[Problem] = []
    if settings.departments:
        problems += problems_from(conn, UNKNOWN_DEPARTMENTS_SQL, {"departments": params["departments"]})
    problems += problems_from(conn, PROBLEMS_SQL, params)
    unfilled, placeholders, departments = conn.execute(COUNTS_SQL, params).fetchall()[0]
    # Created at `now`: the same rows at the same time give the same workbook, byte for byte.
    workbook = write_workbook(COLUMNS, _sheets(conn, params), CELL_FORMATS, created=now)
    return ExportFile(
        integration=SLUG,
        scope="full",
        file_name=csv_name,
        content=content,
        rows=row_count,
        personal_columns=PERSONAL_COLUMNS,
        problems=problems,
        coverage_gaps=unfilled,
        also=[OutgoingFile(xlsx_name, workbook, row_count)],
        extra_metadata={
            "window": f"{window.days_back} days back, {window.days_forward} forward",
            "departments": departments,  # sheets in the workbook
            "unfilled": unfilled,
            "placeholders": placeholders,
            "department_filter": ", ".join(map(str, settings.departments)) or "all",
        },
    )
