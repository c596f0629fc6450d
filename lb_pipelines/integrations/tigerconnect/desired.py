"""What TigerConnect should hold: one CSV upload per time zone, covering every mapped job token.

TigerConnect's scheduler webhook overwrites per job token: every token named in an upload has its
rows replaced by the upload's, and a row `TOKEN,,,` empties it. So the desired state has ONE object
per time zone (target and key: the zone), whose payload is the whole CSV body for that zone: a row
per delivered slot in the window for each mapped job token of the zone, and `TOKEN,,,` for a mapped
job token with nobody scheduled (an empty set still overwrites). The content hash is taken over the
rows in one canonical form (deduplicated and sorted, as TigerConnect holds them), so what the
download gives back hashes the same when nothing changed.

TigerConnect has no delete, and the push never asks for one: its objects have no start, and the
state's span is empty, so `pushing.managed` never counts a zone's upload as ours to delete (a zone
no longer mapped keeps what it was last sent). The rules stay in SQL (the export model and the
window); this module names them and turns the rows into uploads.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Optional

import duckdb

from lb_pipelines.delivery.push_state import load_pushed
from lb_pipelines.integrations.config_tables import mapping_table
from lb_pipelines.integrations.exporting import IN_WINDOW, person_problems_sql, problems_from
from lb_pipelines.integrations.pushing import Desired, DesiredState, content_hash, csv_text

SLUG = "tigerconnect"
CSV_HEADER = ("JOB_TOKEN", "USER_ID", "START", "END")
Row = tuple[str, str, str, str]  # (job token, user id, start, end); ("tok", "", "", "") empties a token
VENDOR_ID = "the TigerConnect user id"

# The export model's rows in the window ("today" in each slot's department zone), each with what
# becomes of it (file_outcome) and USER_ID from the field the settings name (`{id}`, a validated
# column name): deliver | coverage_gap (unfilled: not a row, counted) | placeholder (not a row,
# counted) | problem (unknown or inactive person) | person_without_vendor_id (a problem).
WINDOW_ROWS_SQL = """
SELECT slot_id, mapping_line, personnel_id, time_zone, start_at, problem_reason,
    "JOB_TOKEN", "START", "END", nullif(trim({id}), '') AS user_id,
    CASE WHEN outcome = 'deliver' AND nullif(trim({id}), '') IS NULL
         THEN 'person_without_vendor_id' ELSE outcome END AS file_outcome
