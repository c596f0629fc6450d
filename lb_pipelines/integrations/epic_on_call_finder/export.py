"""Epic On-Call Finder's file: its layout and the rules that turn export rows into file rows.

Epic replaces the whole window with each file, so every file is full. The vendor layout lives
here and in `dbt_project/models/exports/export_epic_on_call_finder.sql`, nowhere else.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Mapping

from lb_pipelines.delivery.ledger import Problem

INTEGRATION = "epic_on_call_finder"
COLUMNS = (
    "TEAM_ID", "TEAM_NAME", "ROLE", "CALL_ORDER", "START", "END",
    "PROVIDER_ID", "PROVIDER_NAME", "CONTACT", "NOTES", "TEAM_COMMENT",
)

# The window, applied where the data is, with "today" in each slot's own department time zone.
ROWS_IN_WINDOW_SQL = """
SELECT * FROM exports.export_epic_on_call_finder
WHERE slot_date BETWEEN CAST(timezone(time_zone, $now) AS DATE) - $days_back
                    AND CAST(timezone(time_zone, $now) AS DATE) + $days_forward
ORDER BY "TEAM_ID", start_at, "CALL_ORDER", "PROVIDER_NAME", slot_id, mapping_line
"""


def file_name(now: dt.datetime) -> str:
    return f"epic_ocf_{now:%Y%m%d%H%M}.csv"


def file_rows(
    export_rows: Iterable[Mapping[str, Any]], personnel_id_field: str
) -> tuple[list[tuple], list[Problem], int]:
    """(rows of the file, problems, coverage gaps) from the export model's rows.

    - unfilled slots are not rows: they are counted as coverage gaps;
    - a placeholder goes out with an empty PROVIDER_ID and its own name and contact;
    - a person without the configured vendor id (or unknown, or inactive) is a problem row,
      skipped, and the rest of the file still goes out.
    """
    rows, problems, gaps = [], [], 0
    for r in export_rows:
        record = f"slot {r['slot_id']} ({r['TEAM_ID']} {r['START']})"
        if r["outcome"] == "coverage_gap":
            gaps += 1
            continue
        if r["outcome"] == "problem":
            problems.append(Problem("person_not_exportable", record, "personnel_id", r["problem_reason"]))
            continue
        provider_id = "" if r["is_placeholder"] else (r[personnel_id_field] or "")
        if not r["is_placeholder"] and not provider_id.strip():
            reason = f"{r['PROVIDER_NAME']} has no {personnel_id_field} (the Epic provider id)"
            problems.append(Problem("person_without_vendor_id", record, personnel_id_field, reason))
            continue
        rows.append(tuple(provider_id if c == "PROVIDER_ID" else r[c] for c in COLUMNS))
    return rows, problems, gaps
