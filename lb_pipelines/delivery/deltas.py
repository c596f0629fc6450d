"""Deltas against what was last delivered: one SQL rule, tested with small hand-made tables.

The change log only says *that* something changed; the delta compares the full set that is
true now with the set last delivered successfully for the same scope (integrations.md). Both
sets are relations of the file's value columns; a few of them are the key (for Kronos WFD the
slot and the person). The DELETE of a row that is gone goes out with its old values, so the
delivered set is kept whole: as a Parquet snapshot in `delivery.delivered_state`, written in
the same transaction as the ledger row of the delivery that sent it.

Everything runs in DuckDB, so a pay period of a few hundred thousand shifts never passes
through Python row by row.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Sequence

import duckdb

from lb_pipelines.delivery.ledger import SCHEMA, StateSnapshot, ensure_delivery_tables
from lb_pipelines.warehouse.sql import copied_bytes, identifier, string_literal

ADD, UPDATE, DELETE = "ADD", "UPDATE", "DELETE"


def _quoted(columns: Sequence[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + identifier(c) for c in columns)


def _changes(current: str, delivered: str, key: Sequence[str], columns: Sequence[str]) -> str:
    # NOT DISTINCT: an open shift's empty person number is a key like any other
    on = " AND ".join(f"now_true.{identifier(k)} IS NOT DISTINCT FROM delivered.{identifier(k)}" for k in key)
    changed = " OR ".join(
        f"now_true.{identifier(c)} IS DISTINCT FROM delivered.{identifier(c)}" for c in columns if c not in key
    )
    return f"""
WITH now_true AS (SELECT {_quoted(columns)} FROM {current}),
delivered AS (SELECT {_quoted(columns)} FROM {delivered}),
changes AS (
    SELECT 0 AS action_order, '{DELETE}' AS action, {_quoted(columns, "delivered")}
    FROM delivered ANTI JOIN now_true ON {on}
    UNION ALL
    SELECT 1, '{UPDATE}', {_quoted(columns, "now_true")}
    FROM now_true JOIN delivered ON {on}
    WHERE {changed or "false"}
    UNION ALL
    SELECT 2, '{ADD}', {_quoted(columns, "now_true")}
    FROM now_true ANTI JOIN delivered ON {on}
)"""


def delta_select(current: str, delivered: str, key: Sequence[str], columns: Sequence[str]) -> str:
    """The rows of a delta file, ACTION then `columns`, from two relations with those columns:
    what is true now and what was last delivered.

    ADD for new keys, UPDATE for changed values, DELETE with the old values for keys gone; when
    nothing was delivered before, every row is an ADD (a full file). Deletes come first: a shift
    moved from one person to another leaves the first timecard before it reaches the second, so
    the receiving system never sees both at once. Within an action, rows are in key order.
    """
    return _changes(current, delivered, key, columns) + f"""
SELECT action AS "ACTION", {_quoted(columns)} FROM changes ORDER BY action_order, {_quoted(key)}"""


def delta_counts_select(current: str, delivered: str, key: Sequence[str], columns: Sequence[str]) -> str:
    """(action, rows) of the same delta, without building its rows."""
    return _changes(current, delivered, key, columns) + "\nSELECT action, count(*) AS rows FROM changes GROUP BY action"


def load_delivered(
    conn: duckdb.DuckDBPyConnection, integration: str, scope: str, *, like: str, into: str, params: Any = None
) -> bool:
    """Temporary table `into`: the rows last delivered for this scope (none if never), shaped like
    the relation `like` (with its query parameters, `params`). True when a file was delivered for
    this scope before: every delivery of a delta integration leaves a snapshot."""
    ensure_delivery_tables(conn)
    found = conn.execute(
        f"SELECT snapshot FROM {SCHEMA}.delivered_state WHERE integration = ? AND scope = ?", [integration, scope]
    ).fetchall()
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {into} AS SELECT * FROM {like} WHERE false", params)
    if found:
        with tempfile.TemporaryDirectory(prefix="lb_state_") as tmp:
            path = Path(tmp) / "delivered.parquet"
            path.write_bytes(found[0][0])
            conn.execute(f"INSERT INTO {into} BY NAME SELECT * FROM read_parquet({string_literal(path)})")
    return bool(found)


def snapshot(conn: duckdb.DuckDBPyConnection, relation: str, params: Any = None) -> StateSnapshot:
    """The rows of `relation` as a Parquet snapshot, to keep once the file that sent them is delivered."""
    parquet, rows = copied_bytes(conn, f"SELECT * FROM {relation}", "FORMAT parquet, COMPRESSION zstd", params)
    return StateSnapshot(rows=rows, parquet=parquet)