FROM exports.export_tigerconnect
WHERE {in_window}
"""
# Every mapped job token and the zone of its assignment's department: a token with nobody in the
# window still needs its empty-set row in that zone's upload.
TOKENS_SQL = f"""
SELECT DISTINCT mapping.job_token, assignments.time_zone
FROM {mapping_table(SLUG)} AS mapping
INNER JOIN marts.dim_assignments AS assignments ON assignments.assignment_id = mapping.assignment_id
WHERE assignments.time_zone IS NOT NULL
"""
# A problem row names its slot and job token; the person is named by Lightning Bolt id only.
PROBLEM_RECORD = """'slot ' || slot_id || ' (' || "JOB_TOKEN" || ' ' || "START" || ')'"""
PROBLEM_ORDER = 'time_zone, "JOB_TOKEN", start_at, slot_id, mapping_line'


@dataclass
class TigerConnectState(DesiredState):
    """The desired state, and what the adapter needs to read TigerConnect back fairly.

    `pushed_tokens`: per zone, the job tokens the last accepted upload covered (kept as the pushed
    state's vendor_id: TigerConnect has no object id), so a reconcile compares the target with the
    last push over the same tokens and a mapping change is not taken for drift. (A zone the mapping
    no longer names is nothing of the push's any more: `pushing.run_push` neither reads nor sends it.)
    """

    pushed_tokens: dict[str, tuple[str, ...]] = field(default_factory=dict)


def row_order(row: Row) -> tuple[str, str, str, str]:
    token, user_id, start, end = row
    return (token, start, user_id, end)  # fixed-width START sorts as text


def canonical(tokens: Iterable[str], rows: Iterable[Row]) -> list[Row]:
    """The rows of `tokens` only, once each, sorted; a token without a row gets its empty-set row.
    What the upload sends and what the hash is taken over, for the desired and the read alike."""
    wanted = set(tokens)
    held = {tuple(r) for r in rows if r[0] in wanted and any(r[1:])}
    present = {r[0] for r in held}
    return sorted([*held, *((t, "", "", "") for t in wanted - present)], key=row_order)


def rows_hash(rows: list[Row]) -> str:
    return content_hash([list(r) for r in rows])


def tokens_id(tokens: Iterable[str]) -> str:
    """The job tokens an upload covers, as kept in the pushed state's vendor_id."""
    return json.dumps(sorted(set(tokens)))


def tokens_of_id(vendor_id: Optional[str]) -> Optional[tuple[str, ...]]:
    try:
        tokens = json.loads(vendor_id) if vendor_id else None
    except ValueError:
        return None
    return tuple(tokens) if isinstance(tokens, list) and all(isinstance(t, str) for t in tokens) else None


def parse_csv(text: str) -> list[Row]:
    """The rows of a CSV body with TigerConnect's header (blank lines skipped). Raises ValueError."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = next(reader, None)
    if header is None:
        return []
    if [h.strip().upper() for h in header] != list(CSV_HEADER):
        raise ValueError(f"the header is {','.join(header)!r}, not {','.join(CSV_HEADER)}")
    rows: list[Row] = []
    for fields in reader:
        if not fields:
            continue
        if len(fields) != len(CSV_HEADER):
            raise ValueError(f"line {reader.line_num} has {len(fields)} fields, not {len(CSV_HEADER)}")
        rows.append(tuple(f.strip() for f in fields))
    return rows


def label_of(zone: str) -> str:
    return f"zone {zone}"


def desired_uploads(conn: duckdb.DuckDBPyConnection, settings, now: dt.datetime) -> TigerConnectState:
    id_field = settings.personnel_id_field  # one of a fixed list of column names (validated)
    window = settings.window
    params = {"now": now, "days_back": window.days_back, "days_forward": window.days_forward}
    rows_sql = WINDOW_ROWS_SQL.format(id=id_field, in_window=IN_WINDOW)

    tokens: dict[str, set[str]] = defaultdict(set)  # zone -> every job token mapped there
    for token, zone in conn.execute(TOKENS_SQL).fetchall():
        tokens[zone].add(token)
    rows: dict[str, list[Row]] = defaultdict(list)
    for zone, token, user_id, start, end in conn.execute(
        f"""SELECT time_zone, "JOB_TOKEN", user_id, "START", "END" FROM ({rows_sql})
            WHERE file_outcome = 'deliver'""",
        params,
    ).fetchall():
        tokens[zone].add(token)
        rows[zone].append((token, user_id, start, end))

    objects: list[Desired] = []
    wanted_rows = empty_tokens = 0
    for zone in sorted(tokens):
        body = canonical(tokens[zone], rows[zone])
        wanted_rows += sum(1 for r in body if r[1])
        empty_tokens += sum(1 for r in body if not r[1])
        objects.append(Desired(zone, zone, csv_text(CSV_HEADER, body), rows_hash(body), label_of(zone)))

    problems = problems_from(
        conn, person_problems_sql(rows_sql, PROBLEM_RECORD, VENDOR_ID, PROBLEM_ORDER),
        params | {"id_field": id_field},
    )
    left_out = dict(
        conn.execute(
            f"""SELECT file_outcome, count(DISTINCT slot_id) FROM ({rows_sql})
                WHERE file_outcome IN ('placeholder', 'coverage_gap') GROUP BY ALL""",
            params,
        ).fetchall()
    )
    pushed = {p.target: p for p in load_pushed(conn, SLUG).values() if p.key == p.target}
    pushed_tokens = {zone: t for zone, p in pushed.items() if (t := tokens_of_id(p.vendor_id)) is not None}
    return TigerConnectState(
        objects=objects,
        problems=problems,
        counts={
            "zones": len(objects),
            "job_tokens": sum(len(t) for t in tokens.values()),
            "rows_wanted": wanted_rows,
            "job_tokens_empty": empty_tokens,
            "placeholder_slots": left_out.get("placeholder", 0),
            "unfilled_slots": left_out.get("coverage_gap", 0),
        },
        # Uploads have no start and the span is empty: nothing is ever ours to delete (TigerConnect
        # has no delete; a job token no longer mapped keeps what it was last sent).
        span=(now, now),
        read_range=None,
        targets=frozenset(tokens),
        pushed_tokens=pushed_tokens,
    )
