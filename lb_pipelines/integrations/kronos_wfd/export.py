"""Kronos Workforce Dimensions' file: layout, the rows of one pay period, and keys for deltas.

The first file of a pay period holds every row (as ADD); later files hold only the changes
against the last file delivered for that period. A shift's key is its slot and its person, so
a shift handed to someone else is a DELETE for the first person and an ADD for the second.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Mapping

from lb_pipelines.automation.pay_periods import PayPeriod
from lb_pipelines.delivery.ledger import Problem

INTEGRATION = "kronos_wfd"
VALUE_COLUMNS = (
    "SLOT_ID", "PERSON_NUMBER", "SHIFT_DATE", "START", "END", "SEGMENT_TYPE", "WORK_RULE_TRANSFER",
    "PAY_CODE_EDIT", "OPEN_SHIFT", "BUSINESS_STRUCTURE", "COST_CENTER_TRANSFER", "LABOR_CATEGORIES", "COMMENT",
)
COLUMNS = ("ACTION", *VALUE_COLUMNS)

ROWS_IN_PERIOD_SQL = """
SELECT * FROM exports.export_kronos_wfd
WHERE slot_date BETWEEN $start AND $end
ORDER BY slot_id
"""


def file_name(period: PayPeriod, now: dt.datetime) -> str:
    return f"kronos_wfd_{period.start:%Y%m%d}_{now:%Y%m%d%H%M}.csv"


def shift_key(slot_id: int, person_number: str) -> str:
    return f"{slot_id:012d}|{person_number}"  # zero-padded: keys sort as slot ids do


def period_rows(
    export_rows: Iterable[Mapping[str, Any]], personnel_id_field: str, labor_category_delimiter: str
) -> tuple[list[tuple[str, dict[str, Any]]], list[Problem], dict[str, int]]:
    """(keyed rows of the full set, problems, counts of what is not a row) for one pay period."""
    keyed, problems = [], []
    counts = {"coverage_gaps": 0, "placeholders": 0}
    for r in export_rows:
        record = f"slot {r['slot_id']} ({r['SHIFT_DATE']})"
        outcome = r["outcome"]
        if outcome == "coverage_gap":
            counts["coverage_gaps"] += 1
            continue
        if outcome == "placeholder":
            counts["placeholders"] += 1
            continue
        if outcome == "problem":
            problems.append(Problem("person_not_exportable", record, "personnel_id", r["problem_reason"]))
            continue
        person_number = "" if outcome == "open_shift" else (r[personnel_id_field] or "").strip()
        if outcome == "deliver" and not person_number:
            reason = f"{r['display_name']} has no {personnel_id_field} (the Kronos person number)"
            problems.append(Problem("person_without_vendor_id", record, personnel_id_field, reason))
            continue
        values = {c: r.get(c) for c in VALUE_COLUMNS}
        values["SLOT_ID"] = r["slot_id"]  # one column: DuckDB names are case-insensitive
        values["PERSON_NUMBER"] = person_number
        values["LABOR_CATEGORIES"] = labor_category_delimiter.join(r["labor_categories"] or [])
        keyed.append((shift_key(r["slot_id"], person_number), values))
    return keyed, problems, counts
