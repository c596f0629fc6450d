"""What became of each inbound file and each of its rows: the import's checkpoint, in the warehouse.

`delivery.inbound_files` has one row per file content (sha256) and integration: importing (a
run has begun it; a killed run leaves it so, and the next run resumes it), processed (applied
and moved to processed/), failed (unreadable: moved to failed/), or dry_run (nothing applied;
never counts as processed). A content processed before is refused as a duplicate.

`delivery.inbound_rows` is written as the import goes: every row's plan before the first PATCH,
then each PATCH's outcome in the transaction of its request ledger row. The values a PATCH sets
are kept here (personal data stays in the warehouse), so a rerun can read the person back and
tell a PATCH that was applied but whose answer was lost from one that never arrived.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import duckdb
import orjson

from lb_pipelines import clock
from lb_pipelines.delivery.ledger import SCHEMA
from lb_pipelines.delivery.push_state import RequestRecord, ensure_push_tables, insert_requests

_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.inbound_files (
        integration VARCHAR, sha256 VARCHAR, file_name VARCHAR, size BIGINT, status VARCHAR,
        location VARCHAR, report_location VARCHAR, rows BIGINT, run_id VARCHAR,
        received_at TIMESTAMPTZ, finished_at TIMESTAMPTZ)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.inbound_rows (
        integration VARCHAR, sha256 VARCHAR, line BIGINT, record_key VARCHAR, personnel_id BIGINT,
        outcome VARCHAR, fields VARCHAR, reason VARCHAR, changes VARCHAR, status VARCHAR,
        run_id VARCHAR, updated_at TIMESTAMPTZ)""",
)

# Row statuses: planned (nothing sent yet, or sent and no answer came), applied (Lightning Bolt
# answered 2xx), confirmed (read back after a lost answer: it holds the values), refused (4xx),
# failed (no good answer after the retries), final (nothing to send: unchanged, unmatched, ...).
DONE = ("applied", "confirmed", "refused", "final")


def ensure_inbound_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in _DDL:
        conn.execute(statement)
    ensure_push_tables(conn)


@dataclass(frozen=True)
class FileRecord:
    sha256: str
    file_name: str
    status: str
    location: Optional[str]
    received_at: dt.datetime


def file_record(conn: duckdb.DuckDBPyConnection, integration: str, sha256: str) -> Optional[FileRecord]:
    """The last word on this content: processed wins over anything else (a duplicate after it)."""
    ensure_inbound_tables(conn)
    row = conn.execute(
        f"""SELECT sha256, file_name, status, location, received_at FROM {SCHEMA}.inbound_files
            WHERE integration = ? AND sha256 = ? AND status IN ('processed', 'importing')
            ORDER BY status = 'processed' DESC, received_at DESC LIMIT 1""",
        [integration, sha256],
    ).fetchone()
    return FileRecord(*row) if row else None


def begin_file(conn, integration: str, sha256: str, file_name: str, size: int, run_id: str, status: str) -> None:
    ensure_inbound_tables(conn)
    conn.execute(
        f"INSERT INTO {SCHEMA}.inbound_files VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?, NULL)",
        [integration, sha256, file_name, size, status, run_id, clock.now()],
    )


def finish_file(
    conn, integration: str, sha256: str, file_name: str, *, status: str, rows: int, run_id: str,
    location: Optional[str] = None, report_location: Optional[str] = None, from_status: str = "importing",
) -> None:
    """Close the file's open row (or write one: a file refused before it was begun)."""
    ensure_inbound_tables(conn)
    values = [status, location, report_location, rows, run_id, clock.now()]
    updated = conn.execute(
        f"""UPDATE {SCHEMA}.inbound_files SET status = ?, location = ?, report_location = ?, rows = ?,
                run_id = ?, finished_at = ?
            WHERE integration = ? AND sha256 = ? AND file_name = ? AND status = ? RETURNING 1""",
        [*values, integration, sha256, file_name, from_status],
    ).fetchall()
    if not updated:
        conn.execute(
            f"INSERT INTO {SCHEMA}.inbound_files VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)",
            [integration, sha256, file_name, status, location, report_location, rows, run_id, clock.now(), clock.now()],
        )


@dataclass(frozen=True)
class JournalRow:
    line: int
    record_key: str
    personnel_id: Optional[int]
    outcome: str
    fields: str
    reason: str
    changes: dict[str, str]
    status: str


def journal(conn, integration: str, sha256: str) -> dict[int, JournalRow]:
    ensure_inbound_tables(conn)
    rows = conn.execute(
        f"""SELECT line, record_key, personnel_id, outcome, fields, reason, changes, status
            FROM {SCHEMA}.inbound_rows WHERE integration = ? AND sha256 = ?""",
        [integration, sha256],
    ).fetchall()
    return {r[0]: JournalRow(*r[:6], orjson.loads(r[6]) if r[6] else {}, r[7]) for r in rows}


def write_plan(conn, integration: str, sha256: str, run_id: str, rows: Sequence[JournalRow]) -> None:
    """The plan of every row not done yet, replacing an earlier run's plan of the same rows, in one
    transaction (before the first PATCH)."""
    if not rows:
        return
    columns = {
        "line": [r.line for r in rows], "record_key": [r.record_key for r in rows],
        "personnel_id": [r.personnel_id for r in rows], "outcome": [r.outcome for r in rows],
        "fields": [r.fields for r in rows], "reason": [r.reason for r in rows],
        "changes": [orjson.dumps(r.changes).decode() if r.changes else None for r in rows],
        "status": [r.status for r in rows],
    }
    common = {"integration": integration, "sha256": sha256, "run_id": run_id, "at": clock.now()}
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"""DELETE FROM {SCHEMA}.inbound_rows WHERE integration = $integration AND sha256 = $sha256
                AND line IN (SELECT unnest($line))""",
            {"integration": integration, "sha256": sha256, "line": columns["line"]},
        )
        conn.execute(
            f"""INSERT INTO {SCHEMA}.inbound_rows SELECT $integration, $sha256, unnest($line), unnest($record_key),
                    unnest($personnel_id), unnest($outcome), unnest($fields), unnest($reason), unnest($changes),
                    unnest($status), $run_id, $at""",
            {**columns, **common},
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def record_rows(
    conn, integration: str, sha256: str, run_id: str, outcomes: Sequence[tuple[int, str, str, str]],
    requests: Sequence[RequestRecord] = (),
) -> None:
    """Rows' new (line, status, outcome, reason) with the requests that decided them, in one transaction."""
    at: Any = clock.now()
    conn.execute("BEGIN TRANSACTION")
    try:
        for line, status, outcome, reason in outcomes:
            conn.execute(
                f"""UPDATE {SCHEMA}.inbound_rows SET status = ?, outcome = ?, reason = ?, run_id = ?, updated_at = ?
                    WHERE integration = ? AND sha256 = ? AND line = ?""",
                [status, outcome, reason, run_id, at, integration, sha256, line],
            )
        insert_requests(conn, integration, run_id, list(requests), at)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
