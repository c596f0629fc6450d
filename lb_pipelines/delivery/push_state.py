"""What an API push has put in its target, and every request it sent: both in the warehouse.

`delivery.pushed_state` holds, per integration, target (a mailbox, a time zone) and object key
(a slot id), the vendor's id for the object and the hash of the content last accepted. It moves
only in the transaction that writes the request's row in `delivery.request_ledger`, and only on
the target's success answer: a request that failed, or whose answer never came (a killed run),
leaves the state where it was, and the next run sends the change again (Graph's transactionId
and the reconcile's read-back keep a repeated create from making a second event).

The request ledger holds the target's key (a mailbox is personal data: it stays here, in the
warehouse, never in run storage or logs).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import duckdb

from lb_pipelines.delivery.ledger import SCHEMA

_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.pushed_state (
        integration VARCHAR, target VARCHAR, object_key VARCHAR, vendor_id VARCHAR,
        content_hash VARCHAR, start_at TIMESTAMPTZ, label VARCHAR, pushed_at TIMESTAMPTZ,
        PRIMARY KEY (integration, target, object_key))""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.request_ledger (
        request_id VARCHAR, integration VARCHAR, run_id VARCHAR, target VARCHAR, object_key VARCHAR,
        label VARCHAR, action VARCHAR, method VARCHAR, path VARCHAR, status INTEGER, attempts INTEGER,
        outcome VARCHAR, error VARCHAR, sent_at TIMESTAMPTZ)""",
)


def ensure_push_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in _DDL:
        conn.execute(statement)


@dataclass(frozen=True)
class Pushed:
    """One object as last accepted by the target."""

    target: str
    key: str
    vendor_id: Optional[str]
    content_hash: str
    start_at: Optional[dt.datetime]
    label: str


@dataclass(frozen=True)
class RequestRecord:
    """One request's row, and what it does to the pushed state (nothing unless it succeeded).

    `state`: the object now in the target (after a create or update), or None with
    `forget=True` (after a delete, or a 404 on delete: it is gone either way)."""

    request_id: str
    target: str
    key: str
    label: str
    action: str  # create | update | delete | adopt (found in the target, nothing sent) | upload
    method: Optional[str]
    path: Optional[str]
    status: Optional[int]  # the target's answer; None when no answer came
    attempts: int
    outcome: str  # accepted | refused | failed | adopted
    error: Optional[str]
    state: Optional[Pushed] = None
    forget: bool = False


def load_pushed(conn: duckdb.DuckDBPyConnection, integration: str) -> dict[tuple[str, str], Pushed]:
    ensure_push_tables(conn)
    rows = conn.execute(
        f"SELECT target, object_key, vendor_id, content_hash, start_at, label FROM {SCHEMA}.pushed_state "
        "WHERE integration = ?",
        [integration],
    ).fetchall()
    return {(r[0], r[1]): Pushed(*r) for r in rows}


def record_requests(
    conn: duckdb.DuckDBPyConnection, integration: str, run_id: str, records: Sequence[RequestRecord], at: Any
) -> None:
    """The requests' ledger rows and the state they move, in one transaction (the caller serializes)."""
    if not records:
        return
    conn.execute("BEGIN TRANSACTION")
    try:
        insert_requests(conn, integration, run_id, records, at)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def insert_requests(
    conn: duckdb.DuckDBPyConnection, integration: str, run_id: str, records: Sequence[RequestRecord], at: Any
) -> None:
    """record_requests' statements, inside the caller's transaction."""
    if not records:
        return
    ledger = {
        name: [getattr(r, name) for r in records]
        for name in ("request_id", "target", "key", "label", "action", "method", "path", "status", "attempts",
                     "outcome", "error")
    }
    forget = [(r.target, r.key) for r in records if r.forget]
    keep = [r.state for r in records if r.state is not None]
    conn.execute(
        f"""INSERT INTO {SCHEMA}.request_ledger
            SELECT unnest($request_id), $integration, $run_id, unnest($target), unnest($key), unnest($label),
                unnest($action), unnest($method), unnest($path), unnest($status), unnest($attempts),
                unnest($outcome), unnest($error), $at""",
        {**ledger, "integration": integration, "run_id": run_id, "at": at},
    )
    gone = forget + [(s.target, s.key) for s in keep]
    if gone:
        conn.execute(
            f"""DELETE FROM {SCHEMA}.pushed_state USING (SELECT unnest($targets) AS t, unnest($keys) AS k) AS gone
                WHERE integration = $integration AND target = gone.t AND object_key = gone.k""",
            {"integration": integration, "targets": [t for t, _ in gone], "keys": [k for _, k in gone]},
        )
    if keep:
        conn.execute(
            f"""INSERT INTO {SCHEMA}.pushed_state
                SELECT $integration, unnest($target), unnest($key), unnest($vendor_id), unnest($hash),
                    unnest($start_at), unnest($label), $at""",
            {
                "integration": integration, "at": at,
                "target": [s.target for s in keep], "key": [s.key for s in keep],
                "vendor_id": [s.vendor_id for s in keep], "hash": [s.content_hash for s in keep],
                "start_at": [s.start_at for s in keep], "label": [s.label for s in keep],
            },
        )
