"""The delivery ledger, each integration's last delivered state, and the problems found.

The ledger is the delivery checkpoint (not a sensor cursor, not a run's success): a file
counts as delivered only when its ledger row says so, and an integration's delivered state
(what deltas are computed against) advances only in the same transaction as that row.

Problems are history: every check of an integration and scope (a delivery, or a load of its
configuration) is one `problem_checks` row, even when it found nothing, and its problems are
`problems` rows under the same `check_id`, each with a `problem_key` that is the same every
time the same problem is found. What is open now is what the latest check of each integration
and scope found (`marts.fct_open_problems`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

import duckdb

from lb_pipelines import clock
from lb_pipelines.delivery.targets import DeliveryError, Receipt, Target
from lb_pipelines.feeds.tokens import ensure_token_table

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
        field VARCHAR, reason VARCHAR, detected_at TIMESTAMPTZ, problem_key VARCHAR, check_id VARCHAR)""",
    # One row per check, problems found or not: "open now" needs the checks that found none.
    # check_number orders them even when the clock is pinned (LB_NOW) and checked_at ties.
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.problem_checks (
        check_id VARCHAR, integration VARCHAR, scope VARCHAR, run_id VARCHAR,
        checked_at TIMESTAMPTZ, problems BIGINT, check_number BIGINT)""",
)

# The same problem found again has the same key: what it is about, not when or why it was found.
PROBLEM_KEY_SQL = "md5(concat_ws('|', integration, scope, kind, coalesce(record, ''), coalesce(field, '')))"

# A warehouse from before problem keys: its problems become checks of their own (one per run,
# integration and scope), open until that scope is checked again.
_MIGRATE_PROBLEMS = (
    f"ALTER TABLE {SCHEMA}.problems ADD COLUMN IF NOT EXISTS problem_key VARCHAR",
    f"ALTER TABLE {SCHEMA}.problems ADD COLUMN IF NOT EXISTS check_id VARCHAR",
    f"""UPDATE {SCHEMA}.problems SET problem_key = {PROBLEM_KEY_SQL},
        check_id = md5(concat_ws('|', 'check', integration, scope, run_id)) WHERE check_id IS NULL""",
    f"""INSERT INTO {SCHEMA}.problem_checks
        SELECT check_id, integration, scope, any_value(run_id), max(detected_at), count(*),
            (SELECT coalesce(max(check_number), 0) FROM {SCHEMA}.problem_checks)
            + row_number() OVER (ORDER BY max(detected_at), check_id)
        FROM {SCHEMA}.problems
        WHERE check_id NOT IN (SELECT check_id FROM {SCHEMA}.problem_checks)
        GROUP BY check_id, integration, scope""",
)

ConnectionFactory = Callable[[], Any]  # a context manager yielding a DuckDB connection


def ensure_delivery_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in _DDL:
        conn.execute(statement)
    ensure_token_table(conn)  # the calendar feeds' tokens (lb_pipelines/feeds/tokens.py)
    shape = {
        table
        for (table,) in conn.execute(
            "SELECT table_name FROM duckdb_columns() WHERE schema_name = ? AND ("
            "(table_name = 'delivered_state' AND column_name = 'row_key') "
            "OR (table_name = 'problems' AND column_name = 'check_id'))",
            [SCHEMA],
        ).fetchall()
    }
    if "problems" not in shape:
        conn.execute("BEGIN TRANSACTION")
        for statement in _MIGRATE_PROBLEMS:
            conn.execute(statement)
        conn.execute("COMMIT")
    if "delivered_state" in shape:
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
    receipt: Optional[Receipt]  # the first file's
    error: Optional[str]
    receipts: tuple[Optional[Receipt], ...] = ()  # every file's, in order


def record_problems(
    conn: duckdb.DuckDBPyConnection, integration: str, scope: str, run_id: str, problems: Iterable[Problem]
) -> int:
    """Record one check of `integration` and `scope` that is not a delivery (a configuration load),
    with what it found; finding nothing is recorded too, and closes what was open."""
    ensure_delivery_tables(conn)
    problems = list(problems)
    conn.execute("BEGIN TRANSACTION")
    try:
        _insert_check(conn, str(uuid.uuid4()), integration, scope, run_id, problems, clock.now())
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(problems)


def _insert_check(
    conn: duckdb.DuckDBPyConnection,
    check_id: str,
    integration: str,
    scope: str,
    run_id: str,
    problems: Sequence[Problem],
    at: Any,
) -> None:
    """The check's row and its problems' rows; the caller holds the transaction."""
    common = {"check_id": check_id, "integration": integration, "scope": scope, "run_id": run_id, "at": at}
    conn.execute(
        f"INSERT INTO {SCHEMA}.problem_checks SELECT $check_id, $integration, $scope, $run_id, $at, $problems, "
        f"(SELECT coalesce(max(check_number), 0) + 1 FROM {SCHEMA}.problem_checks)",
        {**common, "problems": len(problems)},
    )
    if problems:
        # One INSERT of lists, not one per row: a file can skip thousands of rows. (Not Arrow: its
        # first use in a process imports pandas, a quarter of a second.)
        columns = {name: [getattr(p, name) for p in problems] for name in ("kind", "record", "field", "reason")}
        conn.execute(
            f"""INSERT INTO {SCHEMA}.problems (integration, scope, run_id, kind, record, field, reason,
                    detected_at, problem_key, check_id)
                SELECT *, {PROBLEM_KEY_SQL}, $check_id FROM (
                    SELECT $integration AS integration, $scope AS scope, $run_id AS run_id,
                        unnest($kind) AS kind, unnest($record) AS record, unnest($field) AS field,
                        unnest($reason) AS reason, $at AS detected_at)""",
            {**common, **columns},
        )


def _insert_ledger_row(conn: duckdb.DuckDBPyConnection, *values: Any) -> None:
    """(delivery_id, integration, scope, file_name, target, location, rows, bytes, sha256, status,
    error, run_id, delivered_at); the caller holds the transaction."""
    conn.execute(f"INSERT INTO {SCHEMA}.ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(values))


def record_push_run(
    conn: duckdb.DuckDBPyConnection,
    *,
    integration: str,
    scope: str,
    target: str,
    requests: int,
    status: str,
    error: Optional[str],
    run_id: str,
    problems: Sequence[Problem] = (),
    file: Optional[Receipt] = None,
) -> str:
    """One API push run in the ledger, with the problems it found as the check of this integration
    and scope; returns the delivery id. Its requests are in `request_ledger`; `file` is the dry
    run's requests file or the shadow's preview, when it wrote one."""
    ensure_delivery_tables(conn)
    delivery_id = str(uuid.uuid4())
    at = clock.now()
    conn.execute("BEGIN TRANSACTION")
    try:
        _insert_check(conn, delivery_id, integration, scope, run_id, list(problems), at)
        _insert_ledger_row(
            conn, delivery_id, integration, scope, file.location.rsplit("/", 1)[-1] if file else None, target,
            file.location if file else None, requests, file.bytes if file else None, file.sha256 if file else None,
            status, error, run_id, at,
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return delivery_id


@dataclass(frozen=True)
class OutgoingFile:
    """A further file of the same delivery (the schedule backup sends an .xlsx beside its .csv)."""

    file_name: str
    content: bytes
    rows: int


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
    also: Sequence[OutgoingFile] = (),
) -> LedgerEntry:
    """Deliver one file (and the `also` files of the same delivery) and write their ledger rows;
    advance the delivered state only when every file arrived.

    The warehouse is not held open while the files travel. A failed delivery is a `failed`
    ledger row and re-raises, so the run fails and the state stays where it was: the next run
    sends the changes again. When one file of several fails, the files sent before it keep their
    `delivered` rows (they did arrive), it is `failed`, and those after it are `failed` as not
    sent. A dry run is recorded as `dry_run` and never advances the state. The rows the delivery
    skipped (`problems`) are stored with it, whatever its status, as the check of this
    integration and scope whose id is the delivery's.
    """
    delivery_id = str(uuid.uuid4())
    files = [OutgoingFile(file_name, content, rows), *also]
    outcomes: list[tuple[OutgoingFile, Optional[Receipt], Optional[str]]] = []
    error: Optional[str] = None
    for outgoing in files:
        if error is not None:
            outcomes.append((outgoing, None, f"not sent: {files[len(outcomes) - 1].file_name} failed first"))
            continue
        try:
            outcomes.append((outgoing, target.deliver(integration, outgoing.file_name, outgoing.content), None))
        except DeliveryError as exc:
            error = str(exc)
            outcomes.append((outgoing, None, error))
    receipt = outcomes[0][1]
    status = "failed" if error is not None else ("delivered" if receipt.delivered else "dry_run")
    with connect() as conn:
        ensure_delivery_tables(conn)
        at = clock.now()
        conn.execute("BEGIN TRANSACTION")
        try:
            _insert_check(conn, delivery_id, integration, scope, run_id, list(problems), at)
            for outgoing, got, why in outcomes:
                row_status = "failed" if got is None else ("delivered" if got.delivered else "dry_run")
                _insert_ledger_row(
                    conn, delivery_id, integration, scope, outgoing.file_name, target.description,
                    got.location if got else None, outgoing.rows, len(outgoing.content),
                    got.sha256 if got else None, row_status, why, run_id, at,
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
        except BaseException:
            conn.execute("ROLLBACK")  # no half-written delivery; the connection stays usable
            raise
    if error is not None:
        raise DeliveryError(error)
    return LedgerEntry(delivery_id, status, receipt, None, tuple(got for _, got, _ in outcomes))
