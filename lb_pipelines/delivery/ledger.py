"""The delivery ledger, each integration's last delivered state, and the problems table.

The ledger is the delivery checkpoint (not a sensor cursor, not a run's success): a file
counts as delivered only when its ledger row says so, and an integration's delivered state
(what deltas are computed against) advances only in the same transaction as that row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import duckdb
import orjson
import pyarrow as pa

from lb_pipelines import clock
from lb_pipelines.delivery.targets import DeliveryError, Receipt, Target

SCHEMA = "delivery"

_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.ledger (
        delivery_id VARCHAR, integration VARCHAR, scope VARCHAR, file_name VARCHAR,
        target VARCHAR, location VARCHAR, rows BIGINT, bytes BIGINT, sha256 VARCHAR,
        status VARCHAR, error VARCHAR, run_id VARCHAR, delivered_at TIMESTAMPTZ)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.delivered_state (
        integration VARCHAR, scope VARCHAR, row_key VARCHAR, row_hash VARCHAR,
        row_values JSON, delivery_id VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.problems (
        integration VARCHAR, scope VARCHAR, run_id VARCHAR, kind VARCHAR, record VARCHAR,
        field VARCHAR, reason VARCHAR, detected_at TIMESTAMPTZ)""",
)

ConnectionFactory = Callable[[], Any]  # a context manager yielding a DuckDB connection


def ensure_delivery_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in _DDL:
        conn.execute(statement)


@dataclass(frozen=True)
class Problem:
    """A row skipped for a reason: counted, shown, stored and alerted; the rest still goes out."""

    kind: str  # e.g. person_without_vendor_id, unknown_assignment_in_mapping, bad_mapping_row
    record: str  # e.g. "slot 5001", "mapping.csv line 4"
    field: str
    reason: str


@dataclass(frozen=True)
class StateRow:
    key: str
    hash: str
    values: dict[str, Any]


@dataclass(frozen=True)
class LedgerEntry:
    delivery_id: str
    status: str  # delivered | dry_run | failed
    receipt: Optional[Receipt]
    error: Optional[str]


def record_problems(
    conn: duckdb.DuckDBPyConnection, integration: str, scope: str, run_id: str, problems: Iterable[Problem]
) -> int:
    ensure_delivery_tables(conn)
    rows = [(integration, scope, run_id, p.kind, p.record, p.field, p.reason, clock.now()) for p in problems]
    if rows:
        conn.executemany(f"INSERT INTO {SCHEMA}.problems VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def delivered_state(conn: duckdb.DuckDBPyConnection, integration: str, scope: str) -> Optional[dict[str, StateRow]]:
    """What was last delivered for this scope, or None when nothing ever was (a first file)."""
    ensure_delivery_tables(conn)
    rows = conn.execute(
        f"SELECT row_key, row_hash, row_values FROM {SCHEMA}.delivered_state "
        "WHERE integration = ? AND scope = ?",
        [integration, scope],
    ).fetchall()
    delivered_before = conn.execute(
        f"SELECT count(*) FROM {SCHEMA}.ledger WHERE integration = ? AND scope = ? AND status = 'delivered'",
        [integration, scope],
    ).fetchall()[0][0]
    if not delivered_before:
        return None
    return {key: StateRow(key, row_hash, orjson.loads(values)) for key, row_hash, values in rows}


def deliver_and_record(
    connect: ConnectionFactory,
    target: Target,
    *,
    integration: str,
    scope: str,
    file_name: str,
    content: bytes,
    rows: int,
    run_id: str,
    new_state: Optional[Iterable[StateRow]] = None,
) -> LedgerEntry:
    """Deliver one file and write its ledger row; advance the delivered state only on success.

    The warehouse is not held open while the file travels. A failed delivery is a `failed`
    ledger row and re-raises, so the run fails and the state stays where it was: the next run
    sends the changes again. A dry run is recorded as `dry_run` and never advances the state.
    """
    delivery_id = str(uuid.uuid4())
    receipt: Optional[Receipt] = None
    error: Optional[str] = None
    try:
        receipt = target.deliver(integration, file_name, content)
    except DeliveryError as exc:
        error = str(exc)
    status = "failed" if receipt is None else ("delivered" if receipt.delivered else "dry_run")
    with connect() as conn:
        ensure_delivery_tables(conn)
        conn.execute("BEGIN TRANSACTION")
        conn.execute(
            f"INSERT INTO {SCHEMA}.ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                delivery_id, integration, scope, file_name, target.description,
                receipt.location if receipt else None, rows, len(content),
                receipt.sha256 if receipt else None, status, error, run_id, clock.now(),
            ],
        )
        if status == "delivered" and new_state is not None:
            conn.execute(
                f"DELETE FROM {SCHEMA}.delivered_state WHERE integration = ? AND scope = ?", [integration, scope]
            )
            state = list(new_state)
            # Through Arrow: a pay period can hold a few hundred thousand rows.
            _state_batch = pa.table(
                {
                    "row_key": [r.key for r in state],
                    "row_hash": [r.hash for r in state],
                    "row_values": [orjson.dumps(r.values).decode() for r in state],
                },
                schema=pa.schema([("row_key", pa.string()), ("row_hash", pa.string()), ("row_values", pa.string())]),
            )
            conn.register("_lb_state", _state_batch)
            conn.execute(
                f"INSERT INTO {SCHEMA}.delivered_state SELECT ?, ?, row_key, row_hash, CAST(row_values AS JSON), ? "
                "FROM _lb_state",
                [integration, scope, delivery_id],
            )
            conn.unregister("_lb_state")
        conn.execute("COMMIT")
    if error is not None:
        raise DeliveryError(error)
    return LedgerEntry(delivery_id, status, receipt, error)
