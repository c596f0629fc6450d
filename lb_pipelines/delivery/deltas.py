"""Deltas against what was last delivered: one SQL rule, tested with small hand-made tables.

The change log only says *that* something changed; the delta compares the full set that is
true now with the set last delivered successfully for the same scope (integrations.md). Both
sets are relations of the file's value columns; a few of them are the key (for Kronos WFD the
slot and the person). The DELETE of a row that is gone goes out with its old values, so the
delivered set is kept whole: as a Parquet snapshot in `delivery.delivered_state`, written in
the same transaction as the ledger row of the delivery that sent it.

Everything runs in DuckDB, so a pay period of a few hundred thousand shifts never passes
through Python row by row. `render_delta` is the whole sequence a delta integration runs
(Kronos WFD, New Innovations): load what was delivered, write the delta file, count it, and
snapshot the new state.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import duckdb

from lb_pipelines.delivery.ledger import SCHEMA, StateSnapshot, ensure_delivery_tables
from lb_pipelines.warehouse.sql import copied_bytes, csv_file, identifier, string_literal

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


@dataclass(frozen=True)
class DeltaFile:
    """A delta file against the last delivery of its scope, and the state to keep once it is delivered."""

    content: bytes  # RFC 4180 CSV: ACTION, then the value columns
    rows: int
    full_file: bool  # nothing was delivered for this scope before: every row is an ADD
    counts: dict[str, int]  # rows per action, ADD, UPDATE and DELETE (0 when none)
    new_state: StateSnapshot  # the whole current set, as the next delta will compare with it

    @property
    def metadata(self) -> dict[str, Any]:
        """What the asset shows of it: whether it is full, and its rows per action."""
        return {"full_file": self.full_file, **self.counts}


def render_delta(
    conn: duckdb.DuckDBPyConnection,
    integration: str,
    scope: str,
    current: str,
    key: Sequence[str],
    columns: Sequence[str],
    params: Any = None,
    *,
    delivered_filter: Optional[str] = None,
) -> DeltaFile:
    """The delta file of `integration` and `scope`: the relation `current` (what is true now, with
    its query parameters `params`; `columns` and any further columns the filter needs) against
    the set last delivered successfully for the same scope. Reads only; the caller delivers.

    `delivered_filter` is a condition on the delivered rows (it may use `current`'s parameters):
    the rows it leaves out are not compared, so they send no DELETE, and since the new state is
    `current` they are forgotten. A window's back edge uses it, so a row that only aged out of
    the window is not deleted at the vendor.
    """
    delivered = f"{integration}_delivered_rows"
    full_file = not load_delivered(conn, integration, scope, like=current, into=delivered, params=params)
    try:
        compared = delivered if delivered_filter is None else f"(SELECT * FROM {delivered} WHERE {delivered_filter})"
        delta = (current, compared, key, columns)
        content, rows = csv_file(conn, delta_select(*delta), params)
        counts = dict.fromkeys((ADD, UPDATE, DELETE), 0)
        if full_file:
            counts[ADD] = rows  # all ADD: no need to run the rule again for the split
        else:
            counts.update(conn.execute(delta_counts_select(*delta), params).fetchall())
        new_state = snapshot(conn, current, params)
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {delivered}")
    return DeltaFile(content=content, rows=rows, full_file=full_file, counts=counts, new_state=new_state)
