"""The delivery ledger, each integration's last delivered state, and the problems table.

The ledger is the delivery checkpoint (not a sensor cursor, not a run's success): a file
counts as delivered only when its ledger row says so, and an integration's delivered state
(what deltas are computed against) advances only in the same transaction as that row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

import duckdb

from lb_pipelines import clock
from lb_pipelines.delivery.targets import DeliveryError, Receipt, Target

SCHEMA = "delivery"

_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.ledger (
        delivery_id VARCHAR, integration VARCHAR, scope VARCHAR, file_name VARCHAR,
        target VARCHAR, location VARCHAR, rows BIGINT, bytes BIGINT, sha256 VARCHAR,
        status VARCHAR, error VARCHAR, run_id VARCHAR, delivered_at TIMESTAMPTZ)""",
    # One row per integration and scope: the whole set of rows last delivered, as Parquet.
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.delivered_state (
        integration VARCHAR, scope VARCHAR, delivery_id VARCHAR, rows BIGINT, snapshot BLOB)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.problems (
        integration VARCHAR, scope VARCHAR, run_id VARCHAR, kind VARCHAR, record VARCHAR,
        field VARCHAR, reason VARCHAR, detected_at TIMESTAMPTZ)""",
)

ConnectionFactory = Callable[[], Any]  # a context manager yielding a DuckDB connection


def ensure_delivery_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in _DDL:
        conn.execute(statement)
    old_shape = conn.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE schema_name = ? AND table_name = 'delivered_state' "
        "AND column_name = 'row_key'",
        [SCHEMA],
    ).fetchall()[0][0]
    if old_shape:
        # A warehouse from before snapshots: guessing its state could resend or lose changes.
        raise RuntimeError(
            f"{SCHEMA}.delivered_state has the row-per-key layout of an earlier build; deltas cannot be "
            "computed against it. Build the warehouse afresh (make clean), which starts every delta "
            "integration with a full file."
        )


@dataclass(frozen=True)
class Problem:
    """A row skipped for a reason: counted, shown, stored and alerted; the rest still goes out."""

    kind: str  # e.g. person_without_vendor_id, unknown_assignment_in_mapping, bad_mapping_row
    record: str  # e.g. "slot 5001", "mapping.csv line 4"
    field: str
    reason: str


@dataclass(frozen=True)
class StateSnapshot:
    """A delta integration's whole set of rows as a file sends them (Parquet, its value columns)."""

    rows: int
    parquet: bytes


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
    return _insert_problems(conn, integration, scope, run_id, list(problems))


def _insert_problems(
    conn: duckdb.DuckDBPyConnection, integration: str, scope: str, run_id: str, problems: Sequence[Problem]
) -> int:
    if problems:
        # One INSERT of lists, not one per row: a file can skip thousands of rows. (Not Arrow: its
        # first use in a process imports pandas, a quarter of a second.)
        columns = {name: [getattr(p, name) for p in problems] for name in ("kind", "record", "field", "reason")}
        conn.execute(
            f"INSERT INTO {SCHEMA}.problems SELECT $integration, $scope, $run_id, unnest($kind), unnest($record), "
            "unnest($field), unnest($reason), $detected_at",
            {"integration": integration, "scope": scope, "run_id": run_id, "detected_at": clock.now(), **columns},
        )
    return len(problems)


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
    new_state: Optional[StateSnapshot] = None,
    problems: Sequence[Problem] = (),
) -> LedgerEntry:
    """Deliver one file and write its ledger row; advance the delivered state only on success.

    The warehouse is not held open while the file travels. A failed delivery is a `failed`
    ledger row and re-raises, so the run fails and the state stays where it was: the next run
    sends the changes again. A dry run is recorded as `dry_run` and never advances the state.
    The rows the file skipped (`problems`) are stored with the ledger row, whatever its status.
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
        _insert_problems(conn, integration, scope, run_id, list(problems))
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
            conn.execute(
                f"INSERT INTO {SCHEMA}.delivered_state VALUES (?, ?, ?, ?, ?)",
                [integration, scope, delivery_id, new_state.rows, new_state.parquet],
            )
        conn.execute("COMMIT")
    if error is not None:
        raise DeliveryError(error)
    return LedgerEntry(delivery_id, status, receipt, error)
