"""What AnesthesiaGo should hold: one schedule per date of the window, the providers scheduled that
day on mapped assignments.

AnesthesiaGo replaces a date's schedule with each `PUT /schedule/{date}`, so the desired state has
ONE object per date (target "schedule", key the date), whose payload is the date's whole body.
Every date of the window has one, an empty `providers` list included: a date emptied in Lightning
Bolt is emptied in AnesthesiaGo. The content hash is taken over the body in one canonical form
(`canonical`), so the body read back hashes the same when nothing changed.

The window's dates run from the earliest "today" among the mapped departments' zones, minus
days_back, to the latest, plus days_forward (one date apart at most). A date's body holds every
slot of that local date, whatever its zone: a date is never sent with one zone's providers only.

Dates are never deleted: a schedule has no start instant and the state's span is empty, so
`pushing.managed` never counts one as ours to delete. A date that leaves the window is simply no
longer sent nor read; the rules stay in SQL (the export model), this module turns rows into bodies.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from lb_pipelines.integrations.config_tables import mapping_table
from lb_pipelines.integrations.exporting import person_problems_sql, problems_from
from lb_pipelines.integrations.pushing import Desired, DesiredState, content_hash

SLUG = "anesthesiago"
TARGET = "schedule"  # one target: the requests are per date, never per person
VENDOR_ID = "the AnesthesiaGo employee id"
PROVIDER_FIELDS = ("emp_id", "assignment_id", "slot_id", "time_zone", "start_local", "end_local",
                   "start_utc", "end_utc")
Provider = tuple  # the values of PROVIDER_FIELDS, in that order

# The zones of the mapped assignments' departments: where "today" is taken.
ZONES_SQL = f"""
SELECT DISTINCT assignments.time_zone
FROM {mapping_table(SLUG)} AS mapping
INNER JOIN marts.dim_assignments AS assignments ON assignments.assignment_id = mapping.assignment_id
WHERE assignments.time_zone IS NOT NULL
"""
# The export model's rows of the window's dates, each with what becomes of it (file_outcome) and
# emp_id from the field the settings name (`{id}`, a validated column name): deliver |
# coverage_gap (unfilled: not sent, counted) | placeholder (not sent, counted) | problem (unknown
# or inactive person) | person_without_vendor_id (a problem).
WINDOW_ROWS_SQL = """
SELECT slot_id, mapping_line, assignment_id, personnel_id, time_zone, slot_date, start_at, problem_reason,
    start_local, end_local, start_utc, end_utc, nullif(trim({id}), '') AS emp_id_sent,
    CASE WHEN outcome = 'deliver' AND nullif(trim({id}), '') IS NULL
         THEN 'person_without_vendor_id' ELSE outcome END AS file_outcome
FROM exports.export_anesthesiago
WHERE slot_date BETWEEN CAST($first AS DATE) AND CAST($last AS DATE)
"""
# A problem row names its slot, assignment and date; the person by Lightning Bolt id only.
PROBLEM_RECORD = """'slot ' || slot_id || ' (assignment ' || assignment_id || ', ' || strftime(slot_date, '%Y-%m-%d') || ')'"""
PROBLEM_ORDER = "slot_date, start_at, assignment_id, slot_id"


def label_of(date: str) -> str:
    return f"date {date}"


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def provider_order(p: Provider) -> tuple[str, int, str, int]:
    """start_utc, assignment_id, emp_id (slot_id last, to be total); total over what a hand edit
    may have left in AnesthesiaGo, too."""
    emp_id, assignment_id, slot_id, _, _, _, start_utc, _ = p
    return (str(start_utc or ""), _number(assignment_id), str(emp_id or ""), _number(slot_id))


def providers_of(body: Any) -> list[Provider]:
    """A body's providers as tuples, sorted. Raises ValueError when it is not AnesthesiaGo's shape."""
    if not isinstance(body, dict) or not isinstance(body.get("providers"), list):
        raise ValueError("the body has no providers list")
    found = []
    for entry in body["providers"]:
        if not isinstance(entry, dict):
            raise ValueError("a provider is not an object")
        values = tuple(entry.get(k) for k in PROVIDER_FIELDS)
        if any(isinstance(v, (dict, list)) for v in values):
            raise ValueError("a provider's field is not a single value")
        found.append(values)
    return sorted(found, key=provider_order)


def body_of(date: str, providers: list[Provider]) -> dict[str, Any]:
    return {"date": date, "providers": [dict(zip(PROVIDER_FIELDS, p)) for p in providers]}


def canonical(body: Any) -> dict[str, Any]:
    """The body as the hash sees it: its date, its providers' known fields, sorted."""
    if not isinstance(body, dict) or not isinstance(body.get("date"), str):
        raise ValueError("the body has no date")
    return body_of(body["date"], providers_of(body))


def body_hash(body: Any) -> str:
    return content_hash(canonical(body))


def window_dates(zones: list[str], now: dt.datetime, days_back: int, days_forward: int) -> list[str]:
    """Every date from the earliest zone's today − days_back to the latest zone's today + days_forward."""
    todays = [now.astimezone(ZoneInfo(z)).date() for z in zones]
    if not todays:
        return []  # nothing mapped: nothing to send
    first, last = min(todays) - dt.timedelta(days=days_back), max(todays) + dt.timedelta(days=days_forward)
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def desired_schedules(conn: duckdb.DuckDBPyConnection, settings, now: dt.datetime) -> DesiredState:
    id_field = settings.personnel_id_field  # one of a fixed list of column names (validated)
    zones = [z for (z,) in conn.execute(ZONES_SQL).fetchall()]
    dates = window_dates(zones, now, settings.window.days_back, settings.window.days_forward)
    rows_sql = WINDOW_ROWS_SQL.format(id=id_field)
    params = {"first": dates[0] if dates else None, "last": dates[-1] if dates else None}

    by_date: dict[str, list[Provider]] = defaultdict(list)
    for date, *provider in conn.execute(
        f"""SELECT strftime(slot_date, '%Y-%m-%d'), emp_id_sent, assignment_id, slot_id, time_zone,
                   start_local, end_local, start_utc, end_utc
            FROM ({rows_sql}) WHERE file_outcome = 'deliver'""",
        params,
    ).fetchall():
        by_date[date].append(tuple(provider))

    objects: list[Desired] = []
    for date in dates:
        body = body_of(date, sorted(by_date[date], key=provider_order))
        objects.append(Desired(TARGET, date, body, body_hash(body), label_of(date)))

    problems = problems_from(
        conn, person_problems_sql(rows_sql, PROBLEM_RECORD, VENDOR_ID, PROBLEM_ORDER),
        params | {"id_field": id_field},
    )
    left_out = dict(
        conn.execute(
            f"""SELECT file_outcome, count(*) FROM ({rows_sql})
                WHERE file_outcome IN ('placeholder', 'coverage_gap') GROUP BY ALL""",
            params,
        ).fetchall()
    )
    return DesiredState(
        objects=objects,
        problems=problems,
        counts={
            "dates": len(objects),
            "dates_empty": sum(1 for d in objects if not d.payload["providers"]),
            "providers": sum(len(d.payload["providers"]) for d in objects),
            "placeholder_slots": left_out.get("placeholder", 0),
            "unfilled_slots": left_out.get("coverage_gap", 0),
        },
        # Schedules have no start and the span is empty: no date is ever ours to delete.
        span=(now, now),
        read_range=None,
        targets=frozenset({TARGET}),
    )
